//! `config.core.v3.TransportSocket` and the TLS contexts it carries
//! (api/envoy/extensions/transport_sockets/tls/v3/tls.proto: `UpstreamTlsContext`,
//! `DownstreamTlsContext`, `CommonTlsContext`), and a cluster's `transport_socket_matches`.

use std::collections::BTreeMap;

use serde::de::IgnoredAny;
use serde::Deserialize;

use super::{Scalar, Str};

/// `name` + `typed_config` (v3) or untyped `config` (v2).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TransportSocket<'a> {
    #[serde(borrow)]
    pub name: Option<Str<'a>>,
    #[serde(borrow, alias = "typedConfig")]
    pub typed_config: Option<TlsContext<'a>>,
    #[serde(borrow)]
    pub config: Option<TlsContext<'a>>,
}

/// The fields of `UpstreamTlsContext` and `DownstreamTlsContext` a trace needs (the v2
/// cluster's and filter chain's `tls_context` are these messages too).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TlsContext<'a> {
    #[serde(rename = "@type", borrow)]
    pub type_url: Option<Str<'a>>,
    /// Upstream only.
    #[serde(borrow)]
    pub sni: Option<Str<'a>>,
    #[serde(borrow, alias = "commonTlsContext")]
    pub common_tls_context: Option<CommonTlsContext<'a>>,
    /// Downstream only.
    #[serde(borrow, default, alias = "requireClientCertificate")]
    pub require_client_certificate: Scalar<'a>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct CommonTlsContext<'a> {
    #[serde(borrow, default, deserialize_with = "crate::envoy::raw::nullable", alias = "alpnProtocols")]
    pub alpn_protocols: Vec<Str<'a>>,
    #[serde(default, deserialize_with = "crate::envoy::raw::nullable", alias = "tlsCertificates")]
    pub tls_certificates: Vec<IgnoredAny>,
    #[serde(
        default,
        deserialize_with = "crate::envoy::raw::nullable",
        alias = "tlsCertificateSdsSecretConfigs"
    )]
    pub tls_certificate_sds_secret_configs: Vec<IgnoredAny>,
    #[serde(alias = "tlsCertificateProviderInstance")]
    pub tls_certificate_provider_instance: Option<IgnoredAny>,
}

impl CommonTlsContext<'_> {
    /// Whether the context presents a certificate of its own.
    pub fn has_certificate(&self) -> bool {
        !self.tls_certificates.is_empty()
            || !self.tls_certificate_sds_secret_configs.is_empty()
            || self.tls_certificate_provider_instance.is_some()
    }
}

/// `Cluster.TransportSocketMatch`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TransportSocketMatch<'a> {
    #[serde(borrow)]
    pub name: Option<Str<'a>>,
    /// A `google.protobuf.Struct` of labels.
    #[serde(rename = "match", default)]
    pub labels: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(borrow, alias = "transportSocket")]
    pub transport_socket: Option<TransportSocket<'a>>,
}

/// `upstream_http_protocol_options` (in a cluster, or in its
/// `envoy.extensions.upstreams.http.v3.HttpProtocolOptions`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct UpstreamHttpProtocolOptions<'a> {
    #[serde(borrow, default, alias = "autoSni")]
    pub auto_sni: Scalar<'a>,
}

/// One value of `typed_extension_protocol_options`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProtocolOptions<'a> {
    #[serde(borrow, alias = "upstreamHttpProtocolOptions")]
    pub upstream_http_protocol_options: Option<UpstreamHttpProtocolOptions<'a>>,
}
