//! Transport sockets and TLS contexts (api/envoy/extensions/transport_sockets/tls/v3/tls.proto),
//! a cluster's `transport_socket_matches` and the metadata labels they test.

use std::collections::BTreeMap;

use super::super::model::{Labels, TlsContext, TransportSocket, TransportSocketMatch, UpstreamTransport};
use super::super::raw::cluster as raw_cluster;
use super::super::raw::transport as raw;
use super::super::raw::Metadata;
use super::owned;

/// A transport socket: TLS when its name or its config's `@type` says so
/// (`envoy.transport_sockets.tls`, `tls`, `…tls.v3.UpstreamTlsContext`/`DownstreamTlsContext`).
pub fn socket(ts: &raw::TransportSocket<'_>, upstream: bool) -> TransportSocket {
    let config = ts.typed_config.as_ref().or(ts.config.as_ref());
    let type_url = config.and_then(|c| owned(&c.type_url));
    let name = owned(&ts.name)
        .or_else(|| type_url.clone())
        .unwrap_or_else(|| "envoy.transport_sockets.raw_buffer".into());
    let is_tls = matches!(name.as_str(), "envoy.transport_sockets.tls" | "tls")
        || type_url.as_deref().is_some_and(|t| t.ends_with("TlsContext"));
    let tls = match config {
        Some(c) if is_tls => Some(tls_context(c, upstream)),
        None if is_tls => Some(TlsContext { upstream, ..TlsContext::default() }),
        _ => None,
    };
    TransportSocket { name, tls }
}

pub fn tls_context(c: &raw::TlsContext<'_>, upstream: bool) -> TlsContext {
    let common = c.common_tls_context.as_ref();
    TlsContext {
        upstream,
        sni: owned(&c.sni).filter(|s| !s.is_empty()),
        alpn: common
            .map(|c| c.alpn_protocols.iter().map(|a| a.as_str().to_string()).collect())
            .unwrap_or_default(),
        certificate: common.is_some_and(|c| c.has_certificate()),
        require_client_certificate: c.require_client_certificate.as_bool().ok().flatten().unwrap_or(false),
    }
}

/// The cluster's transport sockets and `auto_sni` (from `upstream_http_protocol_options` or
/// `typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]`).
pub fn upstream_transport(c: &raw_cluster::Cluster<'_>) -> UpstreamTransport {
    let default = match (&c.transport_socket, &c.tls_context) {
        (Some(ts), _) => Some(socket(ts, true)),
        (None, Some(t)) => {
            Some(TransportSocket { name: "tls_context".into(), tls: Some(tls_context(t, true)) })
        }
        (None, None) => None,
    };
    let matches =
        c.transport_socket_matches
            .iter()
            .map(|m| TransportSocketMatch {
                name: owned(&m.name).unwrap_or_default(),
                labels: m.labels.as_ref().map(labels).unwrap_or_default(),
                socket: m.transport_socket.as_ref().map(|t| socket(t, true)).unwrap_or(TransportSocket {
                    name: "envoy.transport_sockets.raw_buffer".into(),
                    tls: None,
                }),
            })
            .collect();
    let auto =
        |o: &raw::UpstreamHttpProtocolOptions<'_>| o.auto_sni.as_bool().ok().flatten().unwrap_or(false);
    let auto_sni = c.upstream_http_protocol_options.as_ref().is_some_and(auto)
        || c.typed_extension_protocol_options
            .as_ref()
            .is_some_and(|m| m.values().any(|o| o.upstream_http_protocol_options.as_ref().is_some_and(auto)));
    UpstreamTransport { default, matches, auto_sni }
}

/// `filter_metadata["envoy.transport_socket_match"]` of an endpoint or a locality.
pub fn socket_match_labels(m: Option<&Metadata<'_>>) -> Labels {
    m.and_then(|m| m.filter_metadata.as_ref()?.transport_socket_match.as_ref())
        .map(labels)
        .unwrap_or_default()
}

fn labels(m: &BTreeMap<String, serde_json::Value>) -> Labels {
    m.iter().map(|(k, v)| (k.clone(), canonical(v))).collect()
}

/// A `google.protobuf.Value` as comparable text: numbers are doubles in protobuf, so `1` and
/// `1.0` are the same value (Envoy compares with `ValueUtil::equal`).
fn canonical(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Number(n) => n.as_f64().map(|f| format!("{f}")).unwrap_or_else(|| n.to_string()),
        other => other.to_string(),
    }
}
