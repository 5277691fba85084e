//! The kernel's packet path: which hooks run, in which order, with which tables, and the
//! routing, conntrack and NAT decisions between them (net/netfilter/core.c, nf_conntrack_core.c, nf_nat_core.c, net/ipv4/route.c, inet_hashtables.c).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::trace::{Disposition, Event, Note, Outcome, Reason, RouteHit, RouteStage, Step};
use super::{Entry, EvalError, Hook, Probe, Program};
use crate::netfilter::model::{Protocol, TableName};
use crate::netns::{Netns, RouteKind, Socket, L4};

/// The packet as the current hook sees it.
#[derive(Debug, Clone)]
pub(super) struct Packet {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub proto: Protocol,
    pub tcp_flags: u8,
    pub icmp_type: u8,
    pub icmp_code: u8,
    pub mark: u32,
}

/// The connection's conntrack entry, as far as the first packet needs it.
#[derive(Debug, Clone, Default)]
pub(super) struct Conn {
    /// The entry exists (conntrack ran for this packet).
    pub created: bool,
    /// `CT --notrack` in raw: no entry, no NAT.
    pub untracked: bool,
    pub zone: u16,
    pub ctmark: u32,
    /// The DST and SRC NAT decisions were made (a binding, possibly null).
    pub dst_nat_done: bool,
    pub src_nat_done: bool,
    pub dnat: bool,
    pub snat: bool,
}

/// Result of running one table's base chain at a hook.
#[derive(Debug)]
pub(super) enum ChainVerdict {
    Accept,
    Drop(Reason),
}

/// One walk of the packet, following `oracle` at `statistic` forks.
pub(super) struct Run<'a> {
    pub prog: &'a Program,
    pub ns: &'a Netns,
    pub probe: &'a Probe,
    pub pkt: Packet,
    pub conn: Conn,
    pub steps: Vec<Step>,
    pub notes: Vec<Note>,
    pub unknown: Vec<u32>,
    /// Decisions at `statistic` forks: (raw match taken, probability of a raw match).
    pub decisions: Vec<(bool, f64)>,
    oracle: &'a [bool],
    pub recent: Vec<(String, IpAddr)>,
    /// The socket TPROXY assigned to the packet.
    pub tproxy_socket: Option<Socket>,
    pub hook: Hook,
    pub in_iface: Option<String>,
    pub out_iface: Option<String>,
    /// The packet comes from a local socket (owner matches apply).
    pub local_socket: bool,
    /// Record the rules that did not match in `misses`.
    pub record_misses: bool,
    pub misses: Vec<super::trace::Miss>,
}

impl<'a> Run<'a> {
    pub fn new(prog: &'a Program, ns: &'a Netns, probe: &'a Probe, oracle: &'a [bool]) -> Self {
        Run {
            prog,
            ns,
            probe,
            pkt: Packet {
                src: probe.src,
                dst: probe.dst,
                sport: probe.sport,
                dport: probe.dport,
                proto: probe.proto,
                tcp_flags: probe.tcp_flags,
                icmp_type: probe.icmp_type,
                icmp_code: probe.icmp_code,
                mark: probe.mark,
            },
            conn: Conn::default(),
            steps: Vec::new(),
            notes: Vec::new(),
            unknown: Vec::new(),
            decisions: Vec::new(),
            oracle,
            recent: Vec::new(),
            tproxy_socket: None,
            hook: Hook::Output,
            in_iface: None,
            out_iface: None,
            local_socket: probe.entry == Entry::Output && !probe.kernel_sent,
            record_misses: false,
            misses: Vec::new(),
        }
    }

    /// The next `statistic` decision: from the oracle, else a raw match (alternatives are
    /// explored by the caller).
    pub fn decide(&mut self, p: f64) -> bool {
        let taken = self.oracle.get(self.decisions.len()).copied().unwrap_or(true);
        self.decisions.push((taken, p));
        taken
    }

    pub fn note(&mut self, event: Event) {
        self.notes.push(Note { before_step: self.steps.len(), hook: Some(self.hook), event });
    }

