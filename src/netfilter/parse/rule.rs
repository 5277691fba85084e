//! One rule's options (everything after `-A CHAIN`) into matches and a target.
//!
//! iptables parses with getopt over the options of every loaded module: an option belongs to
//! the most recent `-m` that knows it, the implicit protocol match after `-p tcp|udp|sctp`, or,
//! after `-j`, to the target. We follow that, and name the option and module we do not model.

use super::error::Problem;
use super::lexer::Token;
use super::value::{self as v, ValueResult};
use std::sync::Arc;

use crate::netfilter::model::*;
use crate::util::fasthash::FastMap;
use crate::util::num::parse_u32;

/// A parsed rule body, plus the unknown parts kept in lenient mode.
#[derive(Debug)]
pub struct RuleBody {
    pub matches: Vec<Match>,
    pub target: Target,
    /// Human-readable notes about what was kept as unknown (lenient mode).
    pub unknown: Vec<String>,
}

const SUPPORTED_MATCHES: &str = "tcp, udp, sctp, multiport, owner, mark, connmark, conntrack, state, \
comment, addrtype, statistic, icmp, icmp6, socket, set, recent";
const SUPPORTED_TARGETS: &str = "ACCEPT, DROP, REJECT, RETURN, a user chain, REDIRECT, DNAT, SNAT, \
MASQUERADE, MARK, CONNMARK, TPROXY, CT, LOG, NFLOG, TRACE";

pub struct RuleParser<'t, 'a> {
    /// The table's chains, so jump targets share the chain's name instead of a copy.
    chains: &'t FastMap<Arc<str>, usize>,
    toks: &'t [Token<'a>],
    pos: usize,
    family: Family,
    lenient: bool,
    matches: Vec<Match>,
    /// The protocol given with `-p`, for the implicit tcp/udp/sctp match.
    proto: Option<Protocol>,
    module: Option<Module>,
    target: Option<(Target, usize)>,
    pending_target: Option<PendingTarget>,
    unknown: Vec<String>,
}

/// A match module whose options are still being read.
#[derive(Debug)]
enum Module {
    Ports {
        proto: Protocol,
        sport: Option<Neg<PortRange>>,
        dport: Option<Neg<PortRange>>,
        flags: Option<Neg<TcpFlags>>,
    },
    Multiport {
        negated: bool,
        dir: Option<MultiportDir>,
        ports: Vec<PortRange>,
    },
    Owner {
        uid: Option<Neg<IdRange>>,
        gid: Option<Neg<IdRange>>,
        socket_exists: Option<Neg<()>>,
        suppl: bool,
    },
    Mark(Option<Neg<MarkMask>>),
    Connmark(Option<Neg<MarkMask>>),
    CtState(Option<Neg<Vec<CtState>>>),
    Comment(Option<String>),
    AddrType {
        src: Option<Neg<Vec<AddrType>>>,
        dst: Option<Neg<Vec<AddrType>>>,
        iface_in: bool,
        iface_out: bool,
    },
    Statistic {
        negated: bool,
        mode: Option<String>,
        probability: Option<f64>,
        every: Option<u32>,
        packet: Option<u32>,
    },
    Icmp {
        v6: bool,
        value: Option<(bool, u8, Option<u8>)>,
    },
    Socket {
        transparent: bool,
        nowildcard: bool,
        restore_skmark: bool,
    },
    Set {
        negated: bool,
        name: Option<String>,
        dirs: Vec<SetDir>,
    },
    Recent {
        name: String,
        command: Option<RecentCommand>,
        seconds: Option<u32>,
        hitcount: Option<u32>,
        rsource: bool,
        negated: bool,
    },
    Unknown {
        module: String,
        args: Vec<String>,
    },
}

#[derive(Debug)]
enum PendingTarget {
    Reject(Option<String>),
    Redirect(Option<PortRange>),
    Dnat(Option<NatRange>),
    Snat(Option<NatRange>),
    Masquerade(Option<PortRange>),
    Mark(Option<MarkMask>),
    Connmark { op: Option<&'static str>, value: Option<MarkMask>, nfmask: u32, ctmask: u32 },
    Tproxy { port: Option<u16>, ip: Option<std::net::IpAddr>, mark: Option<MarkMask> },
    Ct { zone: Option<u16>, notrack: bool },
    Log(Option<String>),
    Nflog { group: Option<u16>, prefix: Option<String> },
    Unknown { name: String, args: Vec<String> },
}

impl<'t, 'a> RuleParser<'t, 'a> {
    pub fn new(
        toks: &'t [Token<'a>],
        chains: &'t FastMap<Arc<str>, usize>,
        family: Family,
        lenient: bool,
    ) -> Self {
        RuleParser {
            chains,
            toks,
            pos: 0,
            family,
            lenient,
            matches: Vec::with_capacity(toks.len() / 3 + 1),
            proto: None,
            module: None,
            target: None,
            pending_target: None,
            unknown: Vec::new(),
        }
    }

