//! A host's upstream transport socket and the TLS a filter chain terminates.
//!
//! Socket choice: source/common/upstream/transport_socket_match_impl.cc,
//! `TransportSocketMatcherImpl::resolve`: every `transport_socket_matches` entry in order against
//! the endpoint's `filter_metadata["envoy.transport_socket_match"]`, then every entry against the
//! locality's, then the cluster's `transport_socket` (the "default" match); labels are compared by
//! `Config::Metadata::metadataLabelMatch` (source/common/config/metadata.cc): each label must be
//! present with an equal value, so an empty `match` takes every host.

use super::super::transport::{resolve, ClientHello};
use super::super::*;
use super::*;

const UP_TLS: &str = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";

fn tls_socket(sni: &str, alpn: &str) -> String {
    format!(
        r#"{{"name": "envoy.transport_sockets.tls", "typed_config": {{"@type": "{UP_TLS}", "sni": "{sni}",
  "common_tls_context": {{"alpn_protocols": [{alpn}], "tls_certificate_sds_secret_configs": [{{"name": "default"}}]}}}}}}"#
    )
}

/// Istio's auto-mTLS socket matches (pilot/pkg/networking/core/cluster_tls.go), in the shape of
/// the corpus dump istio-1.10.0_sidecar_camelCase_admin-v3.json.
fn istio_matches() -> String {
    format!(
        r#", "transport_socket_matches": [
  {{"name": "tlsMode-istio", "match": {{"tlsMode": "istio"}}, "transport_socket": {}}},
  {{"name": "tlsMode-disabled", "match": {{}}, "transport_socket": {{"name": "envoy.transport_sockets.raw_buffer"}}}}]"#,
        tls_socket(
            "outbound_.9080_._.reviews.default.svc.cluster.local",
            r#""istio-peer-exchange", "istio""#
        )
    )
}

/// A STATIC cluster with one locality of hosts `(ip, endpoint metadata labels)`.
fn cluster_with(name: &str, body: &str, locality_labels: &str, hosts: &[(&str, &str)]) -> String {
    let eps: Vec<String> = hosts
        .iter()
        .map(|(ip, labels)| {
            format!(
                r#"{{"endpoint": {{"address": {{"socket_address": {{"address": "{ip}", "port_value": 9080}}}}}},
  "metadata": {{"filter_metadata": {{"envoy.transport_socket_match": {labels}}}}}}}"#
            )
        })
        .collect();
    cluster(
        name,
        &format!(
            r#", "type": "STATIC" {body}, "load_assignment": {{"cluster_name": "{name}", "endpoints": [{{
  "metadata": {{"filter_metadata": {{"envoy.transport_socket_match": {locality_labels}}}}},
  "lb_endpoints": [{}]}}]}}"#,
            eps.join(",")
        ),
    )
}

fn transports(cfg: &EnvoyConfig, cluster: &str) -> Vec<transport::TransportPick> {
    let ctx = UpstreamContext::default();
    match upstream::choose(cfg, cluster, &ctx, &NameTable::new()) {
        Upstream::Endpoint { transports, .. } => transports,
        other => panic!("{other:?}"),
    }
}

