//! Listeners, listener filters, filter chains and network filters.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use serde::Serialize;

use super::{Origin, ResourceState, RouteConfigEntry};

#[derive(Debug, Clone)]
pub struct Listener {
    pub origin: Origin,
    pub name: String,
    pub state: ResourceState,
    pub address: ListenerAddress,
    pub additional_addresses: Vec<SocketAddr>,
    /// `bind_to_port` (default true; v2 `deprecated_v1.bind_to_port`).
    pub bind_to_port: bool,
    pub use_original_dst: bool,
    pub transparent: bool,
    pub listener_filters: Vec<ListenerFilter>,
    pub continue_on_listener_filters_timeout: bool,
    pub listener_filters_timeout: Option<String>,
    pub filter_chains: Vec<FilterChain>,
    pub default_filter_chain: Option<FilterChain>,
    pub filter_chain_matcher: Option<Matcher>,
    pub traffic_direction: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenerAddress {
    Socket(SocketAddr),
    Pipe(String),
    /// `internal_listener` (no socket; reached only through internal addresses).
    Internal,
    None,
}

impl ListenerAddress {
    pub fn socket(&self) -> Option<SocketAddr> {
        match self {
            ListenerAddress::Socket(s) => Some(*s),
            _ => None,
        }
    }
}

impl std::fmt::Display for ListenerAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenerAddress::Socket(s) => write!(f, "{s}"),
            ListenerAddress::Pipe(p) => write!(f, "pipe:{p}"),
            ListenerAddress::Internal => f.write_str("internal"),
            ListenerAddress::None => f.write_str("-"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ListenerFilterKind {
    OriginalDst,
    OriginalSrc,
    TlsInspector,
    HttpInspector,
    ProxyProtocol,
    Other,
}

impl ListenerFilterKind {
    /// Old (`envoy.listener.*`) and new (`envoy.filters.listener.*`) names and type URLs.
    pub fn classify(name: &str, type_url: Option<&str>) -> Self {
        let t = type_url.unwrap_or("");
        let has = |n: &str, ty: &str| {
            name == format!("envoy.filters.listener.{n}")
                || name == format!("envoy.listener.{n}")
                || t.contains(ty)
        };
        if has("original_dst", ".original_dst.") {
            ListenerFilterKind::OriginalDst
        } else if has("original_src", ".original_src.") {
            ListenerFilterKind::OriginalSrc
        } else if has("tls_inspector", ".tls_inspector.") {
            ListenerFilterKind::TlsInspector
        } else if has("http_inspector", ".http_inspector.") {
            ListenerFilterKind::HttpInspector
        } else if has("proxy_protocol", ".proxy_protocol.") {
            ListenerFilterKind::ProxyProtocol
        } else {
            ListenerFilterKind::Other
        }
    }
}

#[derive(Debug, Clone)]
pub struct ListenerFilter {
    pub name: String,
    pub type_url: Option<String>,
    pub kind: ListenerFilterKind,
    pub disabled: Option<DisablePredicate>,
}

/// `ListenerFilterChainMatchPredicate` (Envoy: source/common/listener_manager/active_stream_listener_base.cc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisablePredicate {
    Any,
    /// `[start, end)` on the (restored) destination port.
    DestinationPortRange {
        start: u32,
        end: u32,
    },
    Or(Vec<DisablePredicate>),
    And(Vec<DisablePredicate>),
    Not(Box<DisablePredicate>),
}

impl DisablePredicate {
    pub fn matches(&self, dst_port: u16) -> bool {
        match self {
            DisablePredicate::Any => true,
            DisablePredicate::DestinationPortRange { start, end } => {
                (*start..*end).contains(&u32::from(dst_port))
            }
            DisablePredicate::Or(v) => v.iter().any(|p| p.matches(dst_port)),
            DisablePredicate::And(v) => v.iter().all(|p| p.matches(dst_port)),
            DisablePredicate::Not(p) => !p.matches(dst_port),
        }
    }
}

#[derive(Debug, Clone)]
pub struct FilterChain {
    pub origin: Origin,
    pub name: Option<String>,
    pub filter_chain_match: FilterChainMatch,
    pub filters: Vec<NetworkFilter>,
    /// The downstream transport socket (e.g. `envoy.transport_sockets.tls`, or `tls_context`).
    pub transport_socket: Option<String>,
    /// The `DownstreamTlsContext` when that socket terminates TLS.
    pub downstream_tls: Option<super::TlsContext>,
}

impl FilterChain {
    /// The terminal network filter meshpath models, if any.
    pub fn terminal(&self) -> Option<&NetworkFilter> {
        self.filters.iter().find(|f| !matches!(f.kind, NetworkFilterKind::Other))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SourceType {
    #[default]
    Any,
    SameIpOrLoopback,
    External,
}

/// `FilterChainMatch` (Envoy: source/common/listener_manager/filter_chain_manager_impl.cc).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct FilterChainMatch {
    pub destination_port: Option<u16>,
    pub prefix_ranges: Vec<IpNet>,
    pub direct_source_prefix_ranges: Vec<IpNet>,
    pub source_type: SourceType,
    pub source_prefix_ranges: Vec<IpNet>,
    pub source_ports: Vec<u16>,
    pub server_names: Vec<String>,
    pub transport_protocol: Option<String>,
    pub application_protocols: Vec<String>,
}

impl FilterChainMatch {
    pub fn is_empty(&self) -> bool {
        *self == FilterChainMatch::default()
    }
}

#[derive(Debug, Clone)]
pub struct NetworkFilter {
    pub name: String,
    pub type_url: Option<String>,
    pub kind: NetworkFilterKind,
}

#[derive(Debug, Clone)]
pub enum NetworkFilterKind {
    TcpProxy(TcpProxy),
    HttpConnectionManager(HttpConnectionManager),
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TcpProxy {
    pub stat_prefix: Option<String>,
    pub cluster: Option<String>,
    pub weighted_clusters: Vec<WeightedCluster>,
    /// Envoy v1 route table (`deprecated_v1.routes` / v1 `route_config.routes`).
    pub v1_routes: Vec<TcpV1Route>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WeightedCluster {
    pub name: String,
    pub weight: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TcpV1Route {
    pub cluster: String,
    pub destination_ip_list: Vec<IpNet>,
    pub destination_ports: Option<String>,
    pub source_ip_list: Vec<IpNet>,
    pub source_ports: Option<String>,
}

#[derive(Debug, Clone)]
pub struct HttpConnectionManager {
    pub stat_prefix: Option<String>,
    pub route_source: RouteSource,
    pub http_filters: Vec<String>,
    pub strip_matching_host_port: bool,
    pub strip_any_host_port: bool,
}

#[derive(Debug, Clone)]
pub enum RouteSource {
    Rds(String),
    Inline(Box<RouteConfigEntry>),
    Scoped,
    Missing,
}

/// `xds.type.matcher.v3.Matcher` for `filter_chain_matcher` (Envoy: source/common/listener_manager/filter_chain_manager_impl.cc).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Matcher {
    pub kind: MatcherKind,
    pub on_no_match: Option<Box<OnMatch>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum MatcherKind {
    #[default]
    Empty,
    List(Vec<(MatchPredicate, OnMatch)>),
    Exact {
        input: MatchInput,
        map: Vec<(String, OnMatch)>,
    },
    Prefix {
        input: MatchInput,
        map: Vec<(String, OnMatch)>,
    },
    Ip {
        input: MatchInput,
        ranges: Vec<IpRangeMatcher>,
    },
    Unsupported(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpRangeMatcher {
    pub ranges: Vec<IpNet>,
    pub on_match: OnMatch,
    pub exclusive: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnMatch {
    /// The action: a filter chain name (`google.protobuf.StringValue`).
    Action(String),
    Matcher(Box<Matcher>),
    Unsupported(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchPredicate {
    Single { input: MatchInput, matcher: StringMatch },
    Or(Vec<MatchPredicate>),
    And(Vec<MatchPredicate>),
    Not(Box<MatchPredicate>),
    Unsupported(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StringMatch {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    Regex(String),
}

/// `envoy.matching.inputs.*` network inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchInput {
    DestinationIp,
    DestinationPort,
    SourceIp,
    SourcePort,
    DirectSourceIp,
    SourceType,
    ServerName,
    TransportProtocol,
    ApplicationProtocol,
    Unsupported(String),
}

impl MatchInput {
    pub fn from_type_url(url: &str) -> Self {
        let last = url.rsplit('.').next().unwrap_or(url);
        match last {
            "DestinationIPInput" => MatchInput::DestinationIp,
            "DestinationPortInput" => MatchInput::DestinationPort,
            "SourceIPInput" => MatchInput::SourceIp,
            "SourcePortInput" => MatchInput::SourcePort,
            "DirectSourceIPInput" => MatchInput::DirectSourceIp,
            "SourceTypeInput" => MatchInput::SourceType,
            "ServerNameInput" => MatchInput::ServerName,
            "TransportProtocolInput" => MatchInput::TransportProtocol,
            "ApplicationProtocolInput" => MatchInput::ApplicationProtocol,
            _ => MatchInput::Unsupported(url.to_string()),
        }
    }
}

/// Address helpers shared by matching.
pub fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}