    fn err(&self, idx: usize, msg: impl Into<String>) -> Problem {
        let t = &self.toks[idx.min(self.toks.len().saturating_sub(1))];
        Problem::new(t.col, t.len, msg)
    }

    fn end_problem(&self, msg: impl Into<String>) -> Problem {
        match self.toks.last() {
            Some(t) => Problem::new(t.col + t.len, 1, msg),
            None => Problem::new(0, 1, msg),
        }
    }

    /// The value after option token `opt_idx`; `! ` before the value (old syntax) is folded in.
    fn value(&mut self, opt_idx: usize, neg: &mut bool) -> Result<(usize, &'t str), Problem> {
        if self.pos < self.toks.len() && self.toks[self.pos].as_str() == "!" {
            if *neg {
                return Err(self.err(self.pos, "`!` given twice"));
            }
            *neg = true;
            self.pos += 1;
        }
        match self.toks.get(self.pos) {
            Some(t) => {
                self.pos += 1;
                Ok((self.pos - 1, t.text.as_ref()))
            }
            None => Err(self.err(opt_idx, format!("`{}` needs a value", self.toks[opt_idx].as_str()))),
        }
    }

    fn conv<T>(&self, idx: usize, r: ValueResult<T>) -> Result<T, Problem> {
        r.map_err(|m| self.err(idx, m))
    }

    pub fn parse(mut self) -> Result<RuleBody, Problem> {
        while self.pos < self.toks.len() {
            let idx = self.pos;
            let mut neg = false;
            if self.toks[idx].as_str() == "!" {
                neg = true;
                self.pos += 1;
                if self.pos >= self.toks.len() {
                    return Err(self.err(idx, "`!` at the end of the rule negates nothing"));
                }
            }
            let oi = self.pos;
            let opt = self.toks[oi].as_str();
            self.pos += 1;
            match opt {
                "-s" | "--source" | "--src" | "-d" | "--destination" | "--dst" => {
                    let (vi, val) = self.value(oi, &mut neg)?;
                    let net = self.conv(vi, v::address(val, self.family))?;
                    let n = Neg { negated: neg, value: net };
                    self.matches.push(if opt.starts_with("-s") || opt == "--source" || opt == "--src" {
                        Match::Source(n)
                    } else {
                        Match::Destination(n)
                    });
                }
                "-i" | "--in-interface" | "-o" | "--out-interface" => {
                    let (_, val) = self.value(oi, &mut neg)?;
                    let (name, wildcard) = match val.strip_suffix('+') {
                        Some(n) => (n.to_string(), true),
                        None => (val.to_string(), false),
                    };
                    let n = Neg { negated: neg, value: IfaceName { name, wildcard } };
                    self.matches.push(if opt == "-i" || opt == "--in-interface" {
                        Match::InInterface(n)
                    } else {
                        Match::OutInterface(n)
                    });
                }
                "-p" | "--protocol" => {
                    let (vi, val) = self.value(oi, &mut neg)?;
                    let p = self.conv(vi, v::protocol(val))?;
                    if !neg {
                        self.proto = Some(p);
                    }
                    self.matches.push(Match::Protocol(Neg { negated: neg, value: p }));
                }
                "-f" | "--fragment" => self.matches.push(Match::Fragment { negated: neg }),
                "-m" | "--match" => {
                    if neg {
                        return Err(self.err(idx, "`!` cannot negate `-m`"));
                    }
                    self.finish_module()?;
                    let (vi, name) = self.value(oi, &mut neg)?;
                    self.module = Some(self.start_module(vi, name)?);
                }
                "-j" | "--jump" | "-g" | "--goto" => {
                    if neg {
                        return Err(self.err(idx, "`!` cannot negate a target"));
                    }
                    if self.target.is_some() || self.pending_target.is_some() {
                        return Err(self.err(oi, "a rule has one target; this is a second `-j`/`-g`"));
                    }
                    self.finish_module()?;
                    let (vi, name) = self.value(oi, &mut neg)?;
                    let goto = opt == "-g" || opt == "--goto";
                    self.start_target(vi, name, goto)?;
                }
                "-c" | "--set-counters" => {
                    self.value(oi, &mut neg)?;
                    self.value(oi, &mut neg)?;
                }
                _ if opt.starts_with('-') => self.option(oi, opt, neg)?,
                _ => {
                    return Err(self
                        .err(oi, format!("unexpected `{opt}`: expected an option such as -s, -p, -m or -j"))
                        .help("a value may need quotes if it contains spaces"))
                }
            }
        }
        self.finish_module()?;
        let target = match (self.target.take(), self.pending_target.take()) {
            (Some((t, _)), _) => t,
            (None, Some(p)) => self.finish_target(p)?,
            (None, None) => Target::None,
        };
        Ok(RuleBody { matches: self.matches, target, unknown: self.unknown })
    }

