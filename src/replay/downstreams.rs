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
    /// The flow offered, or [`NONE`] (an empty list).
    flow: u32,
    /// The next older offer to the same address (index into `Downstreams::older`), or [`NONE`].
    next: u32,
}

const EMPTY: Node = Node { flow: NONE, next: NONE };

/// Where a node of a list is: in the map (the newest) or among the older ones.
#[derive(Debug, Clone, Copy)]
enum At {
    Head,
    Older(usize),
}

#[derive(Debug, Default)]
pub(crate) struct Downstreams {
    /// The newest offer to each IPv4 address and port (address << 16 | port).
    v4: FastMap<u64, Node>,
    other: FastMap<SocketAddr, Node>,
    /// Offers that a newer one to the same address pushed out of the map.
    older: Vec<Node>,
    claimed: Vec<bool>,
}

fn v4_key(v: std::net::Ipv4Addr, port: u16) -> u64 {
    u64::from(v.to_bits()) << 16 | u64::from(port)
}

impl Downstreams {
    fn head(&mut self, a: SocketAddr) -> &mut Node {
        match a.ip() {
            IpAddr::V4(v) => self.v4.entry(v4_key(v, a.port())).or_insert(EMPTY),
            IpAddr::V6(_) => self.other.entry(a).or_insert(EMPTY),
        }
    }

    fn head_of(&self, a: SocketAddr) -> Option<Node> {
        match a.ip() {
            IpAddr::V4(v) => self.v4.get(&v4_key(v, a.port())).copied(),
            IpAddr::V6(_) => self.other.get(&a).copied(),
        }
    }

    /// Offers flow `f` as a downstream at its server and, when it differs, at the endpoint
    /// predicted for it.
    pub(crate) fn offer(&mut self, f: &Flow, endpoint: Option<SocketAddr>) {
        for a in std::iter::once(f.server).chain(endpoint.filter(|e| *e != f.server)) {
            let pushed = id32(self.older.len());
            let head = self.head(a);
            let old = std::mem::replace(head, Node { flow: id32(f.id), next: NONE });
            if old.flow != NONE {
                head.next = pushed;
                self.older.push(old);
            }
        }
    }

    /// The latest unclaimed downstream that started before `f` and went to `f`'s server (as
    /// its destination or its predicted endpoint).
    pub(crate) fn claim(&mut self, f: &Flow, flows: &[Flow]) -> Option<FlowId> {
        let mut prev: Option<At> = None;
        let (mut at, mut node) = (At::Head, self.head_of(f.server)?);
        loop {
            let d = node.flow as usize;
            let fits = node.flow != NONE
                && !self.claimed.get(d).copied().unwrap_or(false)
                && flows.get(d).is_some_and(|x| x.first_nanos <= f.first_nanos);
            if fits {
                match prev {
                    None => {
                        let next = self.older.get(node.next as usize).copied().unwrap_or(EMPTY);
                        *self.head(f.server) = next;
                    }
                    Some(At::Head) => self.head(f.server).next = node.next,
                    Some(At::Older(p)) => {
                        if let Some(p) = self.older.get_mut(p) {
                            p.next = node.next;
                        }
                    }
                }
                if self.claimed.len() <= d {
                    self.claimed.resize(d + 1, false);
                }
                self.claimed[d] = true;
                return Some(d);
            }
            prev = Some(at);
            let i = node.next as usize;
            (at, node) = (At::Older(i), *self.older.get(i)?);
        }
    }
}
