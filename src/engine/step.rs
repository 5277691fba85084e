//! A path's steps as data: what happened at each turn, with the rule, routing decision, socket
//! or Envoy object that decided it. `crate::render` turns steps into words, JSON and graphs;
//! `explain` and loop detection read them as they are.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use serde::Serialize;

use super::identity::ProxyIdentity;
use crate::envoy::select::{HandoffMatch, ObjectRef};
use crate::netfilter::eval::{self, Event, NoteKind, StepKind, Verdict};
use crate::netns::{NeighbourState, L4};

/// How the kernel finds a next hop's link-layer address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NeighbourProtocol {
    /// ARP (IPv4): not an IP packet, so iptables' tables never see it (only arptables and
    /// nft's `arp` family; net/ipv4/arp.c `arp_xmit` runs the NFPROTO_ARP hooks).
    Arp,
    /// Neighbour discovery (IPv6): ICMPv6 solicitations and advertisements, which pass
    /// ip6tables like any packet.
    Nd,
}

/// A neighbour discovery message of a resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NdMessage {
    /// ICMPv6 type 135, sent by the pod to the next hop's solicited-node address.
    Solicitation,
    /// ICMPv6 type 136, the next hop's answer to the soliciting address.
    Advertisement,
}

/// Which part of the system a step belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    Netfilter,
    Route,
    Socket,
    Envoy,
    Dns,
    Wire,
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// Index of the pod in [`super::MeshTrace::pods`] (and the snapshot's pods).
    pub pod: usize,
    #[serde(flatten)]
    pub detail: Detail,
}

impl Step {
    pub fn layer(&self) -> Layer {
        self.detail.layer()
    }
}

/// Who puts the packet on its way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "sender", rename_all = "snake_case")]
pub enum Sender {
    /// A local process with these credentials calls `connect()`/`sendto()`.
    Process { uid: u32, gid: u32 },
    /// The packet arrives on the pod's eth0.
    Arrives,
}

/// A netfilter rule that matched, or a base chain's policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleStep {
    /// The rule set's family (`false`: IPv4).
    pub v6: bool,
    /// The rules file, as named in the snapshot.
    pub file: Arc<str>,
    #[serde(flatten)]
    pub step: eval::Step,
}

impl RuleStep {
    /// Whether this rule sends the packet somewhere else (REDIRECT, TPROXY, DNAT that took it).
    pub fn rewrites_destination(&self) -> bool {
        self.step.kind == StepKind::Rule
            && self.step.verdict == Verdict::Accept
            && matches!(self.step.target.as_deref(), Some("REDIRECT" | "TPROXY" | "DNAT"))
    }
}

/// What pilot-agent's DNS proxy does with a query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum DnsProxyAnswer {
    /// The name is in the proxy's table: it answers with these addresses.
    Addresses { addrs: Vec<IpAddr> },
    /// The proxy does not know the name and forwards the query upstream: to the query's
    /// original destination, assumed to be the nameserver of the pod's resolv.conf (none given).
    Forwards { to: SocketAddr },
    /// The proxy does not know the name and forwards the query to the first nameserver of the
    /// pod's resolv.conf (`resolv_conf`, the file).
    Nameserver { to: SocketAddr, resolv_conf: String },
}