    /// An option that belongs to a module or the target.
    fn option(&mut self, oi: usize, opt: &str, neg: bool) -> Result<(), Problem> {
        if self.pending_target.is_some() {
            return self.target_option(oi, opt, neg);
        }
        if self.target.is_some() {
            let name = self.target.as_ref().map(|(t, _)| t.name().to_string()).unwrap_or_default();
            return Err(self.err(oi, format!("target {name} takes no option `{opt}`")));
        }
        if let Some(mut m) = self.module.take() {
            let handled = self.module_option(&mut m, oi, opt, neg);
            self.module = Some(m);
            if handled? {
                return Ok(());
            }
        }
        // The implicit protocol match: `-p tcp --dport 80` without `-m tcp`.
        if let Some(proto @ (Protocol::Tcp | Protocol::Udp | Protocol::Sctp)) = self.proto {
            if matches!(
                opt,
                "--dport" | "--sport" | "--destination-port" | "--source-port" | "--tcp-flags" | "--syn"
            ) {
                self.finish_module()?;
                let mut m = Module::Ports { proto, sport: None, dport: None, flags: None };
                let handled = self.module_option(&mut m, oi, opt, neg)?;
                self.module = Some(m);
                if handled {
                    return Ok(());
                }
            }
        }
        let owner = match &self.module {
            Some(m) => format!(" (the current match is {})", module_name(m)),
            None => String::new(),
        };
        Err(self
            .err(oi, format!("unknown option `{opt}`{owner}"))
            .help(format!("supported match modules: {SUPPORTED_MATCHES}; targets: {SUPPORTED_TARGETS}")))
    }

    fn start_module(&mut self, vi: usize, name: &str) -> Result<Module, Problem> {
        Ok(match name {
            "tcp" => Module::Ports { proto: Protocol::Tcp, sport: None, dport: None, flags: None },
            "udp" => Module::Ports { proto: Protocol::Udp, sport: None, dport: None, flags: None },
            "sctp" => Module::Ports { proto: Protocol::Sctp, sport: None, dport: None, flags: None },
            "multiport" => Module::Multiport { negated: false, dir: None, ports: Vec::new() },
            "owner" => Module::Owner { uid: None, gid: None, socket_exists: None, suppl: false },
            "mark" => Module::Mark(None),
            "connmark" => Module::Connmark(None),
            "conntrack" | "state" => Module::CtState(None),
            "comment" => Module::Comment(None),
            "addrtype" => Module::AddrType { src: None, dst: None, iface_in: false, iface_out: false },
            "statistic" => {
                Module::Statistic { negated: false, mode: None, probability: None, every: None, packet: None }
            }
            "icmp" => Module::Icmp { v6: false, value: None },
            "icmp6" | "icmpv6" => Module::Icmp { v6: true, value: None },
            "socket" => Module::Socket { transparent: false, nowildcard: false, restore_skmark: false },
            "set" => Module::Set { negated: false, name: None, dirs: Vec::new() },
            "recent" => Module::Recent {
                name: "DEFAULT".into(),
                command: None,
                seconds: None,
                hitcount: None,
                rsource: true,
                negated: false,
            },
            other if self.lenient => {
                self.unknown.push(format!("match module `{other}`"));
                Module::Unknown { module: other.to_string(), args: Vec::new() }
            }
            other => {
                return Err(self.err(vi, format!("match module `{other}` is not supported")).help(format!(
                    "supported: {SUPPORTED_MATCHES}; run with --lenient to keep such rules as unknown"
                )))
            }
        })
    }

