//! The evaluator: walks the first packet of a connection through the kernel's hooks, tables
//! and chains in the order Linux runs them (iptables-nft priorities), with conntrack, NAT on
//! the first packet, routing (policy rules, re-route after NAT and mark changes), the
//! loopback re-entry, TPROXY and socket lookup. See `docs/netfilter.md` and the semantics
//! reference for every rule followed here.
//!
//! `statistic` matches are not guessed: each one splits the walk into two branches with
//! their probabilities, and [`trace`] returns every branch.

mod matches;
mod path;
mod program;
mod trace;
mod walk;

use std::net::IpAddr;

use serde::Serialize;

pub use program::{CompileError, Program};
pub use trace::{
    Branch, Disposition, Event, Miss, NatTarget, Note, NoteKind, Outcome, Reason, RouteHit, RouteStage,
    RuleAt, RuleDrop, Step, StepKind, UnknownKind, Verdict,
};

use crate::netfilter::model::Protocol;
use crate::netns::Netns;

/// The five netfilter hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Hook {
    Prerouting = 0,
    Input = 1,
    Forward = 2,
    Output = 3,
    Postrouting = 4,
}

impl Hook {
    pub const ALL: [Hook; 5] =
        [Hook::Prerouting, Hook::Input, Hook::Forward, Hook::Output, Hook::Postrouting];

    pub fn as_str(self) -> &'static str {
        match self {
            Hook::Prerouting => "PREROUTING",
            Hook::Input => "INPUT",
            Hook::Forward => "FORWARD",
            Hook::Output => "OUTPUT",
            Hook::Postrouting => "POSTROUTING",
        }
    }
}

/// Where the packet starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// Sent by a local process (`connect()`/`sendto()`): starts at OUTPUT.
    Output,
    /// Arrives on an interface: starts at PREROUTING.
    Prerouting,
}

/// The first packet of a connection and who sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub entry: Entry,
    pub proto: Protocol,
    pub src: IpAddr,
    pub sport: u16,
    pub dst: IpAddr,
    pub dport: u16,
    /// The sending process's credentials (OUTPUT only).
    pub uid: u32,
    pub gid: u32,
    pub supplementary_gids: Vec<u32>,
    /// `skb->mark` at the start (`SO_MARK`).
    pub mark: u32,
    /// Incoming interface (PREROUTING only).
    pub in_iface: String,
    /// TCP flags of the packet (a SYN by default).
    pub tcp_flags: u8,
    /// ICMP type and code (echo request by default).
    pub icmp_type: u8,
    pub icmp_code: u8,
    /// The packet is a reply of a connection conntrack already has (`None`: a first packet).
    pub reply: Option<ReplyNat>,
    /// Sent from OUTPUT by the kernel itself, with no process behind its socket (neighbour
    /// discovery): owner matches see no socket.
    pub kernel_sent: bool,
}

/// A reply packet of an established connection: conntrack state ESTABLISHED, no nat chains,
/// and the connection's NAT undone (`nf_nat_packet` in net/netfilter/nf_nat_core.c: on the
/// reply direction the manip types swap, so the hooks that rewrote the original destination
/// rewrite the reply's destination back from an SNAT, and those that rewrote the source put
/// the original destination back as the reply's source).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplyNat {
    /// The reply's new source at POSTROUTING or INPUT (the request was DNATed or redirected).
    pub src_to: Option<std::net::SocketAddr>,
    /// The reply's new destination at PREROUTING or OUTPUT (the request was SNATed).
    pub dst_to: Option<std::net::SocketAddr>,
    /// The connection's mark (`CONNMARK --save-mark` on the request), which
    /// `CONNMARK --restore-mark` gives the reply.
    pub ctmark: u32,
}

impl Probe {
    /// A TCP SYN from a local process with uid/gid 0 and no mark.
    pub fn new(entry: Entry, proto: Protocol, src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> Probe {
        Probe {
            entry,
            proto,
            src,
            sport,
            dst,
            dport,
            uid: 0,
            gid: 0,
            supplementary_gids: Vec::new(),
            mark: 0,
            in_iface: "eth0".into(),
            tcp_flags: crate::netfilter::model::tcp_flags::SYN,
            icmp_type: if dst.is_ipv6() { 128 } else { 8 },
            icmp_code: 0,
            reply: None,
            kernel_sent: false,
        }
    }
}

/// Every way the packet can go, with probabilities summing to 1.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub branches: Vec<Branch>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error("{file}:{line}: jumps nest deeper than {limit} chains")]
    TooDeep { file: String, line: u32, limit: usize },
    #[error("statistic rules split the packet into more than {limit} branches")]
    TooManyBranches { limit: usize },
    #[error("the packet's address family does not match the rule set ({rules}); give ip6tables-save output for IPv6")]
    FamilyMismatch { rules: &'static str },
}

/// The most branches one trace may have.
pub const MAX_BRANCHES: usize = 4096;

/// Walks `probe` through `ns` with `program`, returning every branch.
pub fn trace(program: &Program, ns: &Netns, probe: &Probe) -> Result<Trace, EvalError> {
    run_trace(program, ns, probe, false)
}

/// As [`trace`], and each branch also lists the rules reached that did not match, with the
/// first failing match of each (for reports that say why a rule did not apply).
pub fn trace_misses(program: &Program, ns: &Netns, probe: &Probe) -> Result<Trace, EvalError> {
    run_trace(program, ns, probe, true)
}

fn run_trace(program: &Program, ns: &Netns, probe: &Probe, misses: bool) -> Result<Trace, EvalError> {
    let v6_rules = program.ruleset.family == crate::netfilter::model::Family::V6;
    if probe.dst.is_ipv6() != v6_rules || probe.src.is_ipv6() != v6_rules {
        return Err(EvalError::FamilyMismatch { rules: if v6_rules { "IPv6" } else { "IPv4" } });
    }
    let mut branches = Vec::new();
    let mut pending: std::collections::VecDeque<Vec<bool>> = std::collections::VecDeque::from([Vec::new()]);
    while let Some(prefix) = pending.pop_front() {
        let mut run = path::Run::new(program, ns, probe, &prefix);
        run.record_misses = misses;
        let result = run.walk()?;
        for j in prefix.len()..run.decisions.len() {
            let mut alt: Vec<bool> = run.decisions[..j].iter().map(|d| d.0).collect();
            alt.push(!run.decisions[j].0);
            pending.push_back(alt);
        }
        let probability = run.decisions.iter().map(|&(taken, p)| if taken { p } else { 1.0 - p }).product();
        branches.push(Branch {
            probability,
            steps: run.steps,
            notes: run.notes,
            result,
            unknown: run.unknown,
            misses: run.misses,
        });
        if branches.len() + pending.len() > MAX_BRANCHES {
            return Err(EvalError::TooManyBranches { limit: MAX_BRANCHES });
        }
    }
    Ok(Trace { branches })
}

#[cfg(test)]
mod tests;

/// `ip:port`, with brackets for IPv6.
pub fn endpoint_of(ip: IpAddr, port: u16) -> String {
    trace::endpoint(ip, port)
}