/// What happened, as data.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Detail {
    /// The connection's first packet starts in this pod's kernel.
    Send { sender: Sender, proto: L4, src: SocketAddr, dst: SocketAddr },
    /// A rule matched or a policy applied.
    Rule(RuleStep),
    /// The kernel's own decision: routing, NAT, loopback, socket lookup, TPROXY.
    Kernel { event: Event },
    /// Before the packet leaves `dev`, the kernel needs `next_hop`'s link-layer address: the
    /// neighbour entry given as evidence (`entry`) when its state is valid, else a resolution
    /// by `protocol` (`entry` absent: no entry was given for it).
    NeighbourResolution {
        next_hop: IpAddr,
        dev: String,
        protocol: NeighbourProtocol,
        #[serde(skip_serializing_if = "Option::is_none")]
        entry: Option<NeighbourState>,
    },
    /// A neighbour discovery message of the resolution crosses the pod's hooks; the rule steps
    /// that follow are its (shown when a rule matched it).
    NeighbourMessage { message: NdMessage, src: IpAddr, dst: IpAddr },
    /// The connection's first reply packet (SYN-ACK) starts back in this pod, `src` to `dst`:
    /// conntrack ESTABLISHED, reply direction, the connection's NAT undone on the way; the
    /// rule steps that follow are its (shown when a rule matched it).
    Reply { src: SocketAddr, dst: SocketAddr },
    /// The packet leaves eth0 for another pod of the snapshot.
    ToPod { to: usize, dst: SocketAddr },
    /// The snapshot's name table resolves (or does not know) a name.
    Resolve { name: String, addr: Option<IpAddr> },
    /// pilot-agent's DNS proxy answers or forwards a query.
    DnsProxy { name: Option<String>, answer: DnsProxyAnswer },
    /// An Envoy listener accepts the connection.
    ListenerAccepts { listener: ObjectRef, orig_dst: SocketAddr },
    /// `use_original_dst`: the connection goes to the listener of its original destination
    /// (`matched`), or stays where it is when there is none.
    Handoff { target: ObjectRef, matched: Option<HandoffMatch>, restored: SocketAddr },
    /// The filter chain that takes the connection and by which rule (`filter_chain_match` ...).
    FilterChain { chain: ObjectRef, index: Option<usize>, via: &'static str },
    /// The HTTP request on a route configuration: the virtual host, the route, the decision.
    HttpRoute(Box<HttpRoute>),
    /// The cluster's load balancer picks an endpoint; Envoy connects to it.
    Endpoint { cluster: String, endpoint: String, source: Option<IpAddr>, via: String },
    /// The sender has the uid or gid the pod's proxy runs as (so the rules treat it as the
    /// proxy); where those values come from.
    ProxyIdentity {
        #[serde(flatten)]
        identity: ProxyIdentity,
    },
    /// A process that forwards DNS (`--forwarder`) got the query on `listen` and asks `upstream`
    /// as `uid`.
    DnsForwarder { listen: SocketAddr, upstream: SocketAddr, uid: u32 },
    /// Envoy's upstream connection starts TLS: the host's transport socket (the
    /// `transport_socket_matches` entry, or the cluster's `transport_socket`) sends a ClientHello.
    TlsOrigination(Box<TlsOrigination>),
    /// The filter chain's transport socket (`DownstreamTlsContext`) ends the client's TLS; the
    /// chain's filters read the plaintext inside.
    TlsTermination { chain: ObjectRef, socket: String, require_client_certificate: bool },
    /// The connection this Envoy opened upstream failed or was closed before a server took it:
    /// the Envoy answers its client (HTTP: `status` and `flag`; TCP: closes the downstream).
    UpstreamFailure {
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        #[serde(skip_serializing_if = "Option::is_none")]
        flag: Option<String>,
        details: String,
    },
    /// A listener filter waited for client bytes until `listener_filters_timeout`; the
    /// connection then went on (`continue_on_listener_filters_timeout`), late by `timeout`.
    ListenerFiltersTimeout { listener: String, filter: String, timeout: String },
}

/// A TLS origination (Envoy: source/common/upstream/transport_socket_match_impl.cc picks the
/// socket; source/common/tls/client_context_impl.cc sends SNI and ALPN).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TlsOrigination {
    pub cluster: String,
    pub endpoint: String,
    /// The transport socket's name (`envoy.transport_sockets.tls`).
    pub socket: String,
    /// The `transport_socket_matches` entry (e.g. Istio's `tlsMode-istio`); absent for the
    /// cluster's `transport_socket`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket_match: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// `sni` (the context's), `auto_sni` (the request's host) or `none`.
    pub sni_from: &'static str,
    pub alpn: Vec<String>,
    /// The context presents a client certificate (mutual TLS).
    pub client_certificate: bool,
}

/// The HTTP connection manager's routing of one request (Envoy's route table lookup).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpRoute {
    pub method: String,
    pub authority: String,
    pub path: String,
    pub route_config: ObjectRef,
    pub virtual_host: Option<ObjectRef>,
    pub route: Option<ObjectRef>,
    /// What the router did: `forward`, `direct_response`, `redirect`, `not_found` ...
    pub decision: String,
}

impl Detail {
    pub fn layer(&self) -> Layer {
        match self {
            Detail::Send { .. }
            | Detail::ToPod { .. }
            | Detail::NeighbourMessage { .. }
            | Detail::Reply { .. } => Layer::Wire,
            Detail::NeighbourResolution { .. } => Layer::Route,
            Detail::Rule(_) => Layer::Netfilter,
            Detail::Kernel { event } => match event.kind() {
                NoteKind::Route => Layer::Route,
                NoteKind::Socket => Layer::Socket,
                _ => Layer::Netfilter,
            },
            Detail::Resolve { .. } | Detail::DnsProxy { .. } => Layer::Dns,
            Detail::ProxyIdentity { .. } => Layer::Socket,
            Detail::DnsForwarder { .. } => Layer::Dns,
            Detail::ListenerAccepts { .. }
            | Detail::Handoff { .. }
            | Detail::FilterChain { .. }
            | Detail::HttpRoute(_)
            | Detail::Endpoint { .. } => Layer::Envoy,
            Detail::TlsOrigination(_) | Detail::TlsTermination { .. } | Detail::UpstreamFailure { .. } => {
                Layer::Envoy
            }
            Detail::ListenerFiltersTimeout { .. } => Layer::Envoy,
        }
    }

    /// Whether the step sends the connection on to another place: a rule that rewrites the
    /// destination, a listener that takes it, a hand-off, a cluster's upstream connection. A
    /// loop's cycle is closed by these.
    pub fn sends_on(&self) -> bool {
        match self {
            Detail::Rule(r) => r.rewrites_destination(),
            Detail::ListenerAccepts { .. } | Detail::Endpoint { .. } | Detail::DnsForwarder { .. } => true,
            Detail::DnsProxy { answer, .. } => {
                matches!(answer, DnsProxyAnswer::Forwards { .. } | DnsProxyAnswer::Nameserver { .. })
            }
            Detail::Handoff { matched, .. } => matched.is_some(),
            _ => false,
        }
    }
}