    /// Handles `opt` for module `m`; `Ok(false)` when the module does not know it.
    fn module_option(&mut self, m: &mut Module, oi: usize, opt: &str, neg: bool) -> Result<bool, Problem> {
        let mut neg = neg;
        match m {
            Module::Ports { proto, sport, dport, flags } => match opt {
                "--dport" | "--destination-port" | "--sport" | "--source-port" => {
                    let (vi, val) = self.value(oi, &mut neg)?;
                    let r = Neg { negated: neg, value: self.conv(vi, v::port_range(val))? };
                    if matches!(opt, "--dport" | "--destination-port") {
                        *dport = Some(r);
                    } else {
                        *sport = Some(r);
                    }
                }
                "--tcp-flags" if *proto == Protocol::Tcp => {
                    let (mi, mask) = self.value(oi, &mut neg)?;
                    let (_, comp) = self.value(oi, &mut neg)?;
                    *flags = Some(Neg { negated: neg, value: self.conv(mi, v::tcp_flags(mask, comp))? });
                }
                "--syn" if *proto == Protocol::Tcp => {
                    use crate::netfilter::model::tcp_flags::*;
                    *flags = Some(Neg {
                        negated: neg,
                        value: TcpFlags { mask: FIN | SYN | RST | ACK, comp: SYN },
                    });
                }
                _ => return Ok(false),
            },
            Module::Multiport { negated, dir, ports } => {
                let d = match opt {
                    "--dports" | "--destination-ports" => MultiportDir::Dst,
                    "--sports" | "--source-ports" => MultiportDir::Src,
                    "--ports" => MultiportDir::Either,
                    _ => return Ok(false),
                };
                let (vi, val) = self.value(oi, &mut neg)?;
                *ports = self.conv(vi, v::port_list(val))?;
                *dir = Some(d);
                *negated = neg;
            }
            Module::Owner { uid, gid, socket_exists, suppl } => match opt {
                "--uid-owner" => {
                    let (vi, val) = self.value(oi, &mut neg)?;
                    *uid = Some(Neg { negated: neg, value: self.conv(vi, v::id_range(val, "user"))? });
                }
                "--gid-owner" => {
                    let (vi, val) = self.value(oi, &mut neg)?;
                    *gid = Some(Neg { negated: neg, value: self.conv(vi, v::id_range(val, "group"))? });
                }
                "--socket-exists" => *socket_exists = Some(Neg { negated: neg, value: () }),
                "--suppl-groups" => *suppl = true,
                _ => return Ok(false),
            },
            Module::Mark(slot) | Module::Connmark(slot) => match opt {
                "--mark" => {
                    let (vi, val) = self.value(oi, &mut neg)?;
                    *slot = Some(Neg { negated: neg, value: self.conv(vi, MarkMask::parse(val))? });
                }
                _ => return Ok(false),
            },
            Module::CtState(slot) => match opt {
                "--ctstate" | "--state" => {
                    let (vi, val) = self.value(oi, &mut neg)?;
                    *slot = Some(Neg { negated: neg, value: self.conv(vi, v::ct_states(val))? });
                }
                "--ctstatus" | "--ctproto" | "--ctorigsrc" | "--ctorigdst" | "--ctreplsrc"
                | "--ctrepldst" | "--ctorigsrcport" | "--ctorigdstport" | "--ctreplsrcport"
                | "--ctrepldstport" | "--ctexpire" | "--ctdir" => {
                    return Err(self
                        .err(oi, format!("conntrack option `{opt}` is not supported"))
                        .help("only --ctstate is modelled for conntrack"))
                }
                _ => return Ok(false),
            },
            Module::Comment(c) => match opt {
                "--comment" => {
                    let (_, val) = self.value(oi, &mut neg)?;
                    match c {
                        Some(s) => {
                            s.push(' ');
                            s.push_str(val);
                        }
                        None => *c = Some(val.to_string()),
                    }
                }
                _ => return Ok(false),
            },
            Module::AddrType { src, dst, iface_in, iface_out } => match opt {
                "--src-type" | "--dst-type" => {
                    let (vi, val) = self.value(oi, &mut neg)?;
                    let n = Some(Neg { negated: neg, value: self.conv(vi, v::addr_types(val))? });
                    if opt == "--src-type" {
                        *src = n;
                    } else {
                        *dst = n;
                    }
                }
                "--limit-iface-in" => *iface_in = true,
                "--limit-iface-out" => *iface_out = true,
                _ => return Ok(false),
            },
            Module::Statistic { negated, mode, probability, every, packet } => match opt {
                "--mode" => {
                    let (vi, val) = self.value(oi, &mut neg)?;
                    if val != "random" && val != "nth" {
                        return Err(
                            self.err(vi, format!("statistic mode `{val}` is unknown (random or nth)"))
                        );
                    }
                    *mode = Some(val.to_string());
                }
                "--probability" => {
                    let (vi, val) = self.value(oi, &mut neg)?;
                    let p: f64 =
                        val.parse().map_err(|_| self.err(vi, format!("`{val}` is not a probability")))?;
                    if !(0.0..=1.0).contains(&p) {
                        return Err(self.err(vi, "a probability lies between 0 and 1"));
                    }
                    *probability = Some(p);
                    *negated |= neg;
                }
                "--every" | "--packet" => {
                    let (vi, val) = self.value(oi, &mut neg)?;
                    let n = self.conv(vi, parse_u32(val))?;
                    if opt == "--every" {
                        *every = Some(n);
                        *negated |= neg;
                    } else {
                        *packet = Some(n);
                    }
                }
                _ => return Ok(false),
            },
            Module::Icmp { v6, value } => match opt {
                "--icmp-type" | "--icmpv6-type" => {
                    let (vi, val) = self.value(oi, &mut neg)?;
                    let (t, c) = self.conv(vi, v::icmp_type(val, *v6))?;
                    *value = Some((neg, t, c));
                }
                _ => return Ok(false),
            },
            Module::Socket { transparent, nowildcard, restore_skmark } => match opt {
                "--transparent" => *transparent = true,
                "--nowildcard" => *nowildcard = true,
                "--restore-skmark" => *restore_skmark = true,
                _ => return Ok(false),
            },
            Module::Set { negated, name, dirs } => match opt {
                "--match-set" => {
                    let (_, n) = self.value(oi, &mut neg)?;
                    let n = n.to_string();
                    let (fi, flags) = self.value(oi, &mut neg)?;
                    let mut d = Vec::new();
                    for f in flags.split(',') {
                        d.push(match f {
                            "src" => SetDir::Src,
                            "dst" => SetDir::Dst,
                            _ => return Err(self.err(fi, format!("set flag `{f}` is neither src nor dst"))),
                        });
                    }
                    *name = Some(n);
                    *dirs = d;
                    *negated = neg;
                }
                "--return-nomatch"
                | "--update-counters"
                | "--update-subcounters"
                | "--no-update-counters"
                | "--no-update-subcounters" => {}
                _ => return Ok(false),
            },
            Module::Recent { name, command, seconds, hitcount, rsource, negated } => match opt {
                "--name" => *name = self.value(oi, &mut neg)?.1.to_string(),
                "--set" | "--rcheck" | "--update" | "--remove" => {
                    *command = Some(match opt {
                        "--set" => RecentCommand::Set,
                        "--rcheck" => RecentCommand::Rcheck,
                        "--update" => RecentCommand::Update,
                        _ => RecentCommand::Remove,
                    });
                    *negated = neg;
                }
                "--seconds" | "--hitcount" => {
                    let (vi, val) = self.value(oi, &mut neg)?;
                    let n = self.conv(vi, parse_u32(val))?;
                    if opt == "--seconds" {
                        *seconds = Some(n);
                    } else {
                        *hitcount = Some(n);
                    }
                }
                "--mask" => {
                    self.value(oi, &mut neg)?;
                }
                "--reap" | "--rttl" => {}
                "--rsource" => *rsource = true,
                "--rdest" => *rsource = false,
                _ => return Ok(false),
            },
            Module::Unknown { args, .. } => {
                args.push(if neg { format!("! {opt}") } else { opt.to_string() });
                while self.pos < self.toks.len()
                    && !self.toks[self.pos].as_str().starts_with('-')
                    && self.toks[self.pos].as_str() != "!"
                {
                    args.push(self.toks[self.pos].as_str().to_string());
                    self.pos += 1;
                }
            }
        }
        Ok(true)
    }

