//! `config.cluster.v3.Cluster` and `config.endpoint.v3.ClusterLoadAssignment`.

use serde::Deserialize;

use super::transport::{
    ProtocolOptions, TlsContext, TransportSocket, TransportSocketMatch, UpstreamHttpProtocolOptions,
};
use super::{Address, Metadata, NamedTyped, Scalar, SocketAddress, Str};

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Cluster<'a> {
    #[serde(borrow)]
    pub name: Option<Str<'a>>,
    #[serde(borrow, rename = "type")]
    pub discovery_type: Option<Str<'a>>,
    #[serde(borrow, alias = "clusterType")]
    pub cluster_type: Option<NamedTyped<'a>>,
    #[serde(borrow, alias = "lbPolicy")]
    pub lb_policy: Option<Str<'a>>,
    #[serde(borrow, alias = "edsClusterConfig")]
    pub eds_cluster_config: Option<EdsClusterConfig<'a>>,
    #[serde(borrow, alias = "loadAssignment")]
    pub load_assignment: Option<LoadAssignment<'a>>,
    /// v2 `hosts` (before `load_assignment`).
    #[serde(borrow, default, deserialize_with = "crate::envoy::raw::nullable")]
    pub hosts: Vec<Address<'a>>,
    #[serde(borrow, alias = "upstreamBindConfig")]
    pub upstream_bind_config: Option<BindConfig<'a>>,
    #[serde(borrow, alias = "originalDstLbConfig")]
    pub original_dst_lb_config: Option<OriginalDstLbConfig<'a>>,
    #[serde(borrow)]
    pub metadata: Option<Metadata<'a>>,
    #[serde(borrow, alias = "transportSocket")]
    pub transport_socket: Option<TransportSocket<'a>>,
    #[serde(borrow, alias = "tlsContext")]
    pub tls_context: Option<TlsContext<'a>>,
    #[serde(
        borrow,
        default,
        deserialize_with = "crate::envoy::raw::nullable",
        alias = "transportSocketMatches"
    )]
    pub transport_socket_matches: Vec<TransportSocketMatch<'a>>,
    #[serde(borrow, alias = "upstreamHttpProtocolOptions")]
    pub upstream_http_protocol_options: Option<UpstreamHttpProtocolOptions<'a>>,
    #[serde(borrow, default, alias = "typedExtensionProtocolOptions")]
    pub typed_extension_protocol_options: Option<std::collections::BTreeMap<String, ProtocolOptions<'a>>>,
    #[serde(borrow, alias = "dnsLookupFamily")]
    pub dns_lookup_family: Option<Str<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct EdsClusterConfig<'a> {
    #[serde(borrow, alias = "serviceName")]
    pub service_name: Option<Str<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct BindConfig<'a> {
    #[serde(borrow, alias = "sourceAddress")]
    pub source_address: Option<SocketAddress<'a>>,
    #[serde(
        borrow,
        default,
        deserialize_with = "crate::envoy::raw::nullable",
        alias = "extraSourceAddresses"
    )]
    pub extra_source_addresses: Vec<ExtraSourceAddress<'a>>,
    #[serde(
        borrow,
        default,
        deserialize_with = "crate::envoy::raw::nullable",
        alias = "additionalSourceAddresses"
    )]
    pub additional_source_addresses: Vec<SocketAddress<'a>>,
    #[serde(borrow, default)]
    pub freebind: Scalar<'a>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ExtraSourceAddress<'a> {
    #[serde(borrow)]
    pub address: Option<SocketAddress<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct OriginalDstLbConfig<'a> {
    #[serde(borrow, default, alias = "useHttpHeader")]
    pub use_http_header: Scalar<'a>,
    #[serde(borrow, alias = "httpHeaderName")]
    pub http_header_name: Option<Str<'a>>,
    #[serde(borrow, default, alias = "upstreamPortOverride")]
    pub upstream_port_override: Scalar<'a>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct LoadAssignment<'a> {
    #[serde(borrow, alias = "clusterName")]
    pub cluster_name: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "crate::envoy::raw::nullable")]
    pub endpoints: Vec<LocalityEndpoints<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct LocalityEndpoints<'a> {
    #[serde(borrow)]
    pub locality: Option<Locality<'a>>,
    #[serde(borrow, default, deserialize_with = "crate::envoy::raw::nullable", alias = "lbEndpoints")]
    pub lb_endpoints: Vec<LbEndpoint<'a>>,
    #[serde(borrow, default, alias = "loadBalancingWeight")]
    pub load_balancing_weight: Scalar<'a>,
    #[serde(borrow, default)]
    pub priority: Scalar<'a>,
    #[serde(borrow)]
    pub metadata: Option<Metadata<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Locality<'a> {
    #[serde(borrow)]
    pub region: Option<Str<'a>>,
    #[serde(borrow)]
    pub zone: Option<Str<'a>>,
    #[serde(borrow, alias = "subZone")]
    pub sub_zone: Option<Str<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct LbEndpoint<'a> {
    #[serde(borrow)]
    pub endpoint: Option<Endpoint<'a>>,
    #[serde(borrow, alias = "healthStatus")]
    pub health_status: Option<Str<'a>>,
    #[serde(borrow, default, alias = "loadBalancingWeight")]
    pub load_balancing_weight: Scalar<'a>,
    #[serde(borrow)]
    pub metadata: Option<Metadata<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Endpoint<'a> {
    #[serde(borrow)]
    pub address: Option<Address<'a>>,
    #[serde(borrow)]
    pub hostname: Option<Str<'a>>,
}
