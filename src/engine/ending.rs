//! How a path ends, as data: one disposition per path (`crate::render` words it).

use std::net::SocketAddr;

use serde::Serialize;

use crate::envoy::validate::{Instead, ObjectKind};
use crate::netfilter::eval::Reason;
use crate::netns::L4;

/// How a path ends.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Ending {
    /// A local socket accepted the connection (or the datagram).
    Delivered { pod: String, socket: SocketAddr, process: String },
    /// Nothing accepts it at `dst`: the kernel answers RST / port unreachable, or Envoy has
    /// no listener for the address.
    Refused {
        pod: String,
        dst: SocketAddr,
        #[serde(flatten)]
        by: Refusal,
    },
    /// The kernel drops the packet.
    Dropped {
        pod: String,
        #[serde(flatten)]
        reason: Reason,
    },
    /// Envoy answered (HTTP status and flag) or closed the connection (flag, no status).
    /// `upstream` is how Envoy's own upstream connection ended when that is why it answers
    /// (refused or dropped: `UF`).
    EnvoyResponse {
        pod: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        #[serde(skip_serializing_if = "Option::is_none")]
        flag: Option<String>,
        /// Envoy's reason, as the Envoy model states it (empty when `upstream` says it).
        details: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        upstream: Option<Box<Ending>>,
    },
    /// Envoy sends it to Istio's cluster that has no hosts by design (REGISTRY_ONLY, a port
    /// of Envoy's own): Envoy answers or closes as for any cluster without a healthy host
    /// (`status` 503 for HTTP, `flag` UH), and this ending says it was meant to.
    Blackhole {
        pod: String,
        cluster: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        #[serde(skip_serializing_if = "Option::is_none")]
        flag: Option<String>,
    },
    /// Leaves the snapshot towards an outside address.
    Left {
        pod: String,
        dst: SocketAddr,
        #[serde(skip_serializing_if = "Option::is_none")]
        cluster: Option<String>,
    },
    /// A name that neither the snapshot's name table nor the cluster resolves.
    Unresolved { pod: String, host: String },
    /// The path comes back to a state it was in. `cycle` is [first step, last step] of the
    /// repeating part and `closed_by` the steps in it that send the connection back (REDIRECT,
    /// TPROXY or DNAT rules, listeners, hand-offs, upstream connections): 0-based indexes into
    /// the path's steps. `budget` is set when the hop budget ran out instead.
    Loop {
        cycle: [usize; 2],
        closed_by: Vec<usize>,
        #[serde(skip_serializing_if = "Option::is_none")]
        budget: Option<usize>,
    },
    /// meshpath cannot decide (a feature it does not model); `why` says which.
    Undetermined {
        pod: String,
        #[serde(flatten)]
        why: Undetermined,
    },
    /// The connection would be taken by an object Envoy refuses (a listener it rejects, or a
    /// rejected update): which object and where, Envoy's reason (its own words where known)
    /// and what Envoy serves instead.
    RejectedConfig(Box<RejectedConfig>),
    /// A listener filter waits for the client's first bytes, which a server-first client
    /// never sends, and the listener has no `listener_filters_timeout`: the connection hangs.
    Stalled { pod: String, listener: String, filter: String },
}

/// The object Envoy refuses that a path would use ([`Ending::RejectedConfig`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RejectedConfig {
    pub pod: String,
    pub object: ObjectKind,
    pub name: String,
    /// JSON path of the problem in the config dump.
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// Envoy's reason, in its own words where known.
    pub reason: String,
    pub instead: Instead,
}

/// Why a connection is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Refusal {
    /// No socket listens: TCP gets RST, UDP ICMP port unreachable.
    NoSocket { proto: L4 },
    /// The connection reached Envoy's port, but no listener of its config takes it.
    NoEnvoyListener,
}

/// What meshpath cannot decide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "why", rename_all = "snake_case")]
pub enum Undetermined {
    /// The connection reached Envoy, but the pod has no config dump.
    NoConfigDump,
    /// The Envoy model cannot decide (its reason).
    Envoy { reason: String },
    /// A cluster's endpoint is neither an IP address nor a name.
    EndpointNotAnAddress { endpoint: String },
    /// An EDS cluster whose endpoints are not in the dump (taken without `?include_eds`).
    EndpointsNotInDump { cluster: String, service_name: String },
}

impl Ending {
    pub fn kind(&self) -> &'static str {
        match self {
            Ending::Delivered { .. } => "delivered",
            Ending::Refused { .. } => "refused",
            Ending::Dropped { .. } => "dropped",
            Ending::EnvoyResponse { .. } => "envoy_response",
            Ending::Blackhole { .. } => "blackhole",
            Ending::Left { .. } => "left",
            Ending::Unresolved { .. } => "unresolved",
            Ending::Loop { .. } => "loop",
            Ending::Undetermined { .. } => "undetermined",
            Ending::RejectedConfig(_) => "rejected_config",
            Ending::Stalled { .. } => "stalled",
        }
    }

    /// The pod the path ends in (`None` for a loop, which has no single place).
    pub fn pod(&self) -> Option<&str> {
        match self {
            Ending::Delivered { pod, .. }
            | Ending::Refused { pod, .. }
            | Ending::Dropped { pod, .. }
            | Ending::EnvoyResponse { pod, .. }
            | Ending::Blackhole { pod, .. }
            | Ending::Left { pod, .. }
            | Ending::Unresolved { pod, .. }
            | Ending::Undetermined { pod, .. } => Some(pod),
            Ending::Loop { .. } => None,
            Ending::RejectedConfig(r) => Some(&r.pod),
            Ending::Stalled { pod, .. } => Some(pod),
        }
    }

    /// The cluster the ending names (a blackhole's, or the one a connection left through).
    pub fn cluster(&self) -> Option<&str> {
        match self {
            Ending::Blackhole { cluster, .. } => Some(cluster),
            Ending::Left { cluster, .. } => cluster.as_deref(),
            _ => None,
        }
    }
}
