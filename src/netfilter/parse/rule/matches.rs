//! Match modules (`-m tcp`, `-m owner`, `-m mark`, ...): the options each module takes, read
//! into a [`Module`] while the rule is parsed, and the finished [`Match`] when the next `-m`,
//! `-j` or the end of the rule closes it.

use super::super::value as v;
use super::{Problem, RuleParser, SUPPORTED_MATCHES};
use crate::netfilter::model::*;
use crate::util::num::parse_u32;

/// A match module whose options are still being read.
#[derive(Debug)]
pub(super) enum Module {
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
impl RuleParser<'_, '_> {
    pub(super) fn start_module(&mut self, vi: usize, name: &str) -> Result<Module, Problem> {
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
    pub(super) fn module_option(
        &mut self,
        m: &mut Module,
        oi: usize,
        opt: &str,
        neg: bool,
    ) -> Result<bool, Problem> {
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
                    // iptables' libxt_statistic.c: `every` is XTTYPE_UINT32 with `.min = 1`.
                    if opt == "--every" && n == 0 {
                        return Err(self.err(vi, "--every counts packets from 1 (iptables refuses 0)"));
                    }
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

    pub(super) fn finish_module(&mut self) -> Result<(), Problem> {
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
                    Some(_) => {
                        let every = every.ok_or_else(|| self.err(end, "statistic nth needs --every"))?;
                        let packet = packet.unwrap_or(0);
                        // libxt_statistic.c, statistic_check: "the --packet p must be 0 <= p <= n-1".
                        if packet >= every {
                            return Err(self.err(end, "the --packet p must be 0 <= p <= n-1"));
                        }
                        StatisticMode::Nth { every, packet }
                    }
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
}

pub(super) fn module_name(m: &Module) -> &'static str {
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
