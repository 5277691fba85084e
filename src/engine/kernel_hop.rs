//! A kernel hop: the packet walks one pod's netfilter path; each branch of the result becomes
//! a step list and the next state (another pod, Envoy, pilot-agent's DNS proxy) or an ending.

use std::net::SocketAddr;
use std::sync::Arc;

use super::ending::{Ending, Refusal};
use super::step::{Detail, DnsProxyAnswer, RuleStep, Sender};
use super::walk::{take_or_clone, Next, Partial, State};
use super::{Destination, EngineError, Hop, Mesh, Start};
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
    };
    let mut probe = Probe::new(entry, proto, src.ip(), src.port(), dst.ip(), dst.port());
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
        let next = match r.disposition {
            Disposition::Dropped => match r.reason {
                Some(reason) => Err(Ending::Dropped { pod: pod.name.clone(), reason }),
                None => Err(Ending::Dropped {
                    pod: pod.name.clone(),
                    reason: eval::Reason::NoRoute { dst: r.dst.ip(), local: false },
                }),
            },
            Disposition::Out | Disposition::Forwarded => match mesh.owner_of(r.dst.ip()) {
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
                _ => Err(Ending::Left { pod: pod.name.clone(), dst: r.dst, cluster: q.last_cluster.clone() }),
            },
            Disposition::Local => local_delivery(mesh, start, &mut q, pi, r),
        };
        out.push((q, next));
    }
    Ok(out)
}

/// A kernel decision between rules becomes a step, except conntrack and mark changes (the
/// rules that test them say enough).
fn kernel_event(q: &mut Partial, pi: usize, event: eval::Event) {
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
                    q.step(pi, Detail::DnsProxy { name, answer: DnsProxyAnswer::Forwards { to: orig } });
                    let src = SocketAddr::new(pod.source_for(orig.ip()), 40000 + q.hop_count() as u16);
                    Ok(State::Kernel {
                        pod: pi,
                        entry: Entry::Output,
                        src,
                        dst: orig,
                        uid: pod.istio.proxy_uid,
                        gid: pod.istio.proxy_gid,
                        mark: 0,
                    })
                }
            }
        }
        _ => Err(Ending::Delivered {
            pod: pod.name.clone(),
            socket: sock.endpoint_addr(),
            process: sock.owner.as_str().to_string(),
        }),
    }
}
