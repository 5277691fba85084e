//! Stitching the redirected legs of a connection.
//!
//! In a pod with Istio's rules, the app's connect to `10.96.0.10:80` is rewritten by the nat
//! OUTPUT `REDIRECT` to `127.0.0.1:15001`. An `-i any` capture sees the client's packets on `lo`
//! after NAT (`10.0.0.5:40000 > 127.0.0.1:15001`) while the replies, un-NATed by conntrack,
//! show the original destination (`10.96.0.10:80 > 10.0.0.5:40000`): one connection, two
//! 5-tuples. Inbound, the leg to `<pod ip>:15006` pairs the same way with the flow to the
//! original port. Both legs share the client's ip:port, which is what pairs them.
//! (docs/capture.md, "Stitching redirected legs"; the kernel: net/netfilter/nf_nat_redirect.c.)

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use super::flow::{Flow, FlowId, Transport};

/// Envoy's outbound (15001) and inbound (15006) capture ports in Istio, and the DNS proxy's
/// (15053) that DNS capture redirects port 53 to: Istio's defaults. A pod's own are
/// `pod.istio.redirect_ports()`.
pub const REDIRECT_PORTS: [u16; 3] = crate::istio::Conventions::ISTIO.redirect_ports();

/// A pairing of a redirected leg with the flow that shows the original destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stitch {
    /// The flow to the redirect port (`127.0.0.1:15001`, `<local>:15006`).
    pub leg: FlowId,
    /// The flow with the original destination (the other 5-tuple of the same connection).
    pub original: FlowId,
    pub redirect_port: u16,
    /// The client endpoint both flows share.
    pub client: SocketAddr,
}

/// Pairs each flow to a redirect port on a loopback or local address with the flow that shares
/// its client ip:port (the nearest in time when several do), records the pairing on both flows
/// (`Flow::stitch`) and returns the pairings in leg order. Each flow is paired at most once.
pub fn stitch_redirects(flows: &mut [Flow], local: &[IpAddr], redirect_ports: &[u16]) -> Vec<Stitch> {
    let is_leg = |f: &Flow| {
        redirect_ports.contains(&f.server.port())
            && (f.server.ip().is_loopback() || local.contains(&f.server.ip()))
    };
    let legs: Vec<FlowId> = (0..flows.len()).filter(|&i| is_leg(&flows[i])).collect();
    if legs.is_empty() {
        return Vec::new();
    }
    // Every non-leg flow under each of its endpoints that is a leg's client.
    let mut by_endpoint: BTreeMap<(Transport, SocketAddr), Vec<FlowId>> =
        legs.iter().map(|&l| ((flows[l].transport, flows[l].client), Vec::new())).collect();
    for (i, f) in flows.iter().enumerate() {
        if is_leg(f) {
            continue;
        }
        for end in [f.client, f.server] {
            if let Some(v) = by_endpoint.get_mut(&(f.transport, end)) {
                v.push(i);
            }
        }
    }
    let mut paired = vec![false; flows.len()];
    let mut out = Vec::new();
    for leg in legs {
        let (transport, client, t0) = match flows.get(leg) {
            Some(f) => (f.transport, f.client, f.first_nanos),
            None => continue,
        };
        let Some(candidates) = by_endpoint.get(&(transport, client)) else { continue };
        let best = candidates
            .iter()
            .copied()
            .filter(|&c| !paired.get(c).copied().unwrap_or(true))
            .min_by_key(|&c| (flows.get(c).map_or(u64::MAX, |f| f.first_nanos.abs_diff(t0)), c));
        let Some(original) = best else { continue };
        let redirect_port = flows.get(leg).map_or(0, |f| f.server.port());
        let s = Stitch { leg, original, redirect_port, client };
        paired[original] = true;
        paired[leg] = true;
        if let Some(f) = flows.get_mut(leg) {
            f.stitch = Some(Box::new(s));
        }
        if let Some(f) = flows.get_mut(original) {
            f.stitch = Some(Box::new(s));
        }
        out.push(s);
    }
    out
}