    pub fn walk(&mut self) -> Result<Outcome, EvalError> {
        match self.probe.entry {
            Entry::Output => self.output_path(),
            Entry::Prerouting => {
                let dev = self.probe.in_iface.clone();
                self.prerouting_path(&dev, false)
            }
        }
    }

    /// Runs the tables of `hook` in priority order; stops at the first drop.
    fn run_hook(&mut self, hook: Hook, tables: &[TableName]) -> Result<Option<Reason>, EvalError> {
        self.hook = hook;
        for &t in tables {
            if t == TableName::Nat && !self.nat_applies(hook) {
                self.reverse_nat(hook);
                continue;
            }
            let verdict = self.run_table(t, hook)?;
            if t == TableName::Nat {
                self.finish_nat(hook);
            }
            if let ChainVerdict::Drop(reason) = verdict {
                return Ok(Some(reason));
            }
        }
        Ok(None)
    }

    /// A reply's NAT undone where the nat table sits: the destination at PREROUTING and
    /// OUTPUT, the source at INPUT and POSTROUTING ([`super::ReplyNat`]).
    fn reverse_nat(&mut self, hook: Hook) {
        let Some(r) = self.probe.reply else { return };
        let to = match hook {
            Hook::Prerouting | Hook::Output => r.dst_to.map(|d| (false, d)),
            Hook::Input | Hook::Postrouting => r.src_to.map(|s| (true, s)),
            Hook::Forward => None,
        };
        match to {
            Some((true, s)) => (self.pkt.src, self.pkt.sport) = (s.ip(), s.port()),
            Some((false, d)) => (self.pkt.dst, self.pkt.dport) = (d.ip(), d.port()),
            None => {}
        }
    }

    /// nat chains run only for a tracked connection's first packet, once per manip type.
    fn nat_applies(&self, hook: Hook) -> bool {
        if self.probe.reply.is_some() {
            return false;
        }
        if !self.prog.conntrack || !self.conn.created || self.conn.untracked {
            return false;
        }
        match hook {
            Hook::Prerouting | Hook::Output => !self.conn.dst_nat_done,
            Hook::Input | Hook::Postrouting => !self.conn.src_nat_done,
            Hook::Forward => false,
        }
    }

    fn finish_nat(&mut self, hook: Hook) {
        match hook {
            Hook::Prerouting | Hook::Output => self.conn.dst_nat_done = true,
            Hook::Input | Hook::Postrouting => self.conn.src_nat_done = true,
            Hook::Forward => {}
        }
    }

    /// Conntrack at priority -200: a NEW entry for the first packet, unless raw said notrack.
    /// ICMPv6 neighbour discovery and MLD (types 130 to 136 and 143) are never tracked:
    /// `nf_conntrack_icmpv6_error` (net/netfilter/nf_conntrack_proto_icmpv6.c) marks them
    /// `IP_CT_UNTRACKED` (its `noct_valid_new` table), so they are `--ctstate UNTRACKED`, not
    /// INVALID, and skip the nat table.
    fn conntrack_in(&mut self) {
        if !self.prog.conntrack || self.conn.created || self.conn.untracked {
            return;
        }
        if let Some(r) = self.probe.reply {
            // The connection's entry exists: the reply is ESTABLISHED, with its mark.
            self.conn.created = true;
            self.conn.ctmark = r.ctmark;
            return;
        }
        if self.pkt.proto == Protocol::Icmpv6 && matches!(self.pkt.icmp_type, 130..=136 | 143) {
            self.conn.untracked = true;
            self.note(Event::Untracked);
            return;
        }
        self.conn.created = true;
        self.note(Event::ConntrackNew {
            proto: self.pkt.proto,
            src: SocketAddr::new(self.pkt.src, self.pkt.sport),
            dst: SocketAddr::new(self.pkt.dst, self.pkt.dport),
            zone: self.conn.zone,
        });
    }

    fn route_note(&mut self, stage: RouteStage, r: &crate::netns::RouteLookup) {
        let found = r.kind.map(|kind| RouteHit {
            kind,
            dev: r.dev.clone(),
            prefix: r.dst,
            table: r.table,
            rule_pref: r.rule_pref,
        });
        self.note(Event::Route { stage, dst: self.pkt.dst, found });
    }

