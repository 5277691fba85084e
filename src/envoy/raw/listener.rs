//! `config.listener.v3.Listener` (and its v2 spellings).

use serde::de::IgnoredAny;
use serde::Deserialize;

use super::filter::NetworkFilter;
use super::matcher::Matcher;
use super::{Address, CidrRange, Metadata, Scalar, Str, TypeOnly};

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Listener<'a> {
    #[serde(borrow)]
    pub name: Option<Str<'a>>,
    #[serde(borrow)]
    pub address: Option<Address<'a>>,
    #[serde(
        borrow,
        default,
        deserialize_with = "crate::envoy::raw::nullable",
        alias = "additionalAddresses"
    )]
    pub additional_addresses: Vec<AdditionalAddress<'a>>,
    #[serde(borrow, default, alias = "useOriginalDst")]
    pub use_original_dst: Scalar<'a>,
    #[serde(borrow, default, alias = "bindToPort")]
    pub bind_to_port: Scalar<'a>,
    #[serde(borrow, alias = "deprecatedV1")]
    pub deprecated_v1: Option<DeprecatedV1<'a>>,
    #[serde(borrow, default)]
    pub transparent: Scalar<'a>,
    #[serde(borrow, default, deserialize_with = "crate::envoy::raw::nullable", alias = "listenerFilters")]
    pub listener_filters: Vec<ListenerFilter<'a>>,
    #[serde(borrow, alias = "listenerFiltersTimeout")]
    pub listener_filters_timeout: Option<Str<'a>>,
    #[serde(borrow, default, alias = "continueOnListenerFiltersTimeout")]
    pub continue_on_listener_filters_timeout: Scalar<'a>,
    #[serde(borrow, default, deserialize_with = "crate::envoy::raw::nullable", alias = "filterChains")]
    pub filter_chains: Vec<FilterChain<'a>>,
    #[serde(borrow, alias = "defaultFilterChain")]
    pub default_filter_chain: Option<FilterChain<'a>>,
    #[serde(borrow, alias = "filterChainMatcher")]
    pub filter_chain_matcher: Option<Matcher<'a>>,
    #[serde(borrow)]
    pub metadata: Option<Metadata<'a>>,
    #[serde(borrow, alias = "trafficDirection")]
    pub traffic_direction: Option<Str<'a>>,
    #[serde(alias = "internalListener")]
    pub internal_listener: Option<IgnoredAny>,
    #[serde(alias = "apiListener")]
    pub api_listener: Option<IgnoredAny>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AdditionalAddress<'a> {
    #[serde(borrow)]
    pub address: Option<Address<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct DeprecatedV1<'a> {
    #[serde(borrow, default, alias = "bindToPort")]
    pub bind_to_port: Scalar<'a>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListenerFilter<'a> {
    #[serde(borrow)]
    pub name: Option<Str<'a>>,
    #[serde(borrow, alias = "typedConfig")]
    pub typed_config: Option<TypeOnly<'a>>,
    #[serde(alias = "config")]
    pub untyped_config: Option<IgnoredAny>,
    #[serde(borrow, alias = "filterDisabled")]
    pub filter_disabled: Option<Predicate<'a>>,
}

/// `ListenerFilterChainMatchPredicate`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Predicate<'a> {
    #[serde(borrow, alias = "orMatch")]
    pub or_match: Option<PredicateSet<'a>>,
    #[serde(borrow, alias = "andMatch")]
    pub and_match: Option<PredicateSet<'a>>,
    #[serde(borrow, alias = "notMatch")]
    pub not_match: Option<Box<Predicate<'a>>>,
    #[serde(borrow, default, alias = "anyMatch")]
    pub any_match: Scalar<'a>,
    #[serde(borrow, alias = "destinationPortRange")]
    pub destination_port_range: Option<PortRange<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PredicateSet<'a> {
    #[serde(borrow, default, deserialize_with = "crate::envoy::raw::nullable")]
    pub rules: Vec<Predicate<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PortRange<'a> {
    #[serde(borrow, default)]
    pub start: Scalar<'a>,
    #[serde(borrow, default)]
    pub end: Scalar<'a>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct FilterChain<'a> {
    #[serde(borrow)]
    pub name: Option<Str<'a>>,
    #[serde(borrow, alias = "filterChainMatch")]
    pub filter_chain_match: Option<FilterChainMatch<'a>>,
    #[serde(borrow, default, deserialize_with = "crate::envoy::raw::nullable")]
    pub filters: Vec<NetworkFilter<'a>>,
    #[serde(borrow, alias = "transportSocket")]
    pub transport_socket: Option<super::transport::TransportSocket<'a>>,
    #[serde(borrow, alias = "tlsContext")]
    pub tls_context: Option<super::transport::TlsContext<'a>>,
    #[serde(borrow)]
    pub metadata: Option<Metadata<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct FilterChainMatch<'a> {
    #[serde(borrow, default, alias = "destinationPort")]
    pub destination_port: Scalar<'a>,
    #[serde(borrow, default, deserialize_with = "crate::envoy::raw::nullable", alias = "prefixRanges")]
    pub prefix_ranges: Vec<CidrRange<'a>>,
    #[serde(
        borrow,
        default,
        deserialize_with = "crate::envoy::raw::nullable",
        alias = "directSourcePrefixRanges"
    )]
    pub direct_source_prefix_ranges: Vec<CidrRange<'a>>,
    #[serde(borrow, alias = "sourceType")]
    pub source_type: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "crate::envoy::raw::nullable", alias = "sourcePrefixRanges")]
    pub source_prefix_ranges: Vec<CidrRange<'a>>,
    #[serde(borrow, default, deserialize_with = "crate::envoy::raw::nullable", alias = "sourcePorts")]
    pub source_ports: Vec<Scalar<'a>>,
    #[serde(borrow, default, deserialize_with = "crate::envoy::raw::nullable", alias = "serverNames")]
    pub server_names: Vec<Str<'a>>,
    #[serde(borrow, alias = "transportProtocol")]
    pub transport_protocol: Option<Str<'a>>,
    #[serde(
        borrow,
        default,
        deserialize_with = "crate::envoy::raw::nullable",
        alias = "applicationProtocols"
    )]
    pub application_protocols: Vec<Str<'a>>,
    #[serde(alias = "addressSuffix")]
    pub address_suffix: Option<IgnoredAny>,
    #[serde(alias = "suffixLen")]
    pub suffix_len: Option<IgnoredAny>,
}
