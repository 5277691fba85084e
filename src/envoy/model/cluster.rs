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
    /// The transport sockets the cluster chooses from ([`UpstreamTransport`]).
    pub upstream_transport: UpstreamTransport,
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
    /// The locality's `filter_metadata["envoy.transport_socket_match"]`.
    pub socket_match_labels: Labels,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbEndpoint {
    pub address: EndpointAddress,
    pub health: HealthStatus,
    pub weight: Option<u32>,
    pub hostname: Option<String>,
    /// Istio's `filter_metadata.istio.workload` (`name;namespace;canonical-name;revision;cluster`).
    pub istio_workload: Option<String>,
    /// `filter_metadata["envoy.transport_socket_match"]` (e.g. Istio's `tlsMode: istio`).
    pub socket_match_labels: Labels,
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

/// Metadata labels as `(key, value)` with the value in canonical JSON (`"istio"`, `true`, `1`).
pub type Labels = Vec<(String, String)>;

/// A cluster's transport sockets: `transport_socket` (or v2 `tls_context`) and
/// `transport_socket_matches`, and whether the SNI comes from the request's host (`auto_sni`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct UpstreamTransport {
    /// `transport_socket`; `None` is Envoy's default, plaintext `raw_buffer`.
    pub default: Option<TransportSocket>,
    pub matches: Vec<TransportSocketMatch>,
    /// `upstream_http_protocol_options.auto_sni`.
    pub auto_sni: bool,
}

/// `config.core.v3.TransportSocket`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransportSocket {
    /// e.g. `envoy.transport_sockets.tls`, `envoy.transport_sockets.raw_buffer`.
    pub name: String,
    /// The TLS context when the socket is TLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsContext>,
}

/// What a trace needs of an `UpstreamTlsContext` or `DownstreamTlsContext`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct TlsContext {
    /// `UpstreamTlsContext` (origination) or `DownstreamTlsContext` (termination).
    pub upstream: bool,
    /// `sni` (upstream).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// `common_tls_context.alpn_protocols`.
    pub alpn: Vec<String>,
    /// The context presents a certificate (`tls_certificates`, SDS or a provider).
    pub certificate: bool,
    /// `require_client_certificate` (downstream).
    pub require_client_certificate: bool,
}

/// `Cluster.TransportSocketMatch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransportSocketMatch {
    pub name: String,
    /// `match`: every label must be in the endpoint's (or locality's) metadata with this value.
    pub labels: Labels,
    pub socket: TransportSocket,
}