    fn output_path(&mut self) -> Result<Outcome, EvalError> {
        self.hook = Hook::Output;
        let r = self.ns.route(self.pkt.dst, Some(self.pkt.src), self.pkt.mark, None);
        self.route_note(RouteStage::Output, &r);
        if !matches!(r.kind, Some(RouteKind::Unicast | RouteKind::Local)) {
            return Ok(
                self.outcome(Disposition::Dropped, Some(Reason::NoRoute { dst: self.pkt.dst, local: true }))
            );
        }
        // The output device every OUTPUT chain sees is fixed here (net/ipv4/ip_output.c: the route is chosen before NF_INET_LOCAL_OUT).
        let hook_out = r.dev.clone();
        let mut route = r;
        self.out_iface = Some(hook_out.clone());
        self.in_iface = None;
        if let Some(reason) = self.run_hook(Hook::Output, &[TableName::Raw])? {
            return Ok(self.outcome(Disposition::Dropped, Some(reason)));
        }
        self.conntrack_in();
        let before = (self.pkt.mark, self.pkt.src, self.pkt.dst);
        if let Some(reason) = self.run_hook(Hook::Output, &[TableName::Mangle])? {
            return Ok(self.outcome(Disposition::Dropped, Some(reason)));
        }
        if before != (self.pkt.mark, self.pkt.src, self.pkt.dst) {
            route = self.reroute(RouteStage::RerouteAfterMangle)?;
        }
        let dst_before = self.pkt.dst;
        if let Some(reason) = self.run_hook(Hook::Output, &[TableName::Nat])? {
            return Ok(self.outcome(Disposition::Dropped, Some(reason)));
        }
        if self.pkt.dst != dst_before {
            route = self.reroute(RouteStage::RerouteAfterNat)?;
        }
        self.out_iface = Some(hook_out);
        if let Some(reason) = self.run_hook(Hook::Output, &[TableName::Filter, TableName::Security])? {
            return Ok(self.outcome(Disposition::Dropped, Some(reason)));
        }
        if !matches!(route.kind, Some(RouteKind::Unicast | RouteKind::Local)) {
            return Ok(
                self.outcome(Disposition::Dropped, Some(Reason::NoRoute { dst: self.pkt.dst, local: false }))
            );
        }
        self.out_iface = Some(route.dev.clone());
        if let Some(reason) = self.run_hook(Hook::Postrouting, &[TableName::Mangle, TableName::Nat])? {
            return Ok(self.outcome(Disposition::Dropped, Some(reason)));
        }
        if route.kind == Some(RouteKind::Local) || route.dev == "lo" {
            // loopback_xmit re-injects the same skb: mark and conntrack entry are kept.
            self.note(Event::Loopback {
                src: SocketAddr::new(self.pkt.src, self.pkt.sport),
                dst: SocketAddr::new(self.pkt.dst, self.pkt.dport),
            });
            return self.prerouting_path("lo", true);
        }
        Ok(self.outcome(Disposition::Out, None))
    }

    fn reroute(&mut self, stage: RouteStage) -> Result<crate::netns::RouteLookup, EvalError> {
        let r = self.ns.route(self.pkt.dst, Some(self.pkt.src), self.pkt.mark, None);
        self.route_note(stage, &r);
        Ok(r)
    }

