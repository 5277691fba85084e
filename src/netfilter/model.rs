//! The typed rule model: tables, chains and rules as the kernel holds them.
//!
//! This is the neutral model every input format (iptables-save, restore-style generator output,
//! an `istio-init` log) becomes. The evaluator only ever sees these types.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

/// IPv4 (`iptables-save`) or IPv6 (`ip6tables-save`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

/// The five iptables tables, in no particular order (hook order lives in the evaluator).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TableName {
    Raw,
    Mangle,
    Nat,
    Filter,
    Security,
}

impl TableName {
    pub fn parse(s: &str) -> Option<TableName> {
        Some(match s {
            "raw" => TableName::Raw,
            "mangle" => TableName::Mangle,
            "nat" => TableName::Nat,
            "filter" => TableName::Filter,
            "security" => TableName::Security,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TableName::Raw => "raw",
            TableName::Mangle => "mangle",
            TableName::Nat => "nat",
            TableName::Filter => "filter",
            TableName::Security => "security",
        }
    }

    /// The built-in chains of this table, as the kernel creates them.
    pub fn builtin_chains(self) -> &'static [&'static str] {
        match self {
            TableName::Raw => &["PREROUTING", "OUTPUT"],
            TableName::Mangle => &["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"],
            TableName::Nat => &["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
            TableName::Filter => &["INPUT", "FORWARD", "OUTPUT"],
            TableName::Security => &["INPUT", "FORWARD", "OUTPUT"],
        }
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed rule set: one family, its tables in file order.
#[derive(Debug, Clone)]
pub struct Ruleset {
    pub family: Family,
    /// The file name used in diagnostics and trace sources.
    pub source: String,
    pub tables: Vec<Table>,
}

impl Ruleset {
    pub fn table(&self, name: TableName) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }

    pub fn rule_count(&self) -> usize {
        self.tables.iter().flat_map(|t| &t.chains).map(|c| c.rules.len()).sum()
    }
}

#[derive(Debug, Clone)]
pub struct Table {
    pub name: TableName,
    /// Line of the `*table` header (1-based).
    pub line: u32,
    /// Chains in declaration order; jump targets are resolved to indices by the evaluator.
    pub chains: Vec<Chain>,
}

impl Table {
    pub fn chain(&self, name: &str) -> Option<&Chain> {
        self.chains.iter().find(|c| c.name == name)
    }

    pub fn chain_index(&self, name: &str) -> Option<usize> {
        self.chains.iter().position(|c| c.name == name)
    }
}

#[derive(Debug, Clone)]
pub struct Chain {
    pub name: String,
    /// `Some` for a built-in chain (its policy), `None` for a user chain.
    pub policy: Option<Policy>,
    /// Line of the `:CHAIN` declaration (1-based), 0 when implied.
    pub line: u32,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Accept,
    Drop,
}

/// One rule: its matches in order, then its target.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Line in the source file (1-based).
    pub line: u32,
    pub matches: Vec<Match>,
    pub target: Target,
}

/// A value with iptables' `!` in front of it or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neg<T> {
    pub negated: bool,
    pub value: T,
}

impl<T> Neg<T> {
    pub fn plain(value: T) -> Self {
        Neg { negated: false, value }
    }

    /// Applies the negation to a test result.
    pub fn apply(&self, matched: bool) -> bool {
        matched != self.negated
    }
}

/// An interface name as `-i`/`-o` give it; a trailing `+` is a prefix wildcard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceName {
    pub name: String,
    pub wildcard: bool,
}

impl IfaceName {
    pub fn matches(&self, iface: &str) -> bool {
        if self.wildcard {
            iface.starts_with(&self.name)
        } else {
            iface == self.name
        }
    }
}

/// Inclusive port range (`80`, `80:90`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub lo: u16,
    pub hi: u16,
}

impl PortRange {
    pub fn contains(&self, port: u16) -> bool {
        self.lo <= port && port <= self.hi
    }
}

/// An inclusive id range (`--uid-owner 1337` or `--uid-owner 1000-2000`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub lo: u32,
    pub hi: u32,
}

/// `value/mask` as in `--mark 0x539/0xffffffff` (shared with policy routing's `fwmark`).
pub use crate::util::mark::MarkMask;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
    Sctp,
    /// `-p all` (or `-p 0`).
    All,
    /// Another protocol by number.
    Number(u8),
}

