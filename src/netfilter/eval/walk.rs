//! Running one table's base chain: rules in order, jumps, gotos, RETURN and policies
//! (semantics §6), and what each target does to the packet and its connection.

use super::path::{loopback_of, ChainVerdict, Run};
use super::trace::{endpoint, Miss, NoteKind, Step, StepKind, Verdict};
use super::{EvalError, Hook};
use crate::netfilter::model::*;
use crate::netns::L4;

/// How deep user-chain jumps may nest before we stop (the kernel refuses far less).
const MAX_DEPTH: usize = 64;

enum Flow {
    Next,
    Jump(usize),
    Goto(usize),
    Return,
    Stop(ChainVerdict),
}

impl Run<'_> {
    pub(super) fn run_table(&mut self, name: TableName, hook: Hook) -> Result<ChainVerdict, EvalError> {
        let Some(ct) = self.prog.table(name) else {
            return Ok(ChainVerdict::Accept);
        };
        let Some(base) = ct.hooks[hook as usize] else {
            return Ok(ChainVerdict::Accept);
        };
        let table = &self.prog.ruleset.tables[ct.table];
        let mut stack: Vec<(usize, usize)> = Vec::new();
        let (mut chain, mut i) = (base, 0usize);
        loop {
            let c = &table.chains[chain];
            if i >= c.rules.len() {
                if chain != base {
                    self.push_step(hook, name, &c.name, StepKind::Return, None, None, Verdict::Return, None);
                    if let Some((up, at)) = stack.pop() {
                        (chain, i) = (up, at);
                        continue;
                    }
                }
                return Ok(self.policy(hook, name, &table.chains[base]));
            }
            let rule = &c.rules[i];
            if let Some(failed) = self.first_failing(rule, hook) {
                if self.record_misses {
                    self.misses.push(Miss {
                        before_step: self.steps.len(),
                        hook,
                        table: name,
                        chain: c.name.clone(),
                        rule: i + 1,
                        line: rule.line,
                        failed_match: failed,
                    });
                }
                i += 1;
                continue;
            }
            let flow = self.apply_target(hook, name, c, i, ct.jumps[chain][i])?;
            match flow {
                Flow::Next => i += 1,
                Flow::Jump(next) => {
                    if stack.len() >= MAX_DEPTH {
                        return Err(EvalError::TooDeep {
                            file: self.prog.ruleset.source.clone(),
                            line: rule.line,
                            limit: MAX_DEPTH,
                        });
                    }
                    stack.push((chain, i + 1));
                    (chain, i) = (next, 0);
                }
                Flow::Goto(next) => (chain, i) = (next, 0),
                Flow::Return => {
                    if chain != base {
                        if let Some((up, at)) = stack.pop() {
                            (chain, i) = (up, at);
                            continue;
                        }
                    }
                    return Ok(self.policy(hook, name, &table.chains[base]));
                }
                Flow::Stop(v) => return Ok(v),
            }
        }
    }

    fn policy(&mut self, hook: Hook, table: TableName, base: &Chain) -> ChainVerdict {
        let policy = base.policy.unwrap_or(Policy::Accept);
        let verdict = if policy == Policy::Accept { Verdict::Accept } else { Verdict::Drop };
        let line = (base.line != 0).then_some(base.line);
        self.push_step(hook, table, &base.name, StepKind::Policy, None, line, verdict, None);
        match policy {
            Policy::Accept => ChainVerdict::Accept,
            Policy::Drop => ChainVerdict::Drop(format!("policy DROP of {table} {}", base.name)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn push_step(
        &mut self,
        hook: Hook,
        table: TableName,
        chain: &str,
        kind: StepKind,
        rule: Option<usize>,
        line: Option<u32>,
        verdict: Verdict,
        target: Option<String>,
    ) {
        self.steps.push(Step { hook, table, chain: chain.to_string(), kind, rule, line, verdict, target });
    }

    fn apply_target(
        &mut self,
        hook: Hook,
        table: TableName,
        chain: &Chain,
        i: usize,
        jump: Option<usize>,
    ) -> Result<Flow, EvalError> {
        let rule = &chain.rules[i];
        let mut step = |run: &mut Self, verdict: Verdict| {
            let target = match &rule.target {
                Target::None => None,
                t => Some(t.name().to_string()),
            };
            run.push_step(
                hook,
                table,
                &chain.name,
                StepKind::Rule,
                Some(i + 1),
                Some(rule.line),
                verdict,
                target,
            );
        };
        let here = || format!("{table} {} rule {} (line {})", chain.name, i + 1, rule.line);
        Ok(match &rule.target {
            Target::None | Target::Log { .. } | Target::Nflog { .. } | Target::Trace => {
                step(self, Verdict::Continue);
                Flow::Next
            }
            Target::Accept => {
                step(self, Verdict::Accept);
                Flow::Stop(ChainVerdict::Accept)
            }
            Target::Drop => {
                step(self, Verdict::Drop);
                Flow::Stop(ChainVerdict::Drop(format!("DROP by {}", here())))
            }
            Target::Reject { with } => {
                step(self, Verdict::Drop);
                let with = with.clone().unwrap_or_else(|| "icmp-port-unreachable".into());
                Flow::Stop(ChainVerdict::Drop(format!("REJECT (--reject-with {with}) by {}", here())))
            }
            Target::Return => {
                step(self, Verdict::Return);
                Flow::Return
            }
            Target::Jump(_) | Target::Goto(_) => {
                let goto = matches!(rule.target, Target::Goto(_));
                step(self, if goto { Verdict::Goto } else { Verdict::Jump });
                match jump {
                    Some(next) if goto => Flow::Goto(next),
                    Some(next) => Flow::Jump(next),
                    None => Flow::Next,
                }
            }
            Target::Mark(mm) => {
                let old = self.pkt.mark;
                self.pkt.mark = (old & !mm.mask) ^ mm.value;
                step(self, Verdict::Continue);
                if old != self.pkt.mark {
                    self.note(NoteKind::Mark, format!("mark {old:#x} -> {:#x}", self.pkt.mark));
                }
                Flow::Next
            }
            Target::Connmark(op) => {
                if self.conn.created && !self.conn.untracked {
                    match *op {
                        ConnmarkOp::SetXmark(mm) => {
                            self.conn.ctmark = (self.conn.ctmark & !mm.mask) ^ mm.value
                        }
                        ConnmarkOp::Save { nfmask, ctmask } => {
                            self.conn.ctmark = (self.conn.ctmark & !ctmask) ^ (self.pkt.mark & nfmask)
                        }
                        ConnmarkOp::Restore { nfmask, ctmask } => {
                            self.pkt.mark = (self.pkt.mark & !nfmask) ^ (self.conn.ctmark & ctmask)
                        }
                    }
                }
                step(self, Verdict::Continue);
                Flow::Next
            }
            Target::Ct { zone, notrack } => {
                if *notrack {
                    self.conn.untracked = true;
                    self.note(
                        NoteKind::Conntrack,
                        "conntrack: not tracked (CT --notrack); nat chains are skipped".into(),
                    );
                }
                if let Some(z) = zone {
                    self.conn.zone = *z;
                }
                step(self, Verdict::Continue);
                Flow::Next
            }
            Target::Redirect { ports } => {
                let new_dst = if hook == Hook::Prerouting {
                    let dev = self.in_iface.clone().unwrap_or_default();
                    match self.ns.redirect_address(&dev, self.pkt.dst) {
                        Some(a) => a,
                        None => {
                            step(self, Verdict::Drop);
                            return Ok(Flow::Stop(ChainVerdict::Drop(format!(
                                "REDIRECT by {}: {dev} has no usable address",
                                here()
                            ))));
                        }
                    }
                } else {
                    loopback_of(self.pkt.dst)
                };
                let port = ports.map_or(self.pkt.dport, |p| p.lo);
                step(self, Verdict::Accept);
                self.nat_dst(new_dst, port, "REDIRECT");
                Flow::Stop(ChainVerdict::Accept)
            }
            Target::Dnat { to } => {
                let addr = to.addr.unwrap_or(self.pkt.dst);
                let port = to.ports.map_or(self.pkt.dport, |p| p.lo);
                step(self, Verdict::Accept);
                self.nat_dst(addr, port, "DNAT");
                Flow::Stop(ChainVerdict::Accept)
            }
            Target::Snat { to } => {
                let addr = to.addr.unwrap_or(self.pkt.src);
                let port = to.ports.map_or(self.pkt.sport, |p| p.lo);
                step(self, Verdict::Accept);
                self.nat_src(addr, port, "SNAT");
                Flow::Stop(ChainVerdict::Accept)
            }
            Target::Masquerade { ports } => {
                let dev = self.out_iface.clone().unwrap_or_default();
                let addr = self.ns.source_for(&dev, self.pkt.dst).unwrap_or(self.pkt.src);
                let port = ports.map_or(self.pkt.sport, |p| p.lo);
                step(self, Verdict::Accept);
                self.nat_src(addr, port, "MASQUERADE");
                Flow::Stop(ChainVerdict::Accept)
            }
            Target::Tproxy { on_port, on_ip, mark } => {
                self.tproxy(*on_port, *on_ip, *mark, &mut step, &here)?
            }
            Target::Unknown { name, .. } => {
                step(self, Verdict::Continue);
                self.unknown.push(rule.line);
                self.note(
                    NoteKind::Unknown,
                    format!("target {name} on line {} is not modelled: assumed to continue", rule.line),
                );
                Flow::Next
            }
        })
    }

    fn nat_dst(&mut self, addr: std::net::IpAddr, port: u16, what: &str) {
        let from = endpoint(self.pkt.dst, self.pkt.dport);
        self.pkt.dst = addr;
        self.pkt.dport = port;
        self.conn.dnat = true;
        self.note(NoteKind::Nat, format!("{what}: destination {from} -> {}", endpoint(addr, port)));
    }

    fn nat_src(&mut self, addr: std::net::IpAddr, port: u16, what: &str) {
        let from = endpoint(self.pkt.src, self.pkt.sport);
        self.pkt.src = addr;
        self.pkt.sport = port;
        self.conn.snat = true;
        self.note(NoteKind::Nat, format!("{what}: source {from} -> {}", endpoint(addr, port)));
    }

    /// TPROXY (xt_TPROXY.c): find a listener on (--on-ip or the incoming interface's address,
    /// --on-port); only a transparent one takes the packet, else it is silently dropped.
    fn tproxy(
        &mut self,
        on_port: u16,
        on_ip: Option<std::net::IpAddr>,
        mark: Option<MarkMask>,
        step: &mut dyn FnMut(&mut Self, Verdict),
        here: &dyn Fn() -> String,
    ) -> Result<Flow, EvalError> {
        let l4 = match self.pkt.proto {
            Protocol::Tcp => L4::Tcp,
            Protocol::Udp => L4::Udp,
            _ => {
                step(self, Verdict::Drop);
                return Ok(Flow::Stop(ChainVerdict::Drop(format!(
                    "TPROXY by {} handles only TCP and UDP",
                    here()
                ))));
            }
        };
        let laddr = match on_ip {
            Some(a) if !a.is_unspecified() => a,
            _ => {
                let dev = self.in_iface.clone().unwrap_or_default();
                self.ns.redirect_address(&dev, self.pkt.dst).unwrap_or(self.pkt.dst)
            }
        };
        let port = if on_port == 0 { self.pkt.dport } else { on_port };
        match self.ns.listener(l4, laddr, port).cloned() {
            Some(sock) if sock.transparent => {
                if let Some(mm) = mark {
                    let old = self.pkt.mark;
                    self.pkt.mark = (old & !mm.mask) ^ mm.value;
                }
                step(self, Verdict::Accept);
                self.note(
                    NoteKind::Socket,
                    format!(
                        "TPROXY: handed to transparent socket {} ({}), mark {:#x}",
                        sock.endpoint(),
                        sock.owner,
                        self.pkt.mark
                    ),
                );
                self.tproxy_socket = Some(sock);
                Ok(Flow::Stop(ChainVerdict::Accept))
            }
            found => {
                step(self, Verdict::Drop);
                let why = match found {
                    Some(s) => format!("socket {} is not transparent", s.endpoint()),
                    None => format!("no socket listens on {}", endpoint(laddr, port)),
                };
                Ok(Flow::Stop(ChainVerdict::Drop(format!(
                    "TPROXY by {}: {why}; the packet is dropped silently",
                    here()
                ))))
            }
        }
    }
}
