//! Next-hop resolution: before a packet leaves through an interface the kernel needs the next
//! hop's link-layer address (`neigh_output` from `ip_finish_output2` / `ip6_finish_output2`).
//!
//! * A neighbour entry given as evidence (`ip neigh`) in a valid state is used as it is.
//! * IPv4 resolves with ARP, which is not an IP packet: iptables' tables never see it (net/ipv4/
//!   arp.c `arp_xmit` and `arp_rcv` run the NFPROTO_ARP hooks only). The path says so when
//!   neighbour evidence was given; a FAILED entry makes the next hop unreachable.
//! * IPv6 resolves with neighbour discovery, ICMPv6 that passes ip6tables: the solicitation
//!   leaves through OUTPUT and POSTROUTING (net/ipv6/ndisc.c `ndisc_send_skb`:
//!   `NF_HOOK(NFPROTO_IPV6, NF_INET_LOCAL_OUT, ...)`, then `dst_output`), from the packet's own
//!   source when that is an address of the device (`ndisc_solicit`) to the next hop's
//!   solicited-node address (`ndisc_send_ns`); the advertisement comes back from the next hop to
//!   the soliciting address (`ndisc_recv_ns` answers with `ndisc_send_na(dev, saddr, ...)`) and
//!   passes PREROUTING and INPUT before `ndisc_rcv` reads it. Neither is tracked (see
//!   `crate::netfilter::eval`), so the nat table is skipped and `--ctstate` is UNTRACKED. A
//!   rule that drops either ends the path there: the next hop is never resolved and the packet
//!   is dropped. The sender hears of it only through the ICMPv6 address unreachable the kernel
//!   then sends itself (`ndisc_error_report` → `icmp6_send`), RELATED to the connection, which
//!   the pod's OUTPUT and INPUT rules may drop too (the connect then times out); that error is
//!   not walked (tests/kernel_neighbour.rs checks both against the kernel).
//!
//! A next hop is resolved once per path and pod (the kernel keeps the entry). Only the
//! sender's side is walked: the neighbour's own rules are not in the snapshot when it is the
//! node's gateway. The solicitation comes from the kernel's own ND socket, which has no file:
//! owner matches treat it as socketless (net/netfilter/xt_owner.c `owner_mt`: only negated
//! owner tests match).

use std::net::IpAddr;

use super::ending::Ending;
use super::kernel_hop::{decides, kernel_event, shown};
use super::step::{Detail, NdMessage, NeighbourProtocol, RuleStep};
use super::walk::Partial;
use super::{EngineError, Hop, Mesh};
use crate::netfilter::eval::{self, Disposition, Entry, Probe, Reason};
use crate::netfilter::model::Protocol;
use crate::netns::{solicited_node, NeighbourState};

/// Resolves the next hop of a packet that leaves the pod (`out`); `Some` is the ending when it
/// cannot be resolved.
pub(super) fn resolve(
    mesh: &Mesh,
    pi: usize,
    q: &mut Partial,
    out: &eval::Outcome,
) -> Result<Option<Ending>, EngineError> {
    let pod = &mesh.pods[pi];
    let Some((next_hop, dev)) = pod.netns.next_hop(out.dst.ip(), Some(out.src.ip()), out.mark) else {
        return Ok(None);
    };
    let resolved_before = q.steps.iter().any(|s| {
        s.pod == pi
            && matches!(&s.detail, Detail::NeighbourResolution { next_hop: n, dev: d, .. } if *n == next_hop && *d == dev)
    });
    if dev == "lo" || resolved_before {
        return Ok(None);
    }
    let entry = pod.netns.neighbour(next_hop, &dev).map(|n| n.state);
    let v6 = next_hop.is_ipv6();
    if !v6 && pod.netns.neighbours.is_none() {
        return Ok(None);
    }
    let protocol = if v6 { NeighbourProtocol::Nd } else { NeighbourProtocol::Arp };
    q.step(pi, Detail::NeighbourResolution { next_hop, dev: dev.clone(), protocol, entry });
    if entry.is_some_and(NeighbourState::is_valid) {
        return Ok(None);
    }
    let failed = || Ending::Dropped {
        pod: pod.name.clone(),
        reason: Reason::NoNeighbour { next_hop, dev: dev.clone() },
    };
    let Some(prog) = pod.program(true).filter(|_| v6) else {
        return Ok((entry == Some(NeighbourState::Failed)).then(failed));
    };
    let on_dev = pod.netns.interface(&dev).is_some_and(|i| i.addrs.iter().any(|a| a.addr() == out.src.ip()));
    let src = match on_dev {
        true => out.src.ip(),
        false => match pod.netns.preferred_source(next_hop, 0) {
            Some(s) => s,
            None => return Ok(None),
        },
    };
    let IpAddr::V6(target) = next_hop else { return Ok(None) };
    let sol = IpAddr::V6(solicited_node(target));
    let walks = [
        (NdMessage::Solicitation, Entry::Output, src, sol, 135),
        (NdMessage::Advertisement, Entry::Prerouting, next_hop, src, 136),
    ];
    for (message, entry_at, from, to, icmp_type) in walks {
        let mut probe = Probe::new(entry_at, Protocol::Icmpv6, from, 0, to, 0);
        probe.icmp_type = icmp_type;
        probe.in_iface = dev.clone();
        probe.kernel_sent = true;
        let t = eval::trace(prog, &pod.netns, &probe)?;
        // A `statistic` split is not followed here: the first branch stands for the message.
        let Some(b) = t.branches.into_iter().next() else { continue };
        let dropped = b.result.disposition == Disposition::Dropped;
        if decides(&b) {
            if q.record {
                q.hops.push(Hop::Kernel {
                    pod: pi,
                    first_step: q.steps.len(),
                    probe: probe.clone(),
                    branch: 0,
                });
            }
            q.step(pi, Detail::NeighbourMessage { message, src: from, dst: to });
            let mut notes = b.notes.into_iter().peekable();
            for (i, s) in b.steps.into_iter().enumerate() {
                while let Some(n) = notes.next_if(|n| n.before_step <= i) {
                    if matches!(n.event, eval::Event::Route { .. }) {
                        continue;
                    }
                    kernel_event(q, pi, n.event);
                }
                if shown(&s) {
                    q.step(pi, Detail::Rule(RuleStep { v6: true, file: prog.file.clone(), step: s }));
                }
            }
        }
        if dropped || b.result.disposition != expected(entry_at) {
            let reason = b.result.reason.unwrap_or(Reason::NoNeighbour { next_hop, dev: dev.clone() });
            return Ok(Some(Ending::Dropped { pod: pod.name.clone(), reason }));
        }
    }
    Ok((entry == Some(NeighbourState::Failed)).then(failed))
}

/// Where a message goes when nothing stops it: the solicitation out of the device, the
/// advertisement to the kernel's ND handler.
fn expected(entry: Entry) -> Disposition {
    match entry {
        Entry::Output => Disposition::Out,
        Entry::Prerouting => Disposition::Local,
    }
}
