//! Mutual TLS between sidecars, end to end on the mTLS fixtures of tests/fixtures/mesh
//! (README.md there, "Mutual TLS"): Istio-shaped dumps with auto mTLS on the outbound clusters
//! (`transport_socket_matches` `tlsMode-istio` / `tlsMode-disabled`, endpoints labelled
//! `tlsMode: istio`) and PERMISSIVE or STRICT inbound chains. Each test states the ending it
//! expects and where in Envoy that comes from.

mod common;

use common::{dump, meshpath, RULES_1_25};
use serde_json::Value;

const REVIEWS_IP: &str = "10.244.1.7";

fn productpage(envoy: &str, rest: &[&str]) -> Vec<String> {
    common::productpage("trace", RULES_1_25, envoy, "tcp:0.0.0.0:9080", rest)
}

/// The reviews pod as a peer, with its app listening on 9080 (`listen`) or not.
fn reviews_peer(envoy: &str, listen: bool) -> String {
    let app = if listen { ",tcp:0.0.0.0:9080" } else { "" };
    format!("reviews={REVIEWS_IP},{RULES_1_25},{}{app}", dump(envoy))
}

/// productpage's app calls reviews (ClusterIP 10.96.0.20:9080, Host `reviews:9080`).
fn app_to_reviews(client: &str, peer: &str) -> Vec<String> {
    productpage(
        client,
        &["--peer", peer, "--dst", "10.96.0.20:9080", "--host", "reviews:9080", "--path", "/reviews/0"],
    )
}

fn run(args: &[String], format: &str) -> String {
    let out = meshpath().args(args).args(["--format", format]).output().expect("runs");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

fn single_path(args: &[String]) -> Value {
    let v: Value = serde_json::from_str(&run(args, "json")).expect("JSON");
    let paths = v["paths"].as_array().expect("paths");
    assert_eq!(paths.len(), 1, "{v}");
    paths[0].clone()
}

fn steps<'a>(path: &'a Value, kind: &str) -> Vec<&'a Value> {
    path["steps"].as_array().expect("steps").iter().filter(|s| s["detail"]["step"] == kind).collect()
}

fn envoy_objects(path: &Value, field: &str) -> Vec<String> {
    path["envoy"]
        .as_array()
        .expect("envoy")
        .iter()
        .map(|e| e[field].as_str().unwrap_or("").to_string())
        .collect()
}

/// Two sidecars with mTLS: productpage's Envoy picks `tlsMode-istio` for the reviews endpoint
/// (its metadata says `tlsMode: istio`; TransportSocketMatcherImpl::resolve in
/// source/common/upstream/transport_socket_match_impl.cc), sends a ClientHello with the
/// cluster's `sni` and ALPN `istio-peer-exchange,istio`; reviews' tls_inspector reads them
/// (source/extensions/filters/listener/tls_inspector/tls_inspector.cc sets transport `tls`,
/// the server name and the ALPN list), so filter-chain matching takes the port's `tls` chain
/// listing `istio-peer-exchange` (source/common/listener_manager/filter_chain_manager_impl.cc,
/// transport protocol then application protocols), whose DownstreamTlsContext terminates
/// TLS; its HTTP connection manager routes the request inside, to the app.
#[test]
fn mtls_between_sidecars_lands_on_the_peers_mtls_chain() {
    for reviews in ["reviews.istio-1.25-mtls", "reviews.istio-1.25-mtls-strict"] {
        let args = app_to_reviews("productpage.istio-1.25-mtls", &reviews_peer(reviews, true));
        let path = single_path(&args);
        assert_eq!(path["ending"]["kind"], "delivered", "{reviews}: {path}");
        assert_eq!(path["ending"]["pod"], "reviews");
        let orig = steps(&path, "tls_origination");
        assert_eq!(orig.len(), 1, "{path}");
        let o = &orig[0]["detail"];
        assert_eq!(o["socket_match"], "tlsMode-istio");
        assert_eq!(o["socket"], "envoy.transport_sockets.tls");
        assert_eq!(o["sni"], "outbound_.9080_._.reviews.default.svc.cluster.local");
        assert_eq!(o["sni_from"], "sni");
        assert_eq!(o["alpn"], serde_json::json!(["istio-peer-exchange", "istio"]));
        assert_eq!(o["client_certificate"], true);
        let term = steps(&path, "tls_termination");
        assert_eq!(term.len(), 1, "{path}");
        assert_eq!(term[0]["pod"], "reviews");
        assert_eq!(term[0]["detail"]["chain"]["name"], "0.0.0.0_9080");
        assert_eq!(term[0]["detail"]["require_client_certificate"], true);
        assert_eq!(envoy_objects(&path, "filter_chain")[1], "0.0.0.0_9080");
        assert_eq!(envoy_objects(&path, "route_config"), ["9080", "inbound|9080||"]);
    }
    let args =
        app_to_reviews("productpage.istio-1.25-mtls", &reviews_peer("reviews.istio-1.25-mtls-strict", true));
    insta::assert_snapshot!("mtls_strict_text", run(&args, "text"));
}