    fn finish_module(&mut self) -> Result<(), Problem> {
        let Some(m) = self.module.take() else {
            return Ok(());
        };
        let end = self.pos.saturating_sub(1);
        let m = match m {
            Module::Ports { proto, sport, dport, flags } => {
                Match::Ports { proto, sport, dport, tcp_flags: flags }
            }
            Module::Multiport { negated, dir, ports } => match dir {
                Some(dir) => Match::Multiport { negated, dir, ports },
                None => return Err(self.err(end, "multiport needs --dports, --sports or --ports")),
            },
            Module::Owner { uid, gid, socket_exists, suppl } => {
                Match::Owner { uid, gid, socket_exists, suppl_groups: suppl }
            }
            Module::Mark(Some(m)) => Match::Mark(m),
            Module::Connmark(Some(m)) => Match::Connmark(m),
            Module::Mark(None) | Module::Connmark(None) => {
                return Err(self.err(end, "mark match needs --mark"))
            }
            Module::CtState(Some(s)) => Match::CtState(s),
            Module::CtState(None) => {
                return Err(self.err(end, "conntrack/state match needs --ctstate/--state"))
            }
            Module::Comment(c) => Match::Comment(c.unwrap_or_default()),
            Module::AddrType { src, dst, iface_in, iface_out } => {
                Match::AddrType { src, dst, limit_iface_in: iface_in, limit_iface_out: iface_out }
            }
            Module::Statistic { negated, mode, probability, every, packet } => {
                let mode = match mode.as_deref() {
                    Some("random") => StatisticMode::Random {
                        probability: probability
                            .ok_or_else(|| self.err(end, "statistic random needs --probability"))?,
                    },
                    Some(_) => StatisticMode::Nth {
                        every: every.ok_or_else(|| self.err(end, "statistic nth needs --every"))?,
                        packet: packet.unwrap_or(0),
                    },
                    None => return Err(self.err(end, "statistic needs --mode random|nth")),
                };
                Match::Statistic { negated, mode }
            }
            Module::Icmp { v6, value } => match value {
                Some((negated, ty, code)) => Match::IcmpType { v6, negated, ty, code },
                None => return Err(self.err(end, "icmp match needs --icmp-type")),
            },
            Module::Socket { transparent, nowildcard, restore_skmark } => {
                Match::Socket { transparent, nowildcard, restore_skmark }
            }
            Module::Set { negated, name, dirs } => match name {
                Some(name) => Match::Set { negated, name, dirs },
                None => return Err(self.err(end, "set match needs --match-set NAME src|dst")),
            },
            Module::Recent { name, command, seconds, hitcount, rsource, negated } => Match::Recent {
                name,
                command: command.unwrap_or(RecentCommand::Rcheck),
                seconds,
                hitcount,
                rsource,
                negated,
            },
            Module::Unknown { module, args } => Match::Unknown { module, args: args.join(" ") },
        };
        self.matches.push(m);
        Ok(())
    }

