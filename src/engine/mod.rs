//! The path engine: a deterministic walk of one connection across the pods of a snapshot,
//! through each pod's kernel (netfilter, routing, sockets) and Envoy (listeners, filter chains,
//! routes, clusters, endpoints), until it is delivered, refused, dropped, answered by Envoy,
//! leaves the snapshot, cannot be resolved, or loops.

mod dns;
mod ending;
mod envoy_hop;
pub mod evidence;
mod identity;
mod kernel_hop;
mod neighbour;
mod reply;
mod snapshot;
mod step;
mod walk;

use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

pub use ending::{Ending, Refusal, RejectedConfig, Undetermined};
pub use envoy_hop::{envoy_hop_trace, envoy_hop_trace_on, envoy_query};
pub use snapshot::{Mesh, Pod};
pub use step::{
    Detail, DnsProxyAnswer, HttpRoute, Layer, NdMessage, NeighbourProtocol, RuleStep, Sender, Step,
    TlsOrigination,
};
pub use walk::{trace, trace_recorded, HOP_BUDGET};

use crate::envoy::select::{ClientBytes, HttpRequest};
use crate::netns::L4;

/// Who starts the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum From {
    /// A local process with these credentials (the app is uid 1000, Envoy 1337).
    Process { uid: u32, gid: u32 },
    /// A packet arriving on the pod's eth0 from this address.
    Outside { src: IpAddr },
}

/// Where it goes: an address, or a name looked up in the snapshot's name table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Addr(SocketAddr),
    Host { name: String, port: u16 },
}

/// How weighted choices are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pick {
    /// Every choice becomes a branch with its weight.
    #[default]
    All,
    /// The first endpoint in EDS order; weighted clusters as Envoy would with value 0.
    First,
    /// Envoy's choice for this random value (N modulo the total weight).
    RandomValue(u64),
}

/// One connection to walk.
#[derive(Debug, Clone)]
pub struct Start {
    pub pod: usize,
    pub from: From,
    pub dst: Destination,
    pub proto: L4,
    /// Source address and port (defaults: the pod's address, port 50000).
    pub src: Option<SocketAddr>,
    pub client: ClientBytes,
    pub request: Option<HttpRequest>,
    /// The question of a DNS query the client sends (pilot-agent's DNS proxy answers it).
    pub dns_query: Option<String>,
    pub pick: Pick,
    /// The ICMP type and code of an ICMP probe (`None`: an echo request).
    pub icmp_type: Option<(u8, u8)>,
}

/// Envoy's decisions for one connection through one proxy.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EnvoyHop {
    pub pod: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listener: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter_chain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route_config: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_address: Option<String>,
    /// The Istio resources behind the objects used (`filter_metadata.istio.config`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub istio_config: Vec<String>,
}

/// One way the connection can go.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Path {
    pub weight: f64,
    pub ending: Ending,
    pub envoy: Vec<EnvoyHop>,
    pub steps: Vec<Step>,
    /// What each kernel and Envoy hop was given, in order (only from [`trace_recorded`]), so
    /// a report can re-run a hop and say why it went the way it did.
    #[serde(skip)]
    pub hops: Vec<Hop>,
}

/// The input of one hop of a path.
#[derive(Debug, Clone, PartialEq)]
pub enum Hop {
    /// The kernel of pod `pod` walked `probe`; the path took branch `branch` of the result.
    Kernel { pod: usize, first_step: usize, probe: crate::netfilter::eval::Probe, branch: usize },
    /// The Envoy of pod `pod` got a connection (see [`envoy_query`]) whose first bytes were
    /// `client` (the TLS an Envoy before it originated, or the client's own).
    Envoy {
        pod: usize,
        first_step: usize,
        listener: SocketAddr,
        orig_dst: SocketAddr,
        src: SocketAddr,
        client: ClientBytes,
    },
}

/// Every path, in a deterministic order; weights sum to 1.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeshTrace {
    /// The snapshot's pod names; [`Step::pod`] indexes them.
    pub pods: Vec<String>,
    pub paths: Vec<Path>,
}

impl MeshTrace {
    /// The name of pod `i` (`?` for an index outside the snapshot).
    pub fn pod_name(&self, i: usize) -> &str {
        self.pods.get(i).map_or("?", String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("pod {pod} has no {family} rule set: give its {flag}-save output (--{flag}, or `{flag}:` under the pod in a scenario file)")]
    NoRules { pod: String, family: &'static str, flag: &'static str },
    #[error("{0}")]
    Netfilter(#[from] crate::netfilter::eval::EvalError),
    #[error("the walk split into more than {0} paths")]
    TooManyPaths(usize),
    #[error("the walk starts in pod #{index}, but the snapshot has {pods} pod(s)")]
    NoSuchPod { index: usize, pods: usize },
}

#[cfg(test)]
mod tests;