/// PERMISSIVE keeps Istio's plaintext chains; STRICT has none (the corpus dump
/// istio-2023_sidecar_listeners-only shows both chain sets). A client without a sidecar sends
/// plaintext: PERMISSIVE takes it on the `raw_buffer` chain, STRICT finds no chain and Envoy
/// closes the connection with `NR`, details `filter_chain_not_found`
/// (source/common/listener_manager/active_stream_listener_base.cc,
/// `ActiveStreamListenerBase::newConnection`: no filter chain → `NoRouteFound`, close).
#[test]
fn plaintext_client_without_sidecar_into_permissive_and_strict() {
    let reviews = |envoy: &str| -> Vec<String> {
        let mut a: Vec<String> =
            ["trace", "--pod", "reviews", "--iptables", RULES_1_25, "--envoy", &dump(envoy)]
                .iter()
                .map(|s| s.to_string())
                .collect();
        for s in ["--pod-ip", REVIEWS_IP, "--listen", "tcp:0.0.0.0:9080", "--from", "outside:10.244.1.9"] {
            a.push(s.into());
        }
        for s in ["--dst", "10.244.1.7:9080", "--host", "reviews:9080"] {
            a.push(s.into());
        }
        a
    };
    let p = single_path(&reviews("reviews.istio-1.25-mtls"));
    assert_eq!(p["ending"]["kind"], "delivered", "{p}");
    assert!(steps(&p, "tls_termination").is_empty());
    let s = single_path(&reviews("reviews.istio-1.25-mtls-strict"));
    assert_eq!(s["ending"]["kind"], "envoy_response", "{s}");
    assert_eq!(s["ending"]["pod"], "reviews");
    assert_eq!(s["ending"]["flag"], "NR");
    assert!(s["ending"].get("status").is_none(), "closed, no HTTP answer: {s}");
    assert!(s["ending"]["details"].as_str().unwrap_or("").contains("filter_chain_not_found"));
}

/// A sidecar whose DestinationRule sets `tls.mode: DISABLE` sends plaintext to a STRICT
/// server: the TCP connection comes up, the request goes out, and reviews' Envoy closes it (no
/// filter chain). productpage's router sees the stream reset with `ConnectionTermination`,
/// which `Filter::streamResetReasonToResponseFlag` (source/common/router/router.cc) maps to
/// `UpstreamConnectionTermination` (`UC`), and answers 503 with details
/// `upstream_reset_before_response_started{connection_termination}`. Istio's route retries on
/// `connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes`, none of which
/// retries a connection termination (RetryStateImpl::wouldRetryFromReset,
/// source/common/router/retry_state_impl.cc), so there is no `URX`. The path names the
/// DestinationRule behind the cluster.
#[test]
fn plaintext_sidecar_into_strict_gets_503_uc() {
    let args = app_to_reviews(
        "productpage.istio-1.25-mtls-dr-disable",
        &reviews_peer("reviews.istio-1.25-mtls-strict", true),
    );
    let path = single_path(&args);
    let e = &path["ending"];
    assert_eq!(
        (e["kind"].as_str(), e["pod"].as_str()),
        (Some("envoy_response"), Some("productpage")),
        "{path}"
    );
    assert_eq!(e["status"], 503);
    assert_eq!(e["flag"], "UC");
    assert_eq!(e["upstream"]["kind"], "envoy_response");
    assert_eq!(e["upstream"]["pod"], "reviews");
    assert_eq!(e["upstream"]["flag"], "NR");
    assert!(steps(&path, "tls_origination").is_empty(), "plaintext: {path}");
    let failure = steps(&path, "upstream_failure");
    assert_eq!(failure.len(), 1);
    assert_eq!(failure[0]["pod"], "productpage", "back at productpage's Envoy");
    assert_eq!(failure[0]["detail"]["flag"], "UC");
    let rule = "/apis/networking.istio.io/v1alpha3/namespaces/default/destination-rule/reviews-plaintext";
    assert!(
        path["envoy"][0]["istio_config"].as_array().is_some_and(|c| c.iter().any(|x| x == rule)),
        "{path}"
    );
    insta::assert_snapshot!("plaintext_into_strict_text", run(&args, "text"));
    // explain names the DestinationRule behind the plaintext cluster.
    let mut explain = args.clone();
    explain[0] = "explain".into();
    let out = meshpath().args(&explain).output().expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("destination-rule/reviews-plaintext"), "{text}");
}