    fn start_target(&mut self, vi: usize, name: &str, goto: bool) -> Result<(), Problem> {
        let simple = |t: Target| Some((t, vi));
        if goto {
            self.target = simple(Target::Goto(self.chain_name(name)));
            return Ok(());
        }
        let pending = match name {
            "ACCEPT" => return self.set_target(Target::Accept, vi),
            "DROP" => return self.set_target(Target::Drop, vi),
            "RETURN" => return self.set_target(Target::Return, vi),
            "TRACE" => return self.set_target(Target::Trace, vi),
            "REJECT" => PendingTarget::Reject(None),
            "REDIRECT" => PendingTarget::Redirect(None),
            "DNAT" => PendingTarget::Dnat(None),
            "SNAT" => PendingTarget::Snat(None),
            "MASQUERADE" => PendingTarget::Masquerade(None),
            "MARK" => PendingTarget::Mark(None),
            "CONNMARK" => {
                PendingTarget::Connmark { op: None, value: None, nfmask: u32::MAX, ctmask: u32::MAX }
            }
            "TPROXY" => PendingTarget::Tproxy { port: None, ip: None, mark: None },
            "CT" => PendingTarget::Ct { zone: None, notrack: false },
            "NOTRACK" => return self.set_target(Target::Ct { zone: None, notrack: true }, vi),
            "LOG" => PendingTarget::Log(None),
            "NFLOG" => PendingTarget::Nflog { group: None, prefix: None },
            other
                if other.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
                    && is_extension_target(other) =>
            {
                if self.lenient {
                    self.unknown.push(format!("target `{other}`"));
                    PendingTarget::Unknown { name: other.to_string(), args: Vec::new() }
                } else {
                    return Err(self.err(vi, format!("target `{other}` is not supported")).help(format!(
                        "supported: {SUPPORTED_TARGETS}; run with --lenient to keep such rules as unknown"
                    )));
                }
            }
            chain => return self.set_target(Target::Jump(self.chain_name(chain)), vi),
        };
        self.pending_target = Some(pending);
        Ok(())
    }

    fn chain_name(&self, name: &str) -> Arc<str> {
        match self.chains.get_key_value(name) {
            Some((k, _)) => Arc::clone(k),
            None => Arc::from(name),
        }
    }

    fn set_target(&mut self, t: Target, vi: usize) -> Result<(), Problem> {
        self.target = Some((t, vi));
        Ok(())
    }

