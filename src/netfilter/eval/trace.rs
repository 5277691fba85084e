//! What a trace records: the netfilter steps in the kernel's order, the notes between them
//! (routing decisions, conntrack, NAT, socket lookup), and how the packet's way ends.

use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use std::sync::Arc;

use super::Hook;
use crate::netfilter::model::{Protocol, TableName};
use crate::netns::{Owner, RouteKind, Socket, L4};

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

/// One netfilter step: the rule (by its chain's index and its position) or the policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub hook: Hook,
    pub table: TableName,
    /// Index of the chain in its table (`Ruleset::tables[..].chains`).
    #[serde(skip)]
    pub chain_index: usize,
    pub chain: Arc<str>,
    pub kind: StepKind,
    /// 1-based position of the rule in its chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<usize>,
    /// Line of the rule (or the chain declaration, for a policy) in the rules file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    pub verdict: Verdict,
    /// The rule's target as written (`ISTIO_REDIRECT`, `REDIRECT`, `MARK` ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Arc<str>>,
}

/// A rule that was reached but did not match (recorded only by [`super::trace_misses`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Miss {
    /// Index into `steps` of the first step after this rule.
    pub before_step: usize,
    pub hook: Hook,
    pub table: TableName,
    pub chain: Arc<str>,
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
    pub event: Event,
}

impl Note {
    pub fn kind(&self) -> NoteKind {
        self.event.kind()
    }
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

/// Which routing decision a [`Event::Route`] is (net/ipv4/route.c; `ip_route_me_harder` in net/ipv4/netfilter.c).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteStage {
    /// The output route of a locally generated packet (chosen before OUTPUT).
    Output,
    /// `ip_route_me_harder` after mangle OUTPUT changed the mark or an address.
    RerouteAfterMangle,
    /// `ip_route_me_harder` after nat OUTPUT changed the destination.
    RerouteAfterNat,
    /// The input route of an arriving packet (after PREROUTING).
    Input,
}

/// The route a lookup found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteHit {
    pub kind: RouteKind,
    pub dev: String,
    /// The route's prefix (`None` for a default route written without one).
    pub prefix: Option<ipnet::IpNet>,
    pub table: u32,
    /// Preference of the `ip rule` that led to the table.
    pub rule_pref: u32,
}

/// The NAT target that rewrote an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum NatTarget {
    Redirect,
    Dnat,
    Snat,
    Masquerade,
}

/// What the kernel decided, as data; `crate::render` words it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A routing lookup: the route found, or none (`ENETUNREACH`).
    Route { stage: RouteStage, dst: IpAddr, found: Option<RouteHit> },
    /// Conntrack created the connection's entry (NEW).
    ConntrackNew { proto: Protocol, src: SocketAddr, dst: SocketAddr, zone: u16 },
    /// `CT --notrack`: no entry, so nat chains are skipped.
    Untracked,
    /// The packet's mark changed.
    Mark { old: u32, new: u32 },
    /// A NAT rule rewrote the destination (`REDIRECT`, `DNAT`) or source (`SNAT`, `MASQUERADE`).
    Nat { target: NatTarget, from: SocketAddr, to: SocketAddr },
    /// `loopback_xmit`: the packet re-enters the stack on `lo`.
    Loopback { src: SocketAddr, dst: SocketAddr },
    /// The socket lookup at local delivery found this socket.
    Socket { proto: L4, socket: SocketAddr, owner: Owner },
    /// The socket lookup found nothing: the kernel answers RST (TCP) or ICMP port unreachable.
    NoSocket { proto: L4, dst: SocketAddr },
    /// TPROXY handed the packet to a transparent socket.
    Tproxy { socket: SocketAddr, owner: Owner, mark: u32 },
    /// A match module or target that is not modelled (lenient parsing) was reached.
    Unknown { what: UnknownKind, name: String, line: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownKind {
    /// A match module, assumed to match.
    Match,
    /// A target, assumed to continue.
    Target,
}

impl Event {
    pub fn kind(&self) -> NoteKind {
        match self {
            Event::Route { .. } => NoteKind::Route,
            Event::ConntrackNew { .. } | Event::Untracked => NoteKind::Conntrack,
            Event::Mark { .. } => NoteKind::Mark,
            Event::Nat { .. } => NoteKind::Nat,
            Event::Loopback { .. } => NoteKind::Loopback,
            Event::Socket { .. } | Event::NoSocket { .. } | Event::Tproxy { .. } => NoteKind::Socket,
            Event::Unknown { .. } => NoteKind::Unknown,
        }
    }
}

/// Where a rule sits: its table, chain and 1-based position, and its line in the rules file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleAt {
    pub table: TableName,
    pub chain: Arc<str>,
    pub rule: usize,
    pub line: u32,
}

/// Why a rule stopped the packet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum RuleDrop {
    Drop,
    Reject {
        with: String,
    },
    /// REDIRECT in PREROUTING on an interface without an address.
    RedirectNoAddress {
        dev: String,
    },
    /// TPROXY on a protocol other than TCP and UDP.
    TproxyProtocol,
    /// TPROXY found a socket, but it is not `IP_TRANSPARENT`.
    TproxyNotTransparent {
        socket: SocketAddr,
    },
    /// TPROXY found no socket on the address and port.
    TproxyNoSocket {
        addr: SocketAddr,
    },
}

/// Why the packet is dropped, or what a local delivery without a socket gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Reason {
    /// A rule's target.
    Rule { at: RuleAt, drop: RuleDrop },
    /// A base chain's DROP policy.
    Policy { table: TableName, chain: Arc<str> },
    /// No route: the sender's socket call fails (`local`) or the packet is dropped.
    NoRoute { dst: IpAddr, local: bool },
    /// A loopback destination arriving on another interface without `route_localnet`.
    Martian { dst: IpAddr, dev: String },
    /// Not a local address, and the namespace does not forward.
    NotLocal { dst: IpAddr },
    /// Delivered to a protocol the kernel handles itself (ICMP echo ...).
    KernelHandler,
    /// No socket listens: TCP gets RST, UDP ICMP port unreachable.
    NoSocket { proto: L4, dst: SocketAddr },
    /// The next hop's link-layer address cannot be resolved: its neighbour entry is FAILED
    /// and no rule explains it (the packet is dropped; the sender hears of it only through the
    /// ICMP error the kernel sends itself, docs/trace.md "Next-hop resolution").
    NoNeighbour { next_hop: IpAddr, dev: String },
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
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub disposition: Disposition,
    pub in_iface: Option<String>,
    pub out_iface: Option<String>,
    /// Source after SNAT.
    pub src: SocketAddr,
    /// Destination after NAT.
    pub dst: SocketAddr,
    /// The original destination (`SO_ORIGINAL_DST`).
    pub orig_dst: SocketAddr,
    pub mark: u32,
    pub ctmark: u32,
    pub zone: u16,
    /// The listening socket a local delivery reaches, when one is known.
    pub socket: Option<Socket>,
    /// Why the packet was dropped, or what happens at a local delivery without a socket.
    pub reason: Option<Reason>,
}

/// One way the packet can go; several when `statistic` rules split it.
#[derive(Debug, Clone, PartialEq)]
pub struct Branch {
    pub probability: f64,
    pub steps: Vec<Step>,
    pub notes: Vec<Note>,
    pub result: Outcome,
    /// Rules reached whose match or target is unknown (lenient parsing): line numbers.
    pub unknown: Vec<u32>,
    /// Rules reached that did not match (empty unless asked for: [`super::trace_misses`]).
    pub misses: Vec<Miss>,
}

pub(super) fn endpoint(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}
