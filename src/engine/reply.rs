//! The reply direction: when a TCP connection is delivered to a socket, its first reply packet
//! (the SYN-ACK) is walked back through the kernel hops the connection took, so rules that
//! break replies are found (`--state INVALID -j DROP` does not, a filter INPUT policy DROP
//! without an `ESTABLISHED` accept does).
//!
//! The reply is ESTABLISHED in the reply direction (net/netfilter/nf_conntrack_core.c
//! `resolve_normal_ct`: a packet of the reply tuple gets `IP_CT_ESTABLISHED_REPLY`); nat chains
//! do not run for it (`nf_nat_inet_fn` in net/netfilter/nf_nat_core.c consults the chains only
//! for a new connection) and the connection's NAT is undone: at the server the reply leaves
//! from the socket's address and POSTROUTING (or, looped back, INPUT) puts the destination the
//! client asked for back as its source; at the client it arrives through PREROUTING and INPUT
//! (filter INPUT, priority 0, sees the source before nat INPUT, priority 100, restores it).
//!
//! Only the connection the path ends on is walked back (an Envoy before it holds its own
//! connections); the reply's next-hop resolution is not walked again.

use std::net::SocketAddr;

use super::ending::Ending;
use super::kernel_hop::{decides, kernel_event, shown};
use super::step::{Detail, RuleStep};
use super::walk::Partial;
use super::{EngineError, Hop, Mesh};
use crate::netfilter::eval::{self, Disposition, Entry, Probe, Reason, ReplyNat};
use crate::netfilter::model::{tcp_flags, Protocol};

/// One kernel hop of a connection: the packet as it came in and as it went on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SegmentHop {
    pub pod: usize,
    pub entry: Entry,
    pub before: (SocketAddr, SocketAddr),
    pub after: (SocketAddr, SocketAddr),
    /// The connection's mark after this hop.
    pub ctmark: u32,
}

/// Walks the first reply of the connection back from the socket (run as `uid`) that took it;
/// `Some` is the ending when a hop drops it.
pub(super) fn walk(mesh: &Mesh, q: &mut Partial, uid: u32) -> Result<Option<Ending>, EngineError> {
    let seg = q.segment.clone();
    let n = seg.len();
    for (k, h) in seg.iter().enumerate().rev() {
        let pod = &mesh.pods[h.pod];
        let (src, dst) = (h.after.1, h.after.0);
        let Some(prog) = pod.program(src.is_ipv6()) else { return Ok(None) };
        let entry = if k + 1 == n { Entry::Output } else { Entry::Prerouting };
        let mut probe = Probe::new(entry, Protocol::Tcp, src.ip(), src.port(), dst.ip(), dst.port());
        probe.tcp_flags = tcp_flags::SYN | tcp_flags::ACK;
        (probe.uid, probe.gid) = if entry == Entry::Output { (uid, uid) } else { (0, 0) };
        probe.reply = Some(ReplyNat {
            src_to: (h.before.1 != h.after.1).then_some(h.before.1),
            dst_to: (h.before.0 != h.after.0).then_some(h.before.0),
            ctmark: h.ctmark,
        });
        let t = eval::trace(prog, &pod.netns, &probe)?;
        // A `statistic` split is not followed here: the first branch stands for the reply.
        let Some(b) = t.branches.into_iter().next() else { continue };
        let arrived = b.result.disposition != Disposition::Dropped;
        if decides(&b) {
            if q.record && !arrived {
                // explain says why the reply is dropped (a reply that gets through is told by
                // its steps alone).
                q.hops.push(Hop::Kernel {
                    pod: h.pod,
                    first_step: q.steps.len(),
                    probe: probe.clone(),
                    branch: 0,
                });
            }
            q.step(h.pod, Detail::Reply { src, dst });
            let mut notes = b.notes.into_iter().peekable();
            for (i, s) in b.steps.into_iter().enumerate() {
                while let Some(note) = notes.next_if(|x| x.before_step <= i) {
                    if !matches!(note.event, eval::Event::Route { .. }) {
                        kernel_event(q, h.pod, note.event);
                    }
                }
                if shown(&s) {
                    q.step(
                        h.pod,
                        Detail::Rule(RuleStep { v6: src.is_ipv6(), file: prog.file.clone(), step: s }),
                    );
                }
            }
        }
        if !arrived {
            let reason = b.result.reason.unwrap_or(Reason::NoRoute { dst: b.result.dst.ip(), local: false });
            return Ok(Some(Ending::Dropped { pod: pod.name.clone(), reason }));
        }
    }
    Ok(None)
}
