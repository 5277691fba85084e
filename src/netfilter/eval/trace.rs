//! What a trace records: the netfilter steps in the kernel's order, the notes between them
//! (routing decisions, conntrack, NAT, socket lookup), and how the packet's way ends.

use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use super::Hook;
use crate::netfilter::model::TableName;

/// What the kernel's trace reports for a rule or chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Continue,
    Jump,
    Goto,
    Return,
    Accept,
    Drop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepKind {
    /// A rule that matched.
    Rule,
    /// Falling off the end of a user chain.
    Return,
    /// A built-in chain's policy.
    Policy,
}

/// One netfilter step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub hook: Hook,
    pub table: TableName,
    pub chain: String,
    pub kind: StepKind,
    /// 1-based position of the rule in its chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<usize>,
    /// Line of the rule (or the chain declaration, for a policy) in the rules file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    pub verdict: Verdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// A rule that was reached but did not match (recorded only by [`super::trace_misses`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Miss {
    /// Index into `steps` of the first step after this rule.
    pub before_step: usize,
    pub hook: Hook,
    pub table: TableName,
    pub chain: String,
    /// 1-based position of the rule in its chain.
    pub rule: usize,
    pub line: u32,
    /// Index into the rule's matches of the first one that failed.
    pub failed_match: usize,
}

/// Something the kernel decided between netfilter steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    /// Index into `steps` of the first step after this note (`steps.len()` at the end).
    pub before_step: usize,
    pub hook: Option<Hook>,
    pub what: NoteKind,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NoteKind {
    Route,
    Conntrack,
    Nat,
    Mark,
    Socket,
    Loopback,
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Disposition {
    /// Delivered to a local socket (or would be: see `socket`).
    Local,
    /// Left through a network interface.
    Out,
    /// Routed through the namespace to another interface.
    Forwarded,
    Dropped,
}

/// How the first packet's way ends.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub disposition: Disposition,
    #[serde(rename = "in", skip_serializing_if = "Option::is_none")]
    pub in_iface: Option<String>,
    #[serde(rename = "out", skip_serializing_if = "Option::is_none")]
    pub out_iface: Option<String>,
    /// Source after SNAT (serialised as `ip:port`).
    pub src: SocketAddr,
    /// Destination after NAT (`ip:port`).
    pub dst: SocketAddr,
    /// The original destination (`SO_ORIGINAL_DST`).
    pub orig_dst: SocketAddr,
    pub mark: String,
    pub ctmark: String,
    pub zone: u16,
    /// The listening socket a local delivery reaches, when one is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket: Option<String>,
    /// Why the packet was dropped, or what happens at a local delivery without a socket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One way the packet can go; several when `statistic` rules split it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Branch {
    pub probability: f64,
    pub steps: Vec<Step>,
    pub notes: Vec<Note>,
    pub result: Outcome,
    /// Rules reached whose match or target is unknown (lenient parsing): line numbers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unknown: Vec<u32>,
    /// Rules reached that did not match (empty unless asked for: [`super::trace_misses`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub misses: Vec<Miss>,
}

pub(super) fn endpoint(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}
