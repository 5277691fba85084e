//! Targets (`-j ACCEPT`, `-j REDIRECT --to-ports 15001`, `-j TPROXY ...`, a user chain): the
//! target's options, read into a [`PendingTarget`] until the rule ends, then the [`Target`].

use std::sync::Arc;

use super::super::value as v;
use super::{Problem, RuleParser, SUPPORTED_TARGETS};
use crate::netfilter::model::*;
use crate::util::num::parse_u32;

#[derive(Debug)]
pub(super) enum PendingTarget {
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
impl RuleParser<'_, '_> {
    pub(super) fn start_target(&mut self, vi: usize, name: &str, goto: bool) -> Result<(), Problem> {
        let simple = |t: Target| Some((t, vi));
        if goto {
            let name = self.chain_name(name);
            self.target = simple(Target::Goto(name));
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
            chain => {
                let name = self.chain_name(chain);
                return self.set_target(Target::Jump(name), vi);
            }
        };
        self.pending_target = Some(pending);
        Ok(())
    }

    /// The chain's own name when the table has it (noting its index), else a new one.
    pub(super) fn chain_name(&mut self, name: &str) -> Arc<str> {
        match self.chains.get_key_value(name) {
            Some((k, &i)) => {
                self.jump_to = Some(i);
                Arc::clone(k)
            }
            None => Arc::from(name),
        }
    }

    pub(super) fn set_target(&mut self, t: Target, vi: usize) -> Result<(), Problem> {
        self.target = Some((t, vi));
        Ok(())
    }

    pub(super) fn target_option(&mut self, oi: usize, opt: &str, neg: bool) -> Result<(), Problem> {
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

    pub(super) fn finish_target(&self, p: PendingTarget) -> Result<Target, Problem> {
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
