//! Match evaluation (the kernel: net/netfilter/x_tables.c and each xt_* module): every match of a rule must hold, in order; a `statistic`
//! match that is reached becomes a fork.

use std::net::IpAddr;

use super::path::Run;
use super::Hook;
use crate::netfilter::model::*;
use crate::netns::L4;

impl Run<'_> {
    /// The index of the first match of `rule` that does not hold (matches short-circuit).
    pub(super) fn first_failing(&mut self, rule: &Rule, hook: Hook) -> Option<usize> {
        rule.matches.iter().position(|m| !self.one(m, hook, rule.line))
    }

    fn one(&mut self, m: &Match, hook: Hook, line: u32) -> bool {
        let p = &self.pkt;
        match m {
            Match::Source(n) => n.apply(n.value.contains(&p.src)),
            Match::Destination(n) => n.apply(n.value.contains(&p.dst)),
            // Outside the hooks where an interface applies, the kernel compares with "".
            Match::InInterface(n) => n.apply(self.in_iface.as_deref().is_some_and(|i| n.value.matches(i))),
            Match::OutInterface(n) => n.apply(self.out_iface.as_deref().is_some_and(|i| n.value.matches(i))),
            Match::Protocol(n) => n.apply(n.value == Protocol::All || n.value.number() == p.proto.number()),
            Match::Fragment { negated } => *negated, // a first packet is never a non-first fragment
            Match::Ports { proto, sport, dport, tcp_flags } => {
                p.proto == *proto
                    && sport.is_none_or(|r| r.apply(r.value.contains(p.sport)))
                    && dport.is_none_or(|r| r.apply(r.value.contains(p.dport)))
                    && tcp_flags.is_none_or(|f| f.apply(p.tcp_flags & f.value.mask == f.value.comp))
            }
            Match::Multiport { negated, dir, ports } => {
                if !matches!(p.proto, Protocol::Tcp | Protocol::Udp | Protocol::Sctp) {
                    return false;
                }
                let hit = ports.iter().any(|r| match dir {
                    MultiportDir::Src => r.contains(p.sport),
                    MultiportDir::Dst => r.contains(p.dport),
                    MultiportDir::Either => r.contains(p.sport) || r.contains(p.dport),
                });
                hit != *negated
            }
            Match::Owner { uid, gid, socket_exists, suppl_groups } => {
                self.owner(uid, gid, socket_exists, *suppl_groups, hook)
            }
            Match::Mark(n) => n.apply(p.mark & n.value.mask == n.value.value),
            Match::Connmark(n) => {
                // Without a conntrack entry, connmark never matches (not even negated).
                self.conn.created
                    && !self.conn.untracked
                    && n.apply(self.conn.ctmark & n.value.mask == n.value.value)
            }
            Match::CtState(n) => {
                let states = self.ct_states();
                n.apply(n.value.iter().any(|s| states.contains(s)))
            }
            Match::Comment(_) => true,
            Match::AddrType { src, dst, .. } => {
                src.as_ref().is_none_or(|n| n.apply(n.value.contains(&self.addr_type(p.src))))
                    && dst.as_ref().is_none_or(|n| n.apply(n.value.contains(&self.addr_type(p.dst))))
            }
            Match::Statistic { negated, mode } => {
                let prob = match *mode {
                    StatisticMode::Random { probability } => probability,
                    StatisticMode::Nth { every, .. } => 1.0 / f64::from(every.max(1)),
                };
                let raw = if prob >= 1.0 {
                    true
                } else if prob <= 0.0 {
                    false
                } else {
                    self.decide(prob)
                };
                raw != *negated
            }
            Match::IcmpType { v6, negated, ty, code } => {
                let proto_ok = if *v6 { p.proto == Protocol::Icmpv6 } else { p.proto == Protocol::Icmp };
                proto_ok && ((p.icmp_type == *ty && code.is_none_or(|c| c == p.icmp_code)) != *negated)
            }
            Match::Socket { transparent, nowildcard, .. } => {
                // xt_socket: an established socket (none for a first packet), else a listener.
                let l4 = match p.proto {
                    Protocol::Tcp => L4::Tcp,
                    Protocol::Udp => L4::Udp,
                    _ => return false,
                };
                match self.ns.listener(l4, p.dst, p.dport) {
                    // Sockets bound to the any-address count only with --nowildcard (xt_socket).
                    Some(s) => (*nowildcard || !s.is_wildcard()) && (!*transparent || s.transparent),
                    None => false,
                }
            }
            // The sets are assumed to exist and be empty.
            Match::Set { negated, .. } => *negated,
            Match::Recent { name, command, hitcount, rsource, negated, .. } => {
                let addr = if *rsource { p.src } else { p.dst };
                let key = (name.clone(), addr);
                let count = self.recent.iter().filter(|k| **k == key).count() as u32;
                let seen = count >= hitcount.unwrap_or(1).max(1);
                let hit = match command {
                    RecentCommand::Set => {
                        self.recent.push(key);
                        true
                    }
                    RecentCommand::Rcheck => seen,
                    RecentCommand::Update => {
                        if seen {
                            self.recent.push(key);
                        }
                        seen
                    }
                    RecentCommand::Remove => {
                        let had = count > 0;
                        self.recent.retain(|k| *k != key);
                        had
                    }
                };
                hit != *negated
            }
            Match::Unknown { module, .. } => {
                self.unknown.push(line);
                self.note(super::trace::Event::Unknown {
                    what: super::trace::UnknownKind::Match,
                    name: module.clone(),
                    line,
                });
                true
            }
        }
    }

    /// xt_owner: only a full local socket has credentials; with no socket the match holds
    /// iff every given criterion is negated (net/netfilter/xt_owner.c).
    fn owner(
        &self,
        uid: &Option<Neg<IdRange>>,
        gid: &Option<Neg<IdRange>>,
        socket_exists: &Option<Neg<()>>,
        suppl: bool,
        hook: Hook,
    ) -> bool {
        let has_socket = self.local_socket && matches!(hook, Hook::Output | Hook::Postrouting);
        if !has_socket {
            return uid.is_none_or(|n| n.negated)
                && gid.is_none_or(|n| n.negated)
                && socket_exists.is_none_or(|n| n.negated);
        }
        let probe = self.probe;
        let uid_ok = uid.is_none_or(|n| n.apply(n.value.lo <= probe.uid && probe.uid <= n.value.hi));
        let gid_ok = gid.is_none_or(|n| {
            let in_range = |g: u32| n.value.lo <= g && g <= n.value.hi;
            n.apply(in_range(probe.gid) || (suppl && probe.supplementary_gids.iter().any(|&g| in_range(g))))
        });
        let sock_ok = socket_exists.is_none_or(|n| n.apply(true));
        uid_ok && gid_ok && sock_ok
    }

    /// The conntrack state bits of the packet (xt_conntrack): INVALID before conntrack ran,
    /// UNTRACKED after `--notrack`, NEW for a first packet, plus the NAT status bits.
    fn ct_states(&self) -> Vec<CtState> {
        if self.conn.untracked {
            return vec![CtState::Untracked];
        }
        if !self.conn.created {
            return vec![CtState::Invalid];
        }
        if let Some(r) = self.probe.reply {
            let mut v = vec![CtState::Established];
            if r.src_to.is_some() {
                v.push(CtState::Dnat);
            }
            if r.dst_to.is_some() {
                v.push(CtState::Snat);
            }
            return v;
        }
        let mut v = vec![CtState::New];
        if self.conn.dnat {
            v.push(CtState::Dnat);
        }
        if self.conn.snat {
            v.push(CtState::Snat);
        }
        v
    }

    fn addr_type(&self, a: IpAddr) -> AddrType {
        if a.is_unspecified() {
            AddrType::Unspec
        } else if a.is_multicast() {
            AddrType::Multicast
        } else if matches!(a, IpAddr::V4(v4) if v4.is_broadcast()) {
            AddrType::Broadcast
        } else if self.ns.is_local(a) {
            AddrType::Local
        } else {
            AddrType::Unicast
        }
    }
}