    fn prerouting_path(&mut self, in_dev: &str, reentry: bool) -> Result<Outcome, EvalError> {
        self.in_iface = Some(in_dev.to_string());
        self.out_iface = None;
        if reentry {
            // A looped-back packet no longer belongs to a local socket for owner matching.
            self.local_socket = false;
        }
        if let Some(reason) = self.run_hook(Hook::Prerouting, &[TableName::Raw])? {
            return Ok(self.outcome(Disposition::Dropped, Some(reason)));
        }
        self.conntrack_in();
        if let Some(reason) = self.run_hook(Hook::Prerouting, &[TableName::Mangle, TableName::Nat])? {
            return Ok(self.outcome(Disposition::Dropped, Some(reason)));
        }
        // Input routing decision (ip_route_input_slow).
        if in_dev != "lo" && is_loopback(self.pkt.dst) && !self.ns.route_localnet {
            let reason = Reason::Martian { dst: self.pkt.dst, dev: in_dev.to_string() };
            return Ok(self.outcome(Disposition::Dropped, Some(reason)));
        }
        let r = self.ns.route(self.pkt.dst, Some(self.pkt.src), self.pkt.mark, Some(in_dev));
        self.route_note(RouteStage::Input, &r);
        match r.kind {
            Some(RouteKind::Local) => self.input_path(),
            Some(RouteKind::Unicast) if self.ns.forwarding => self.forward_path(&r.dev),
            Some(RouteKind::Unicast) => {
                Ok(self.outcome(Disposition::Dropped, Some(Reason::NotLocal { dst: self.pkt.dst })))
            }
            _ => {
                Ok(self
                    .outcome(Disposition::Dropped, Some(Reason::NoRoute { dst: self.pkt.dst, local: false })))
            }
        }
    }

    fn input_path(&mut self) -> Result<Outcome, EvalError> {
        // iptables-nft priorities: mangle -150, filter 0, nat INPUT 100, security 150.
        if let Some(reason) = self.run_hook(
            Hook::Input,
            &[TableName::Mangle, TableName::Filter, TableName::Nat, TableName::Security],
        )? {
            return Ok(self.outcome(Disposition::Dropped, Some(reason)));
        }
        self.hook = Hook::Input;
        if self.probe.reply.is_some() {
            // A reply reaches the connected socket that sent the request.
            return Ok(self.outcome(Disposition::Local, None));
        }
        let l4 = match self.pkt.proto {
            Protocol::Tcp => Some(L4::Tcp),
            Protocol::Udp => Some(L4::Udp),
            _ => None,
        };
        let Some(l4) = l4 else {
            return Ok(self.outcome(Disposition::Local, Some(Reason::KernelHandler)));
        };
        let socket = match self.tproxy_socket.take() {
            Some(s) => Some(s),
            None => self.ns.listener(l4, self.pkt.dst, self.pkt.dport).cloned(),
        };
        let mut out = self.outcome(Disposition::Local, None);
        match socket {
            Some(s) => {
                self.note(Event::Socket { proto: l4, socket: s.endpoint_addr(), owner: s.owner.clone() });
                out.socket = Some(s);
            }
            None => {
                let dst = SocketAddr::new(self.pkt.dst, self.pkt.dport);
                self.note(Event::NoSocket { proto: l4, dst });
                out.reason = Some(Reason::NoSocket { proto: l4, dst });
            }
        }
        Ok(out)
    }

    fn forward_path(&mut self, out_dev: &str) -> Result<Outcome, EvalError> {
        self.out_iface = Some(out_dev.to_string());
        if let Some(reason) =
            self.run_hook(Hook::Forward, &[TableName::Mangle, TableName::Filter, TableName::Security])?
        {
            return Ok(self.outcome(Disposition::Dropped, Some(reason)));
        }
        self.in_iface = None;
        if let Some(reason) = self.run_hook(Hook::Postrouting, &[TableName::Mangle, TableName::Nat])? {
            return Ok(self.outcome(Disposition::Dropped, Some(reason)));
        }
        Ok(self.outcome(Disposition::Forwarded, None))
    }

    fn outcome(&self, disposition: Disposition, reason: Option<Reason>) -> Outcome {
        Outcome {
            disposition,
            in_iface: self.in_iface.clone(),
            out_iface: self.out_iface.clone(),
            src: SocketAddr::new(self.pkt.src, self.pkt.sport),
            dst: SocketAddr::new(self.pkt.dst, self.pkt.dport),
            orig_dst: SocketAddr::new(self.probe.dst, self.probe.dport),
            mark: self.pkt.mark,
            ctmark: self.conn.ctmark,
            zone: self.conn.zone,
            socket: None,
            reason,
        }
    }
}

pub(super) fn is_loopback(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6 == Ipv6Addr::LOCALHOST,
    }
}

pub(super) fn loopback_of(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    }
}