#[test]
fn endpoint_metadata_picks_the_first_matching_entry_else_the_empty_match() {
    let c = cluster_with(
        "c",
        &istio_matches(),
        "{}",
        &[("10.0.0.1", r#"{"tlsMode": "istio"}"#), ("10.0.0.2", "{}")],
    );
    let cfg = dump("", &c, "");
    let t = transports(&cfg, "c");
    // A host with a sidecar: `tlsMode-istio`, TLS with Istio's SNI and ALPN.
    assert_eq!(t[0].socket_match.as_deref(), Some("tlsMode-istio"));
    assert_eq!(t[0].matched_on, Some("endpoint"));
    let hello = t[0].client_hello(Some("reviews:9080")).expect("TLS");
    assert_eq!(
        hello,
        ClientHello {
            sni: Some("outbound_.9080_._.reviews.default.svc.cluster.local".into()),
            sni_from: "sni",
            alpn: vec!["istio-peer-exchange".into(), "istio".into()],
            certificate: true,
        }
    );
    // A host without: `tlsMode-disabled` (an empty `match`), plaintext raw_buffer.
    assert_eq!(t[1].socket_match.as_deref(), Some("tlsMode-disabled"));
    assert!(t[1].client_hello(None).is_none());
}

#[test]
fn locality_metadata_counts_only_after_no_entry_matched_the_endpoint() {
    // Endpoint labels are tried against every entry before the locality's: the locality says
    // `istio`, but the endpoint's `{}` already matches `tlsMode-disabled`.
    let c = cluster_with("c", &istio_matches(), r#"{"tlsMode": "istio"}"#, &[("10.0.0.1", "{}")]);
    assert_eq!(transports(&dump("", &c, ""), "c")[0].socket_match.as_deref(), Some("tlsMode-disabled"));
    // Without an empty match, an endpoint that matches nothing falls to its locality.
    let only_istio = format!(
        r#", "transport_socket_matches": [{{"name": "tlsMode-istio", "match": {{"tlsMode": "istio"}}, "transport_socket": {}}}]"#,
        tls_socket("s", r#""istio""#)
    );
    let c = cluster_with("c", &only_istio, r#"{"tlsMode": "istio"}"#, &[("10.0.0.1", r#"{"other": 1}"#)]);
    let t = &transports(&dump("", &c, ""), "c")[0];
    assert_eq!((t.socket_match.as_deref(), t.matched_on), (Some("tlsMode-istio"), Some("locality")));
}

#[test]
fn no_match_uses_the_cluster_transport_socket_and_numbers_compare_as_doubles() {
    let body = format!(
        r#", "transport_socket": {}, "transport_socket_matches": [{{"name": "v1", "match": {{"version": 1}}, "transport_socket": {{"name": "envoy.transport_sockets.raw_buffer"}}}}]"#,
        tls_socket("default.example", r#""h2""#)
    );
    let c = cluster_with(
        "c",
        &body,
        "{}",
        &[("10.0.0.1", r#"{"version": 1.0}"#), ("10.0.0.2", r#"{"version": 2}"#)],
    );
    let t = transports(&dump("", &c, ""), "c");
    // protobuf Values hold numbers as doubles: 1.0 is 1 (ValueUtil::equal).
    assert_eq!(t[0].socket_match.as_deref(), Some("v1"));
    assert!(t[0].client_hello(None).is_none());
    // The default match is the cluster's transport_socket.
    assert_eq!(t[1].socket_match, None);
    let hello = t[1].client_hello(None).expect("TLS");
    assert_eq!((hello.sni.as_deref(), hello.alpn.clone()), (Some("default.example"), vec!["h2".to_string()]));
}

/// `auto_sni` (api/envoy/config/core/v3/protocol.proto, UpstreamHttpProtocolOptions): the
/// router sets the server name from the host header, without its port, unless it is an IP
/// address (source/common/router/router.cc, `Filter::decodeHeaders`).
#[test]
fn auto_sni_takes_the_request_host_but_not_an_ip_address() {
    let body = format!(
        r#", "transport_socket": {}, "typed_extension_protocol_options": {{"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {{
  "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
  "upstream_http_protocol_options": {{"auto_sni": true}}}}}}"#,
        tls_socket("configured.example", "")
    );
    let c = cluster_with("c", &body, "{}", &[("10.0.0.1", "{}")]);
    let t = &transports(&dump("", &c, ""), "c")[0];
    let hello = t.client_hello(Some("api.example.com:8443")).expect("TLS");
    assert_eq!((hello.sni.as_deref(), hello.sni_from), (Some("api.example.com"), "auto_sni"));
    let by_ip = t.client_hello(Some("10.1.2.3:443")).expect("TLS");
    assert_eq!((by_ip.sni.as_deref(), by_ip.sni_from), (Some("configured.example"), "sni"));
    // A TCP proxy has no request: the configured SNI.
    assert_eq!(t.client_hello(None).and_then(|h| h.sni).as_deref(), Some("configured.example"));
}

#[test]
fn resolve_without_matches_or_socket_is_plaintext() {
    let t = resolve(&Default::default(), &Vec::new(), &Vec::new());
    assert_eq!((t.socket_match, t.socket), (None, None));
}

/// A chain whose transport socket terminates TLS: with a ClientHello its filters run (the HCM
/// reads the request inside); without one the handshake fails and Envoy closes
/// (source/common/tls/ssl_socket.cc, `SslSocket::doHandshake` → close on failure).
#[test]
fn a_tls_chain_terminates_a_client_hello_and_closes_plaintext() {
    let down = r#"{"name": "envoy.transport_sockets.tls", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
  "common_tls_context": {"alpn_protocols": ["h2", "http/1.1"]}, "require_client_certificate": true}}"#;
    let l = listener(
        "in",
        "0.0.0.0",
        15006,
        &format!(
            r#", "listener_filters": [{{"name": "envoy.filters.listener.tls_inspector"}}], "filter_chains": [{{"name": "mtls", "filters": [{}], "transport_socket": {down}}}]"#,
            tcp("app")
        ),
    );
    let cfg = dump(&l, &static_cluster("app", "127.0.0.1", 9080), "");
    let mut q = query("10.0.0.5:15006", "10.0.0.5:9080");
    q.client = ClientBytes::Tls { sni: Some("outbound_.9080_._.x".into()), alpn: vec!["istio".into()] };
    let t = evaluate(&cfg, &q);
    let term = t.tls_termination.as_ref().expect("terminated");
    assert_eq!((term.chain.name.as_str(), term.require_client_certificate), ("mtls", true));
    assert!(matches!(t.outcome, Outcome::Forwarded { .. }), "{:?}", t.outcome);
    let t = evaluate(&cfg, &query("10.0.0.5:15006", "10.0.0.5:9080"));
    assert!(t.tls_termination.is_none());
    assert!(
        matches!(&t.outcome, Outcome::Closed { flag: None, details } if details.contains("TLS handshake"))
    );
}
