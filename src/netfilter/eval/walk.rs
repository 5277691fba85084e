//! Running one table's base chain: rules in order, jumps, gotos, RETURN and policies
//! (net/ipv4/netfilter/ip_tables.c `ipt_do_table`), and what each target does to the packet and its connection.

use std::net::SocketAddr;

use super::path::{loopback_of, ChainVerdict, Run};
use super::program::CompiledTable;
use super::trace::{Event, Miss, NatTarget, Reason, RuleAt, RuleDrop, Step, StepKind, UnknownKind, Verdict};
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
                    self.push_step(hook, ct, chain, StepKind::Return, None, None, Verdict::Return);
                    if let Some((up, at)) = stack.pop() {
                        (chain, i) = (up, at);
                        continue;
                    }
                }
                return Ok(self.policy(hook, ct, base, &table.chains[base]));
            }
            let rule = &c.rules[i];
            if let Some(failed) = self.first_failing(rule, hook) {
                if self.record_misses {
                    self.misses.push(Miss {
                        before_step: self.steps.len(),
                        hook,
                        table: name,
                        chain: ct.chain_names[chain].clone(),
                        rule: i + 1,
                        line: rule.line,
                        failed_match: failed,
                    });
                }
                i += 1;
                continue;
            }
            let flow = self.apply_target(hook, ct, chain, c, i)?;
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
                    return Ok(self.policy(hook, ct, base, &table.chains[base]));
                }
                Flow::Stop(v) => return Ok(v),
            }
        }
    }

    fn policy(&mut self, hook: Hook, ct: &CompiledTable, base_index: usize, base: &Chain) -> ChainVerdict {
        let policy = base.policy.unwrap_or(Policy::Accept);
        let verdict = if policy == Policy::Accept { Verdict::Accept } else { Verdict::Drop };
        let line = (base.line != 0).then_some(base.line);
        self.push_step(hook, ct, base_index, StepKind::Policy, None, line, verdict);
        match policy {
            Policy::Accept => ChainVerdict::Accept,
            Policy::Drop => ChainVerdict::Drop(Reason::Policy {
                table: ct.name,
                chain: ct.chain_names[base_index].clone(),
            }),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn push_step(
        &mut self,
        hook: Hook,
        ct: &CompiledTable,
        chain: usize,
        kind: StepKind,
        rule: Option<usize>,
        line: Option<u32>,
        verdict: Verdict,
    ) {
        let target = match (kind, rule) {
            (StepKind::Rule, Some(r)) => ct.target_names[chain][r - 1].clone(),
            _ => None,
        };
        self.steps.push(Step {
            hook,
            table: ct.name,
            chain_index: chain,
            chain: ct.chain_names[chain].clone(),
            kind,
            rule,
            line,
            verdict,
            target,
        });
    }

    fn apply_target(
        &mut self,
        hook: Hook,
        ct: &CompiledTable,
        ci: usize,
        chain: &Chain,
        i: usize,
    ) -> Result<Flow, EvalError> {
        let rule = &chain.rules[i];
        let jump = ct.jumps[ci][i];
        let step = |run: &mut Self, verdict: Verdict| {
            run.push_step(hook, ct, ci, StepKind::Rule, Some(i + 1), Some(rule.line), verdict);
        };
        let here =
            || RuleAt { table: ct.name, chain: ct.chain_names[ci].clone(), rule: i + 1, line: rule.line };
        let stop = |drop: RuleDrop| Flow::Stop(ChainVerdict::Drop(Reason::Rule { at: here(), drop }));
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
                stop(RuleDrop::Drop)
            }
            Target::Reject { with } => {
                step(self, Verdict::Drop);
                let with = with.clone().unwrap_or_else(|| "icmp-port-unreachable".into());
                stop(RuleDrop::Reject { with })
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
                    self.note(Event::Mark { old, new: self.pkt.mark });
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
                    self.note(Event::Untracked);
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
                            return Ok(stop(RuleDrop::RedirectNoAddress { dev }));
                        }
                    }
                } else {
                    loopback_of(self.pkt.dst)
                };
                let port = ports.map_or(self.pkt.dport, |p| p.lo);
                step(self, Verdict::Accept);
                self.nat_dst(new_dst, port, NatTarget::Redirect);
                Flow::Stop(ChainVerdict::Accept)
            }
            Target::Dnat { to } => {
                let addr = to.addr.unwrap_or(self.pkt.dst);
                let port = to.ports.map_or(self.pkt.dport, |p| p.lo);
                step(self, Verdict::Accept);
                self.nat_dst(addr, port, NatTarget::Dnat);
                Flow::Stop(ChainVerdict::Accept)
            }
            Target::Snat { to } => {
                let addr = to.addr.unwrap_or(self.pkt.src);
                let port = to.ports.map_or(self.pkt.sport, |p| p.lo);
                step(self, Verdict::Accept);
                self.nat_src(addr, port, NatTarget::Snat);
                Flow::Stop(ChainVerdict::Accept)
            }
            Target::Masquerade { ports } => {
                let dev = self.out_iface.clone().unwrap_or_default();
                let addr = self.ns.source_for(&dev, self.pkt.dst).unwrap_or(self.pkt.src);
                let port = ports.map_or(self.pkt.sport, |p| p.lo);
                step(self, Verdict::Accept);
                self.nat_src(addr, port, NatTarget::Masquerade);
                Flow::Stop(ChainVerdict::Accept)
            }
            Target::Tproxy { on_port, on_ip, mark } => {
                let (verdict, drop) = self.tproxy(*on_port, *on_ip, *mark);
                step(self, verdict);
                if let Some(sock) = &self.tproxy_socket {
                    let (socket, owner) = (sock.endpoint_addr(), sock.owner.clone());
                    self.note(Event::Tproxy { socket, owner, mark: self.pkt.mark });
                }
                match drop {
                    Some(d) => stop(d),
                    None => Flow::Stop(ChainVerdict::Accept),
                }
            }
            Target::Unknown { name, .. } => {
                step(self, Verdict::Continue);
                self.unknown.push(rule.line);
                self.note(Event::Unknown { what: UnknownKind::Target, name: name.clone(), line: rule.line });
                Flow::Next
            }
        })
    }

    fn nat_dst(&mut self, addr: std::net::IpAddr, port: u16, target: NatTarget) {
        let from = SocketAddr::new(self.pkt.dst, self.pkt.dport);
        self.pkt.dst = addr;
        self.pkt.dport = port;
        self.conn.dnat = true;
        self.note(Event::Nat { target, from, to: SocketAddr::new(addr, port) });
    }

    fn nat_src(&mut self, addr: std::net::IpAddr, port: u16, target: NatTarget) {
        let from = SocketAddr::new(self.pkt.src, self.pkt.sport);
        self.pkt.src = addr;
        self.pkt.sport = port;
        self.conn.snat = true;
        self.note(Event::Nat { target, from, to: SocketAddr::new(addr, port) });
    }

    /// TPROXY (xt_TPROXY.c): find a listener on (--on-ip or the incoming interface's address,
    /// --on-port); only a transparent one takes the packet (and the mark), else it is
    /// silently dropped. Returns the rule's verdict and, for a drop, why.
    fn tproxy(
        &mut self,
        on_port: u16,
        on_ip: Option<std::net::IpAddr>,
        mark: Option<MarkMask>,
    ) -> (Verdict, Option<RuleDrop>) {
        let l4 = match self.pkt.proto {
            Protocol::Tcp => L4::Tcp,
            Protocol::Udp => L4::Udp,
            _ => return (Verdict::Drop, Some(RuleDrop::TproxyProtocol)),
        };
        let laddr = match on_ip {
            Some(a) if !a.is_unspecified() => a,
            _ => {
                let dev = self.in_iface.as_deref().unwrap_or_default();
                self.ns.redirect_address(dev, self.pkt.dst).unwrap_or(self.pkt.dst)
            }
        };
        let port = if on_port == 0 { self.pkt.dport } else { on_port };
        match self.ns.listener(l4, laddr, port) {
            Some(sock) if sock.transparent => {
                if let Some(mm) = mark {
                    let old = self.pkt.mark;
                    self.pkt.mark = (old & !mm.mask) ^ mm.value;
                }
                self.tproxy_socket = Some(sock.clone());
                (Verdict::Accept, None)
            }
            Some(s) => (Verdict::Drop, Some(RuleDrop::TproxyNotTransparent { socket: s.endpoint_addr() })),
            None => (Verdict::Drop, Some(RuleDrop::TproxyNoSocket { addr: SocketAddr::new(laddr, port) })),
        }
    }
}