/// The same plaintext through a TCP proxy (no Host: productpage's outbound `0.0.0.0_9080`
/// falls to its `PassthroughFilterChain`): the connection was up when reviews' Envoy closed it,
/// so tcp_proxy just closes the downstream, with no flag
/// (source/common/tcp_proxy/tcp_proxy.cc, `Filter::onUpstreamEvent`: a remote close after
/// `Connected` closes the downstream connection; `UpstreamConnectionFailure` is set only when
/// the connection never came up).
#[test]
fn plaintext_tcp_into_strict_closes_the_downstream() {
    let args = productpage(
        "productpage.istio-1.25",
        &["--peer", &reviews_peer("reviews.istio-1.25-mtls-strict", true), "--dst", "10.244.1.7:9080"],
    );
    let path = single_path(&args);
    let e = &path["ending"];
    assert_eq!(
        (e["kind"].as_str(), e["pod"].as_str()),
        (Some("envoy_response"), Some("productpage")),
        "{path}"
    );
    assert!(e.get("status").is_none() && e.get("flag").is_none(), "{e}");
    assert_eq!(e["upstream"]["flag"], "NR");
}

/// productpage's Envoy connects to reviews, whose sidecar has no inbound listener (its dump
/// holds only virtualOutbound): the kernel answers RST. The router resets with a connection
/// failure (`UF`, router.cc `streamResetReasonToResponseFlag`); Istio's retry policy retries
/// `connect-failure` twice (retry_state_impl.cc), the retries meet the same RST, and when they
/// run out the router adds `UpstreamRetryLimitExceeded`, `URX` (router.cc,
/// `Filter::onUpstreamReset`, `RetryStatus::NoRetryLimitExceeded`): 503 `UF,URX`.
#[test]
fn refused_upstream_is_503_uf_urx_after_istios_retries() {
    let args = app_to_reviews("productpage.istio-1.25-mtls", &reviews_peer("dualstack.istio-1.25", true));
    let path = single_path(&args);
    let e = &path["ending"];
    assert_eq!(
        (e["pod"].as_str(), e["status"].as_u64(), e["flag"].as_str()),
        (Some("productpage"), Some(503), Some("UF,URX")),
        "{path}"
    );
    assert_eq!(e["upstream"]["kind"], "refused");
    let failure = steps(&path, "upstream_failure");
    assert_eq!(failure[0]["detail"]["details"], "upstream_reset_before_response_started{connection_failure}");
}

/// mTLS to reviews whose app does not listen: reviews' Envoy terminates TLS, its inbound route
/// (no retry policy) connects to the app and is refused: reviews' Envoy answers 503 `UF`.
#[test]
fn app_not_listening_behind_strict_is_the_peers_503_uf() {
    let args =
        app_to_reviews("productpage.istio-1.25-mtls", &reviews_peer("reviews.istio-1.25-mtls-strict", false));
    let path = single_path(&args);
    let e = &path["ending"];
    assert_eq!(
        (e["pod"].as_str(), e["status"].as_u64(), e["flag"].as_str()),
        (Some("reviews"), Some(503), Some("UF")),
        "{path}"
    );
    assert_eq!(steps(&path, "tls_termination").len(), 1);
}

/// A DestinationRule with `tls.mode: SIMPLE` on the ServiceEntry host api.example.com: the
/// cluster's `transport_socket` (UpstreamTlsContext, `sni: api.example.com`, no certificate)
/// encrypts the app's plaintext HTTP; the connection leaves for port 443 in TLS with that SNI.
#[test]
fn tls_origination_to_an_external_host_leaves_encrypted() {
    let args = productpage(
        "productpage.istio-1.25-mtls",
        &[
            "--name",
            "api.example.com=93.184.216.34",
            "--dst",
            "api.example.com:80",
            "--host",
            "api.example.com",
            "--path",
            "/v1",
        ],
    );
    let path = single_path(&args);
    assert_eq!(path["ending"]["kind"], "left", "{path}");
    assert_eq!(path["ending"]["dst"], "93.184.216.34:443");
    let o = steps(&path, "tls_origination");
    assert_eq!(o.len(), 1, "{path}");
    assert!(o[0]["detail"].get("socket_match").is_none());
    assert_eq!(o[0]["detail"]["sni"], "api.example.com");
    assert_eq!(o[0]["detail"]["client_certificate"], false);
    let rule = "/apis/networking.istio.io/v1alpha3/namespaces/default/destination-rule/api-example-com-tls";
    assert!(
        path["envoy"][0]["istio_config"].as_array().is_some_and(|c| c.iter().any(|x| x == rule)),
        "{path}"
    );
}