impl Protocol {
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Icmp => 1,
            Protocol::Icmpv6 => 58,
            Protocol::Sctp => 132,
            Protocol::All => 0,
            Protocol::Number(n) => n,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CtState {
    New,
    Established,
    Related,
    Invalid,
    Untracked,
    Snat,
    Dnat,
}

/// TCP flag bits, as the kernel numbers them.
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

/// `--tcp-flags MASK COMP`: (flags & mask) == comp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpFlags {
    pub mask: u8,
    pub comp: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MultiportDir {
    Src,
    Dst,
    Either,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrType {
    Unspec,
    Unicast,
    Local,
    Broadcast,
    Anycast,
    Multicast,
    Blackhole,
    Unreachable,
    Prohibit,
    Throw,
    Nat,
    Xresolve,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StatisticMode {
    /// `--mode random --probability p`.
    Random { probability: f64 },
    /// `--mode nth --every n --packet p`.
    Nth { every: u32, packet: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecentCommand {
    Set,
    Rcheck,
    Update,
    Remove,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetDir {
    Src,
    Dst,
}

/// One match of a rule. The basic header matches (`-s`, `-d`, `-i`, `-o`, `-p`) are matches too,
/// so a rule is just an ordered conjunction.
#[derive(Debug, Clone, PartialEq)]
pub enum Match {
    Source(Neg<IpNet>),
    Destination(Neg<IpNet>),
    InInterface(Neg<IfaceName>),
    OutInterface(Neg<IfaceName>),
    Protocol(Neg<Protocol>),
    /// `-f` / `! -f`: non-first fragments (a first packet never is one).
    Fragment {
        negated: bool,
    },
    /// `-m tcp`, `-m udp`, `-m sctp` (the implicit protocol matches).
    Ports {
        proto: Protocol,
        sport: Option<Neg<PortRange>>,
        dport: Option<Neg<PortRange>>,
        tcp_flags: Option<Neg<TcpFlags>>,
    },
    Multiport {
        negated: bool,
        dir: MultiportDir,
        ports: Vec<PortRange>,
    },
    Owner {
        uid: Option<Neg<IdRange>>,
        gid: Option<Neg<IdRange>>,
        socket_exists: Option<Neg<()>>,
        suppl_groups: bool,
    },
    Mark(Neg<MarkMask>),
    Connmark(Neg<MarkMask>),
    /// `-m conntrack --ctstate ...` and `-m state --state ...` alike.
    CtState(Neg<Vec<CtState>>),
    Comment(String),
    AddrType {
        src: Option<Neg<Vec<AddrType>>>,
        dst: Option<Neg<Vec<AddrType>>>,
        limit_iface_in: bool,
        limit_iface_out: bool,
    },
    Statistic {
        negated: bool,
        mode: StatisticMode,
    },
    /// `-m icmp --icmp-type T[/C]` or `-m icmp6 --icmpv6-type T[/C]`; `code` None = any.
    IcmpType {
        v6: bool,
        negated: bool,
        ty: u8,
        code: Option<u8>,
    },
    Socket {
        transparent: bool,
        nowildcard: bool,
        restore_skmark: bool,
    },
    /// `-m set --match-set NAME src,dst`: the sets are assumed to exist and be empty.
    Set {
        negated: bool,
        name: String,
        dirs: Vec<SetDir>,
    },
    /// `-m recent`: per-trace state, empty at the start of a trace.
    Recent {
        name: String,
        command: RecentCommand,
        seconds: Option<u32>,
        hitcount: Option<u32>,
        rsource: bool,
        negated: bool,
    },
    /// A module we do not model, kept only in lenient mode; every trace reaching it says so.
    Unknown {
        module: String,
        args: String,
    },
}

/// DNAT/SNAT `--to-destination`/`--to-source` value: `[ip[-ip]][:port[-port]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NatRange {
    pub addr: Option<IpAddr>,
    pub addr_hi: Option<IpAddr>,
    pub ports: Option<PortRange>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnmarkOp {
    /// `--set-xmark v/m`: ctmark = (ctmark & !m) ^ v.
    SetXmark(MarkMask),
    /// `--save-mark --nfmask n --ctmask c`: ctmark = (ctmark & !c) ^ (nfmark & n).
    Save { nfmask: u32, ctmask: u32 },
    /// `--restore-mark --nfmask n --ctmask c`: nfmark = (nfmark & !n) ^ (ctmark & c).
    Restore { nfmask: u32, ctmask: u32 },
}

/// What a rule does when all its matches hold.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// No `-j`: the rule only counts; evaluation continues.
    None,
    Accept,
    Drop,
    Return,
    Jump(std::sync::Arc<str>),
    Goto(std::sync::Arc<str>),
    Reject {
        with: Option<String>,
    },
    Redirect {
        ports: Option<PortRange>,
    },
    Dnat {
        to: NatRange,
    },
    Snat {
        to: NatRange,
    },
    Masquerade {
        ports: Option<PortRange>,
    },
    /// All MARK forms normalised to `--set-xmark`: mark = (mark & !mask) ^ value.
    Mark(MarkMask),
    Connmark(ConnmarkOp),
    Tproxy {
        on_port: u16,
        on_ip: Option<IpAddr>,
        mark: Option<MarkMask>,
    },
    Ct {
        zone: Option<u16>,
        notrack: bool,
    },
    Log {
        prefix: Option<String>,
    },
    Nflog {
        group: Option<u16>,
        prefix: Option<String>,
    },
    Trace,
    /// A target we do not model, kept only in lenient mode.
    Unknown {
        name: String,
        args: String,
    },
}

impl Target {
    /// The name as iptables prints it after `-j`.
    pub fn name(&self) -> &str {
        match self {
            Target::None => "",
            Target::Accept => "ACCEPT",
            Target::Drop => "DROP",
            Target::Return => "RETURN",
            Target::Jump(c) | Target::Goto(c) => c,
            Target::Reject { .. } => "REJECT",
            Target::Redirect { .. } => "REDIRECT",
            Target::Dnat { .. } => "DNAT",
            Target::Snat { .. } => "SNAT",
            Target::Masquerade { .. } => "MASQUERADE",
            Target::Mark(_) => "MARK",
            Target::Connmark(_) => "CONNMARK",
            Target::Tproxy { .. } => "TPROXY",
            Target::Ct { .. } => "CT",
            Target::Log { .. } => "LOG",
            Target::Nflog { .. } => "NFLOG",
            Target::Trace => "TRACE",
            Target::Unknown { name, .. } => name,
        }
    }
}
