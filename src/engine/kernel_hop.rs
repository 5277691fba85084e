//! A kernel hop: the packet walks one pod's netfilter path; each branch of the result becomes
//! a step list and the next state (another pod, Envoy, pilot-agent's DNS proxy) or an ending.

use std::net::SocketAddr;
use std::sync::Arc;

use super::ending::{Ending, Refusal};
use super::reply::{self, SegmentHop};
use super::step::{Detail, DnsProxyAnswer, RuleStep, Sender};
use super::walk::{take_or_clone, Next, Partial, State};
use super::{neighbour, Destination, EngineError, Hop, Mesh, Start};
use crate::netfilter::eval::{self, Disposition, Entry, NoteKind, Probe, StepKind, Verdict};
use crate::netfilter::model::Protocol;
use crate::netns::{Owner, L4};

pub(super) fn kernel(
    mesh: &Mesh,
    start: &Start,
    p: Partial,
    pi: usize,
    entry: Entry,
    (src, dst): (SocketAddr, SocketAddr),
    (uid, gid, mark): (u32, u32, u32),
) -> Result<Vec<Next>, EngineError> {
    let pod = &mesh.pods[pi];
    let v6 = dst.is_ipv6();
    let Some(prog) = pod.program(v6) else {
        return Err(EngineError::NoRules {
            pod: pod.name.clone(),
            family: if v6 { "IPv6" } else { "IPv4" },
            flag: if v6 { "ip6tables" } else { "iptables" },
        });
    };
    let proto = match p.proto {
        L4::Tcp => Protocol::Tcp,
        L4::Udp => Protocol::Udp,
        L4::Icmp => Protocol::Icmp,
        L4::Icmpv6 => Protocol::Icmpv6,
    };
    let mut probe = Probe::new(entry, proto, src.ip(), src.port(), dst.ip(), dst.port());
    if let Some((t, c)) = start.icmp_type {
        (probe.icmp_type, probe.icmp_code) = (t, c);
    }
    probe.uid = uid;
    probe.gid = gid;
    probe.mark = mark;
    let t = eval::trace(prog, &pod.netns, &probe)?;
    let file: Arc<str> = prog.file.clone();
    let sender = match entry {
        Entry::Output => Sender::Process { uid, gid },
        Entry::Prerouting => Sender::Arrives,
    };
    let mut out = Vec::with_capacity(t.branches.len());
    let n = t.branches.len();
    let mut p = Some(p);
    for (bi, b) in t.branches.into_iter().enumerate() {
        let Some(mut q) = take_or_clone(&mut p, bi + 1 == n) else { break };
        q.weight *= b.probability;
        if q.record {
            let first_step = q.steps.len();
            q.hops.push(Hop::Kernel { pod: pi, first_step, probe: probe.clone(), branch: bi });
        }
        // Where the proxy's identity comes from, once per pod and path, when the sender has it
        // and the path would not otherwise show it: the path's first sender (a process that
        // shares the proxy's uid is exempted as the proxy is), or an identity that no rule of
        // the path cites (given, read from a socket, or Istio's default).
        let proxy_id = uid == pod.proxy.uid || gid == pod.proxy.gid;
        let first_sender = !q.steps.iter().any(|s| matches!(s.detail, Detail::Send { .. }));
        if entry == Entry::Output
            && proxy_id
            && (first_sender || !pod.proxy.from_rules())
            && !q.said_identity(pi)
        {
            q.step(pi, Detail::ProxyIdentity { identity: pod.proxy.clone() });
        }
        q.step(pi, Detail::Send { sender, proto: q.proto, src, dst });
        let mut notes = b.notes.into_iter().peekable();
        for (i, s) in b.steps.into_iter().enumerate() {
            while let Some(n) = notes.next_if(|n| n.before_step <= i) {
                kernel_event(&mut q, pi, n.event);
            }
            if s.kind == StepKind::Return || (s.kind == StepKind::Policy && s.verdict == Verdict::Accept) {
                continue;
            }
            q.step(pi, Detail::Rule(RuleStep { v6, file: file.clone(), step: s }));
        }
        for n in notes {
            kernel_event(&mut q, pi, n.event);
        }
        let r = b.result;
        if entry == Entry::Output {
            q.segment.clear();
        }
        q.segment.push(SegmentHop {
            pod: pi,
            entry,
            before: (src, dst),
            after: (r.src, r.dst),
            ctmark: r.ctmark,
        });
        let socket_uid = r.socket.as_ref().and_then(|s| s.uid).unwrap_or(0);
        let next = match r.disposition {
            Disposition::Dropped => match r.reason {
                Some(reason) => Err(Ending::Dropped { pod: pod.name.clone(), reason }),
                None => Err(Ending::Dropped {
                    pod: pod.name.clone(),
                    reason: eval::Reason::NoRoute { dst: r.dst.ip(), local: false },
                }),
            },
            Disposition::Out | Disposition::Forwarded => match neighbour::resolve(mesh, pi, &mut q, &r)? {
                Some(unreachable) => Err(unreachable),
                None => match mesh.owner_of(r.dst.ip()) {
                    Some(other) if other != pi => {
                        q.step(pi, Detail::ToPod { to: other, dst: r.dst });
                        Ok(State::Kernel {
                            pod: other,
                            entry: Entry::Prerouting,
                            src: r.src,
                            dst: r.dst,
                            uid: 0,
                            gid: 0,
                            mark: 0,
                        })
                    }
                    _ => Err(Ending::Left {
                        pod: pod.name.clone(),
                        dst: r.dst,
                        cluster: q.last_cluster.clone(),
                    }),
                },
            },
            Disposition::Local => local_delivery(mesh, start, &mut q, pi, r),
        };
        // A delivered TCP connection: its first reply goes back the same way.
        let next = match next {
            Err(Ending::Delivered { .. }) if q.proto == L4::Tcp => {
                match reply::walk(mesh, &mut q, socket_uid)? {
                    Some(broken) => Err(broken),
                    None => next,
                }
            }
            other => other,
        };
        out.push((q, next));
    }
    Ok(out)
}

