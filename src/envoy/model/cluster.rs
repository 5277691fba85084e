//! Clusters, load assignments and endpoints (Envoy: source/common/upstream/upstream_impl.cc).

use std::net::IpAddr;

use serde::Serialize;

use super::{Origin, ResourceState};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DiscoveryType {
    Static,
    StrictDns,
    LogicalDns,
    Eds,
    OriginalDst,
    /// `cluster_type {name}` extension (e.g. `envoy.clusters.aggregate`) or an unknown type.
    Custom(String),
}

impl DiscoveryType {
    pub fn parse(s: &str) -> Self {
        match s {
            "STATIC" => DiscoveryType::Static,
            "STRICT_DNS" => DiscoveryType::StrictDns,
            "LOGICAL_DNS" => DiscoveryType::LogicalDns,
            "EDS" => DiscoveryType::Eds,
            "ORIGINAL_DST" => DiscoveryType::OriginalDst,
            other => DiscoveryType::Custom(other.to_string()),
        }
    }
    pub fn label(&self) -> &str {
        match self {
            DiscoveryType::Static => "STATIC",
            DiscoveryType::StrictDns => "STRICT_DNS",
            DiscoveryType::LogicalDns => "LOGICAL_DNS",
            DiscoveryType::Eds => "EDS",
            DiscoveryType::OriginalDst => "ORIGINAL_DST",
            DiscoveryType::Custom(s) => s,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub origin: Origin,
    pub name: String,
    pub state: ResourceState,
    pub discovery: DiscoveryType,
    pub lb_policy: Option<String>,
    /// `eds_cluster_config.service_name` (EDS only; defaults to the cluster name).
    pub eds_service_name: Option<String>,
    /// Inline `load_assignment` (or v2 `hosts`).
    pub load_assignment: Option<LoadAssignment>,
    pub upstream_bind: Option<UpstreamBind>,
    pub original_dst: OriginalDstConfig,
    /// Upstream transport socket name/type (TLS origination), if any.
    pub transport_socket: Option<String>,
    pub transport_socket_matches: usize,
}

impl Cluster {
    /// Istio's special clusters (Istio: pilot/pkg/networking/core/cluster_builder.go).
    pub fn istio_role(&self) -> Option<&'static str> {
        match self.name.as_str() {
            "PassthroughCluster" => Some("passthrough"),
            "BlackHoleCluster" => Some("blackhole"),
            "InboundPassthroughCluster"
            | "InboundPassthroughClusterIpv4"
            | "InboundPassthroughClusterIpv6" => Some("inbound-passthrough"),
            _ => None,
        }
    }
}

/// `upstream_bind_config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpstreamBind {
    /// Source addresses by family: the main one first, then `extra_source_addresses`.
    pub source_addresses: Vec<IpAddr>,
    pub freebind: bool,
}

impl UpstreamBind {
    /// The source address used for an upstream of `dst`'s family (Envoy picks the bind address
    /// of the same IP version when extra addresses are configured).
    pub fn for_destination(&self, dst: IpAddr) -> Option<IpAddr> {
        self.source_addresses
            .iter()
            .find(|a| a.is_ipv4() == dst.is_ipv4())
            .or_else(|| self.source_addresses.first())
            .copied()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct OriginalDstConfig {
    pub use_http_header: bool,
    /// Header carrying `IP:port` (default `x-envoy-original-dst-host`).
    pub http_header_name: Option<String>,
    pub upstream_port_override: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadAssignment {
    pub origin: Origin,
    pub cluster_name: String,
    pub localities: Vec<LocalityEndpoints>,
}

impl LoadAssignment {
    pub fn endpoint_count(&self) -> usize {
        self.localities.iter().map(|l| l.endpoints.len()).sum()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalityEndpoints {
    pub locality: Option<String>,
    pub priority: u32,
    pub weight: Option<u32>,
    pub endpoints: Vec<LbEndpoint>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbEndpoint {
    pub address: EndpointAddress,
    pub health: HealthStatus,
    pub weight: Option<u32>,
    pub hostname: Option<String>,
    /// Istio's `filter_metadata.istio.workload` (`name;namespace;canonical-name;revision;cluster`).
    pub istio_workload: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EndpointAddress {
    Ip {
        ip: IpAddr,
        port: u16,
    },
    /// A name to resolve (STRICT_DNS / LOGICAL_DNS hosts).
    Dns {
        host: String,
        port: u16,
    },
    Pipe {
        path: String,
    },
    Internal {
        server_listener_name: String,
    },
    Unknown,
}

impl std::fmt::Display for EndpointAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EndpointAddress::Ip { ip, port } => {
                write!(f, "{}", std::net::SocketAddr::new(*ip, *port))
            }
            EndpointAddress::Dns { host, port } => write!(f, "{host}:{port}"),
            EndpointAddress::Pipe { path } => write!(f, "pipe:{path}"),
            EndpointAddress::Internal { server_listener_name } => {
                write!(f, "internal:{server_listener_name}")
            }
            EndpointAddress::Unknown => f.write_str("?"),
        }
    }
}

/// EDS health (envoy/config/core/v3/health_check.proto `HealthStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthStatus {
    Unknown,
    Healthy,
    Unhealthy,
    Draining,
    Timeout,
    Degraded,
}

impl HealthStatus {
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("HEALTHY") => HealthStatus::Healthy,
            Some("UNHEALTHY") => HealthStatus::Unhealthy,
            Some("DRAINING") => HealthStatus::Draining,
            Some("TIMEOUT") => HealthStatus::Timeout,
            Some("DEGRADED") => HealthStatus::Degraded,
            _ => HealthStatus::Unknown,
        }
    }
    /// UNKNOWN and HEALTHY hosts take traffic.
    pub fn is_healthy(self) -> bool {
        matches!(self, HealthStatus::Unknown | HealthStatus::Healthy)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Unknown => "UNKNOWN",
            HealthStatus::Healthy => "HEALTHY",
            HealthStatus::Unhealthy => "UNHEALTHY",
            HealthStatus::Draining => "DRAINING",
            HealthStatus::Timeout => "TIMEOUT",
            HealthStatus::Degraded => "DEGRADED",
        }
    }
}