    fn target_option(&mut self, oi: usize, opt: &str, neg: bool) -> Result<(), Problem> {
        let mut neg = neg;
        if neg {
            return Err(self.err(oi, "target options cannot be negated"));
        }
        let Some(mut p) = self.pending_target.take() else {
            return Ok(());
        };
        let r = (|| -> Result<(), Problem> {
            match &mut p {
                PendingTarget::Reject(w) if opt == "--reject-with" => {
                    *w = Some(self.value(oi, &mut neg)?.1.to_string())
                }
                PendingTarget::Redirect(ports) | PendingTarget::Masquerade(ports)
                    if opt == "--to-ports" || opt == "--to-port" =>
                {
                    let (vi, val) = self.value(oi, &mut neg)?;
                    *ports = Some(self.conv(vi, v::nat_port_range(val))?);
                }
                PendingTarget::Redirect(_)
                | PendingTarget::Masquerade(_)
                | PendingTarget::Dnat(_)
                | PendingTarget::Snat(_)
                    if matches!(opt, "--random" | "--random-fully" | "--persistent") => {}
                PendingTarget::Dnat(to) if opt == "--to-destination" || opt == "--to" => {
                    let (vi, val) = self.value(oi, &mut neg)?;
                    *to = Some(self.conv(vi, v::nat_range(val, self.family))?);
                }
                PendingTarget::Snat(to) if opt == "--to-source" || opt == "--to" => {
                    let (vi, val) = self.value(oi, &mut neg)?;
                    *to = Some(self.conv(vi, v::nat_range(val, self.family))?);
                }
                PendingTarget::Mark(m) => {
                    let (vi, val) = self.value(oi, &mut neg)?;
                    let mm = self.conv(vi, MarkMask::parse(val))?;
                    // Userspace rewrites every form to --set-xmark (libxt_MARK.c mark_tg_parse).
                    *m = Some(
                        xmark(opt, val, mm)
                            .ok_or_else(|| self.err(oi, format!("MARK has no option `{opt}`")))?,
                    );
                }
                PendingTarget::Connmark { op, value, nfmask, ctmask } => match opt {
                    "--save-mark" | "--restore-mark" => {
                        *op = Some(if opt == "--save-mark" { "save" } else { "restore" });
                        if self.toks.get(self.pos).map(|t| t.as_str()) == Some("--mask") {
                            self.pos += 1;
                            let (vi, val) = self.value(oi, &mut neg)?;
                            let m = self.conv(vi, parse_u32(val))?;
                            *nfmask = m;
                            *ctmask = m;
                        }
                    }
                    "--nfmask" | "--ctmask" | "--mask" => {
                        let (vi, val) = self.value(oi, &mut neg)?;
                        let m = self.conv(vi, parse_u32(val))?;
                        match opt {
                            "--nfmask" => *nfmask = m,
                            "--ctmask" => *ctmask = m,
                            _ => {
                                *nfmask = m;
                                *ctmask = m;
                            }
                        }
                    }
                    "--set-xmark" | "--set-mark" | "--and-mark" | "--or-mark" | "--xor-mark" => {
                        let (vi, val) = self.value(oi, &mut neg)?;
                        let mm = self.conv(vi, MarkMask::parse(val))?;
                        *op = Some("set");
                        *value = xmark(opt, val, mm);
                    }
                    _ => return Err(self.err(oi, format!("CONNMARK has no option `{opt}`"))),
                },
                PendingTarget::Tproxy { port, ip, mark } => match opt {
                    "--on-port" => {
                        let (vi, val) = self.value(oi, &mut neg)?;
                        *port = Some(self.conv(vi, v::port(val))?);
                    }
                    "--on-ip" => {
                        let (vi, val) = self.value(oi, &mut neg)?;
                        *ip = Some(self.conv(vi, v::ip(val, self.family))?);
                    }
                    "--tproxy-mark" => {
                        let (vi, val) = self.value(oi, &mut neg)?;
                        *mark = Some(self.conv(vi, MarkMask::parse(val))?);
                    }
                    _ => return Err(self.err(oi, format!("TPROXY has no option `{opt}`"))),
                },
                PendingTarget::Ct { zone, notrack } => match opt {
                    "--zone" | "--zone-orig" | "--zone-reply" => {
                        let (vi, val) = self.value(oi, &mut neg)?;
                        let z = val
                            .parse::<u16>()
                            .map_err(|_| self.err(vi, format!("`{val}` is not a zone number")))?;
                        *zone = Some(z);
                    }
                    "--notrack" => *notrack = true,
                    _ => {
                        return Err(self
                            .err(oi, format!("CT option `{opt}` is not supported"))
                            .help("CT is modelled with --zone and --notrack"))
                    }
                },
                PendingTarget::Log(prefix) => match opt {
                    "--log-prefix" => *prefix = Some(self.value(oi, &mut neg)?.1.to_string()),
                    "--log-level" => {
                        self.value(oi, &mut neg)?;
                    }
                    "--log-tcp-sequence" | "--log-tcp-options" | "--log-ip-options" | "--log-uid"
                    | "--log-macdecode" => {}
                    _ => return Err(self.err(oi, format!("LOG has no option `{opt}`"))),
                },
                PendingTarget::Nflog { group, prefix } => match opt {
                    "--nflog-group" => {
                        let (vi, val) = self.value(oi, &mut neg)?;
                        *group =
                            Some(val.parse().map_err(|_| self.err(vi, format!("`{val}` is not a group")))?);
                    }
                    "--nflog-prefix" => *prefix = Some(self.value(oi, &mut neg)?.1.to_string()),
                    "--nflog-range" | "--nflog-size" | "--nflog-threshold" => {
                        self.value(oi, &mut neg)?;
                    }
                    _ => return Err(self.err(oi, format!("NFLOG has no option `{opt}`"))),
                },
                PendingTarget::Unknown { args, .. } => {
                    args.push(opt.to_string());
                    while self.pos < self.toks.len() && !self.toks[self.pos].as_str().starts_with("--") {
                        args.push(self.toks[self.pos].as_str().to_string());
                        self.pos += 1;
                    }
                }
                other => {
                    return Err(self.err(oi, format!("target {} has no option `{opt}`", pending_name(other))));
                }
            }
            Ok(())
        })();
        self.pending_target = Some(p);
        r
    }