/// Whether a walk of a packet other than the connection's own (a reply, a neighbour discovery
/// message) is worth its steps: a rule accepted or dropped it (jumps and chain ends alone are
/// not), or it was dropped.
pub(super) fn decides(b: &eval::Branch) -> bool {
    b.result.disposition == Disposition::Dropped
        || b.steps
            .iter()
            .any(|s| s.kind == StepKind::Rule && matches!(s.verdict, Verdict::Accept | Verdict::Drop))
}

/// The steps of such a walk that the path shows: rules and a policy that drops.
pub(super) fn shown(s: &eval::Step) -> bool {
    !(s.kind == StepKind::Return || (s.kind == StepKind::Policy && s.verdict == Verdict::Accept))
}

/// A kernel decision between rules becomes a step, except conntrack and mark changes (the
/// rules that test them say enough).
pub(super) fn kernel_event(q: &mut Partial, pi: usize, event: eval::Event) {
    if matches!(event.kind(), NoteKind::Conntrack | NoteKind::Mark) {
        return;
    }
    q.step(pi, Detail::Kernel { event });
}

/// A connection reached a local socket: Envoy, pilot-agent's DNS proxy, the app, or nothing.
fn local_delivery(
    mesh: &Mesh,
    start: &Start,
    q: &mut Partial,
    pi: usize,
    r: eval::Outcome,
) -> Result<State, Ending> {
    let pod = &mesh.pods[pi];
    let (dst, src, orig) = (r.dst, r.src, r.orig_dst);
    if q.proto.is_icmp() {
        // No socket takes ICMP: the kernel's own handler does (an echo request is answered by
        // `icmp_echo` in net/ipv4/icmp.c, `icmpv6_echo_reply` in net/ipv6/icmp.c).
        return Err(Ending::Delivered {
            pod: pod.name.clone(),
            socket: dst,
            process: "kernel (ICMP)".into(),
        });
    }
    let Some(sock) = r.socket else {
        return Err(Ending::Refused { pod: pod.name.clone(), dst, by: Refusal::NoSocket { proto: q.proto } });
    };
    match sock.owner {
        Owner::Envoy => {
            Ok(State::Envoy { pod: pi, listener: SocketAddr::new(dst.ip(), sock.port), orig_dst: orig, src })
        }
        Owner::PilotAgent if q.proto == L4::Udp || orig.port() == 53 => {
            let name = start.dns_query.clone().or_else(|| match &start.dst {
                Destination::Host { name, .. } => Some(name.clone()),
                Destination::Addr(_) => None,
            });
            match name.as_ref().and_then(|n| mesh.names.get(&n.to_ascii_lowercase())) {
                Some(addrs) => {
                    let answer = DnsProxyAnswer::Addresses { addrs: addrs.clone() };
                    q.step(pi, Detail::DnsProxy { name, answer });
                    Err(Ending::Delivered {
                        pod: pod.name.clone(),
                        socket: sock.endpoint_addr(),
                        process: "pilot-agent (DNS proxy)".into(),
                    })
                }
                None => {
                    // Not in the table: pilot-agent asks the first nameserver of resolv.conf
                    // (`queryUpstream` in pkg/dns/client/dns.go); without the file, the query's
                    // original destination stands for it.
                    let (to, answer) =
                        match pod.resolv_conf.as_ref().and_then(|r| Some((r, r.first_server()?))) {
                            Some((r, to)) => {
                                (to, DnsProxyAnswer::Nameserver { to, resolv_conf: r.file.clone() })
                            }
                            None => (orig, DnsProxyAnswer::Forwards { to: orig }),
                        };
                    q.step(pi, Detail::DnsProxy { name, answer });
                    let src = SocketAddr::new(pod.source_for(to.ip()), 40000 + q.hop_count() as u16);
                    Ok(State::Kernel {
                        pod: pi,
                        entry: Entry::Output,
                        src,
                        dst: to,
                        uid: pod.istio.proxy_uid,
                        gid: pod.istio.proxy_gid,
                        mark: 0,
                    })
                }
            }
        }
        _ if q.proto == L4::Udp || orig.port() == 53 => {
            match pod.forwarders.iter().find(|f| f.listens_on(&sock)) {
                Some(f) => {
                    // The forwarder's own query: a new socket of its process, as its uid (the
                    // socket's, else root), from the address the kernel picks for the upstream.
                    let uid = sock.uid.unwrap_or(0);
                    q.step(pi, Detail::DnsForwarder { listen: f.listen, upstream: f.upstream, uid });
                    let src = SocketAddr::new(pod.source_for(f.upstream.ip()), 40000 + q.hop_count() as u16);
                    Ok(State::Kernel {
                        pod: pi,
                        entry: Entry::Output,
                        src,
                        dst: f.upstream,
                        uid,
                        gid: uid,
                        mark: 0,
                    })
                }
                None => Err(Ending::Delivered {
                    pod: pod.name.clone(),
                    socket: sock.endpoint_addr(),
                    process: sock.owner.as_str().to_string(),
                }),
            }
        }
        _ => Err(Ending::Delivered {
            pod: pod.name.clone(),
            socket: sock.endpoint_addr(),
            process: sock.owner.as_str().to_string(),
        }),
    }
}
