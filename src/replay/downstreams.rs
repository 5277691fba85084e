//! Connections Envoy accepted, waiting for the upstream connection it opens for each
//! (docs/replay.md, "Envoy's own connections"): in an `-i any` capture the app's redirected
//! connection shows as a leg to 15001 plus its original destination, and Envoy's connection to
//! the endpoint follows as a flow from the pod that nothing redirected; inbound, a connection
//! to the pod is followed by Envoy's connection from 127.0.0.6 to the app.
//!
//! Every inbound flow is offered, so this is kept small: per address one list head, per offer
//! one (flow, next) pair of numbers.

use std::net::{IpAddr, SocketAddr};

use super::record::{id32, NONE};
use crate::capture::{Flow, FlowId};
use crate::util::fasthash::FastMap;

#[derive(Debug, Clone, Copy)]
struct Node {
    flow: u32,
    /// The next older offer to the same address, or [`NONE`].
    next: u32,
}

#[derive(Debug, Default)]
pub(crate) struct Downstreams {
    /// The newest offer to each IPv4 address and port (address << 16 | port).
    v4: FastMap<u64, u32>,
    other: FastMap<SocketAddr, u32>,
    nodes: Vec<Node>,
    claimed: Vec<bool>,
}

impl Downstreams {
    fn head(&mut self, a: SocketAddr) -> &mut u32 {
        match a.ip() {
            IpAddr::V4(v) => {
                self.v4.entry(u64::from(v.to_bits()) << 16 | u64::from(a.port())).or_insert(NONE)
            }
            IpAddr::V6(_) => self.other.entry(a).or_insert(NONE),
        }
    }

    fn head_of(&self, a: SocketAddr) -> Option<u32> {
        match a.ip() {
            IpAddr::V4(v) => self.v4.get(&(u64::from(v.to_bits()) << 16 | u64::from(a.port()))).copied(),
            IpAddr::V6(_) => self.other.get(&a).copied(),
        }
    }

    /// Offers flow `f` as a downstream at its server and, when it differs, at the endpoint
    /// predicted for it.
    pub(crate) fn offer(&mut self, f: &Flow, endpoint: Option<SocketAddr>) {
        for a in std::iter::once(f.server).chain(endpoint.filter(|e| *e != f.server)) {
            let node = id32(self.nodes.len());
            let head = self.head(a);
            let next = *head;
            *head = node;
            self.nodes.push(Node { flow: id32(f.id), next });
        }
    }

    /// The latest unclaimed downstream that started before `f` and went to `f`'s server (as
    /// its destination or its predicted endpoint).
    pub(crate) fn claim(&mut self, f: &Flow, flows: &[Flow]) -> Option<FlowId> {
        let mut prev = NONE;
        let mut at = self.head_of(f.server)?;
        while let Some(node) = self.nodes.get(at as usize).copied() {
            let d = node.flow as usize;
            let fits = !self.claimed.get(d).copied().unwrap_or(false)
                && flows.get(d).is_some_and(|x| x.first_nanos <= f.first_nanos);
            if fits {
                match self.nodes.get_mut(prev as usize) {
                    Some(p) => p.next = node.next,
                    None => *self.head(f.server) = node.next,
                }
                if self.claimed.len() <= d {
                    self.claimed.resize(d + 1, false);
                }
                self.claimed[d] = true;
                return Some(d);
            }
            prev = at;
            at = node.next;
        }
        None
    }
}