    fn finish_target(&self, p: PendingTarget) -> Result<Target, Problem> {
        Ok(match p {
            PendingTarget::Reject(with) => Target::Reject { with },
            PendingTarget::Redirect(ports) => Target::Redirect { ports },
            PendingTarget::Masquerade(ports) => Target::Masquerade { ports },
            PendingTarget::Dnat(Some(to)) => Target::Dnat { to },
            PendingTarget::Snat(Some(to)) => Target::Snat { to },
            PendingTarget::Dnat(None) => return Err(self.end_problem("DNAT needs --to-destination")),
            PendingTarget::Snat(None) => return Err(self.end_problem("SNAT needs --to-source")),
            PendingTarget::Mark(Some(m)) => Target::Mark(m),
            PendingTarget::Mark(None) => {
                return Err(self.end_problem("MARK needs --set-xmark/--set-mark/..."))
            }
            PendingTarget::Connmark { op, value, nfmask, ctmask } => Target::Connmark(match (op, value) {
                (Some("save"), _) => ConnmarkOp::Save { nfmask, ctmask },
                (Some("restore"), _) => ConnmarkOp::Restore { nfmask, ctmask },
                (Some(_), Some(v)) => ConnmarkOp::SetXmark(v),
                _ => {
                    return Err(self.end_problem("CONNMARK needs --set-xmark, --save-mark or --restore-mark"))
                }
            }),
            PendingTarget::Tproxy { port, ip, mark } => Target::Tproxy {
                on_port: port.ok_or_else(|| self.end_problem("TPROXY needs --on-port"))?,
                on_ip: ip,
                mark,
            },
            PendingTarget::Ct { zone, notrack } => Target::Ct { zone, notrack },
            PendingTarget::Log(prefix) => Target::Log { prefix },
            PendingTarget::Nflog { group, prefix } => Target::Nflog { group, prefix },
            PendingTarget::Unknown { name, args } => Target::Unknown { name, args: args.join(" ") },
        })
    }
}

/// MARK/CONNMARK value forms as userspace rewrites them to `--set-xmark` (libxt_MARK.c
/// `mark_tg_parse`): `--set-mark v[/m]` is `v/(v|m)` (plain `v`: `v/0xffffffff`), `--or-mark v`
/// is `v/v`, `--and-mark v` is `0/~v`, `--xor-mark v` is `v/0`.
fn xmark(opt: &str, val: &str, mm: MarkMask) -> Option<MarkMask> {
    Some(match opt {
        "--set-xmark" => mm,
        "--set-mark" => {
            MarkMask { value: mm.value, mask: if val.contains('/') { mm.value | mm.mask } else { u32::MAX } }
        }
        "--or-mark" => MarkMask { value: mm.value, mask: mm.value },
        "--and-mark" => MarkMask { value: 0, mask: !mm.value },
        "--xor-mark" => MarkMask { value: mm.value, mask: 0 },
        _ => return None,
    })
}

fn module_name(m: &Module) -> &'static str {
    match m {
        Module::Ports { proto: Protocol::Udp, .. } => "udp",
        Module::Ports { proto: Protocol::Sctp, .. } => "sctp",
        Module::Ports { .. } => "tcp",
        Module::Multiport { .. } => "multiport",
        Module::Owner { .. } => "owner",
        Module::Mark(_) => "mark",
        Module::Connmark(_) => "connmark",
        Module::CtState(_) => "conntrack",
        Module::Comment(_) => "comment",
        Module::AddrType { .. } => "addrtype",
        Module::Statistic { .. } => "statistic",
        Module::Icmp { .. } => "icmp",
        Module::Socket { .. } => "socket",
        Module::Set { .. } => "set",
        Module::Recent { .. } => "recent",
        Module::Unknown { .. } => "an unknown module",
    }
}

fn pending_name(p: &PendingTarget) -> &'static str {
    match p {
        PendingTarget::Reject(_) => "REJECT",
        PendingTarget::Redirect(_) => "REDIRECT",
        PendingTarget::Dnat(_) => "DNAT",
        PendingTarget::Snat(_) => "SNAT",
        PendingTarget::Masquerade(_) => "MASQUERADE",
        PendingTarget::Mark(_) => "MARK",
        PendingTarget::Connmark { .. } => "CONNMARK",
        PendingTarget::Tproxy { .. } => "TPROXY",
        PendingTarget::Ct { .. } => "CT",
        PendingTarget::Log(_) => "LOG",
        PendingTarget::Nflog { .. } => "NFLOG",
        PendingTarget::Unknown { .. } => "unknown",
    }
}

/// Names of iptables extension targets (as opposed to user chains, which may also be all
/// capitals: `ISTIO_OUTPUT`, `KUBE-SVC-...`). A name we do not model but that is a known
/// extension must not be mistaken for a jump to a missing chain.
fn is_extension_target(name: &str) -> bool {
    matches!(
        name,
        "QUEUE"
            | "NFQUEUE"
            | "CLASSIFY"
            | "DSCP"
            | "TOS"
            | "TTL"
            | "HL"
            | "TCPMSS"
            | "TCPOPTSTRIP"
            | "NETMAP"
            | "SECMARK"
            | "CONNSECMARK"
            | "AUDIT"
            | "CHECKSUM"
            | "IDLETIMER"
            | "LED"
            | "RATEEST"
            | "SET"
            | "SYNPROXY"
            | "TEE"
            | "ULOG"
            | "CLUSTERIP"
            | "ECN"
            | "HMARK"
            | "DNPT"
            | "SNPT"
            | "MIRROR"
    )
}
