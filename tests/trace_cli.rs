//! `meshpath trace` end to end on the mesh fixtures (tests/fixtures/mesh/README.md): one
//! snapshot of the text and one of the JSON per case, plus a DOT and a Mermaid drawing. Each
//! test also states the ending it expects, so a snapshot can never bless a different outcome.

mod common;

use common::{dump, meshpath, PRODUCTPAGE_IP, RULES_1_1, RULES_1_25, RULES_1_25_DNS, RULES_1_25_TPROXY};
use serde_json::Value;

/// A trace in pod productpage: its rule set and dump, then the case's own arguments.
fn productpage(rules: &str, envoy: &str, listen: &str, rest: &[&str]) -> Vec<String> {
    common::productpage("trace", rules, envoy, listen, rest)
}

fn run(args: &[String], format: &str) -> String {
    let out = meshpath().args(args).args(["--format", format]).output().expect("runs");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

/// The JSON of a single-path trace, after checking its schema and that there is one path.
fn single_path(args: &[String]) -> (String, Value) {
    let json = run(args, "json");
    let v: Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(v["schema"], "meshpath.trace/v2");
    let paths = v["paths"].as_array().expect("paths");
    assert_eq!(paths.len(), 1, "{json}");
    (json, paths[0].clone())
}

fn envoy_objects(path: &Value, field: &str) -> Vec<String> {
    path["envoy"]
        .as_array()
        .expect("envoy")
        .iter()
        .map(|e| e[field].as_str().unwrap_or("").to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 1. bookinfo: productpage's app -> reviews ClusterIP -> 15001 -> 0.0.0.0_9080 (RDS "9080") ->
//    EDS endpoint in pod reviews -> 15006 virtualInbound -> inbound|9080|| from 127.0.0.6 -> app.

fn bookinfo_args() -> Vec<String> {
    let peer = format!("reviews=10.244.1.7,{RULES_1_25},{},tcp:0.0.0.0:9080", dump("reviews.istio-1.25"));
    productpage(
        RULES_1_25,
        "productpage.istio-1.25",
        "tcp:0.0.0.0:9080",
        &["--peer", &peer, "--dst", "10.96.0.20:9080", "--host", "reviews:9080", "--path", "/reviews/0"],
    )
}

#[test]
fn bookinfo_cluster_ip_to_remote_pod_is_delivered_to_reviews_app() {
    let args = bookinfo_args();
    let (json, path) = single_path(&args);
    assert_eq!(path["ending"]["kind"], "delivered");
    assert_eq!(path["ending"]["pod"], "reviews");
    assert_eq!(path["ending"]["socket"], "0.0.0.0:9080");
    assert_eq!(path["ending"]["process"], "app");
    assert_eq!(envoy_objects(&path, "listener"), ["0.0.0.0_9080", "virtualInbound"]);
    assert_eq!(envoy_objects(&path, "route_config"), ["9080", "inbound|9080||"]);
    assert_eq!(
        envoy_objects(&path, "virtual_host"),
        ["reviews.default.svc.cluster.local:9080", "inbound|http|9080"]
    );
    assert_eq!(
        envoy_objects(&path, "cluster"),
        ["outbound|9080||reviews.default.svc.cluster.local", "inbound|9080||"]
    );
    assert_eq!(envoy_objects(&path, "endpoint"), ["10.244.1.7:9080", "10.244.1.7:9080"]);
    insta::assert_snapshot!("bookinfo_json", json);
    insta::assert_snapshot!("bookinfo_text", run(&args, "text"));
}

/// The drawing merges steps with the same text within a pod into one node, so the app's and
/// Envoy's separate connections share "OUTPUT nat OUTPUT #1 jump ISTIO_OUTPUT" and the
/// delivered path is drawn with a cycle (n2 -> ... -> n16 -> n2) that is not a loop.
#[test]
fn bookinfo_dot() {
    insta::assert_snapshot!(run(&bookinfo_args(), "dot"));
}

// ---------------------------------------------------------------------------------------------
// 2. app -> external HTTPS host: no listener for :443, virtualOutbound's catch-all chain ->
//    PassthroughCluster -> leaves the pod (Envoy's own connection is exempt by uid 1337).

#[test]
fn external_https_leaves_through_passthrough_cluster() {
    let args = productpage(
        RULES_1_25,
        "productpage.istio-1.25",
        "tcp:0.0.0.0:9080",
        &["--dst", "93.184.216.34:443", "--sni", "example.com"],
    );
    let (json, path) = single_path(&args);
    assert_eq!(path["ending"]["kind"], "left");
    assert_eq!(path["ending"]["cluster"], "PassthroughCluster");
    assert_eq!(envoy_objects(&path, "listener"), ["virtualOutbound"]);
    assert_eq!(envoy_objects(&path, "filter_chain"), ["virtualOutbound-catchall-tcp"]);
    insta::assert_snapshot!("external_https_json", json);
    insta::assert_snapshot!("external_https_text", run(&args, "text"));
}

// ---------------------------------------------------------------------------------------------
// 3. app -> its own pod IP: `-o lo -m owner ! --uid-owner 1337 -j RETURN` skips Envoy.

#[test]
fn own_pod_ip_bypasses_envoy() {
    let args =
        productpage(RULES_1_25, "productpage.istio-1.25", "tcp:0.0.0.0:9080", &["--dst", "10.244.0.5:9080"]);
    let (json, path) = single_path(&args);
    assert_eq!(path["ending"]["kind"], "delivered");
    assert_eq!(path["ending"]["pod"], "productpage");
    assert_eq!(path["ending"]["socket"], "0.0.0.0:9080");
    assert_eq!(path["ending"]["process"], "app");
    assert!(path["envoy"].as_array().expect("envoy").is_empty(), "{json}");
    insta::assert_snapshot!("own_pod_ip_json", json);
    insta::assert_snapshot!("own_pod_ip_text", run(&args, "text"));
}

// ---------------------------------------------------------------------------------------------
// 4. DNS: udp 53 from the app is redirected to 127.0.0.1:15053, pilot-agent answers.

#[test]
fn dns_query_is_answered_by_pilot_agent() {
    let args = productpage(
        RULES_1_25_DNS,
        "productpage.istio-1.25",
        "tcp:0.0.0.0:9080",
        &[
            "--name",
            "reviews.default.svc.cluster.local=10.96.0.20",
            "--proto",
            "udp",
            "--dst",
            "10.96.0.10:53",
            "--dns-query",
            "reviews.default.svc.cluster.local",
        ],
    );
    let (json, path) = single_path(&args);
    assert_eq!(path["ending"]["kind"], "delivered");
    assert_eq!(path["ending"]["socket"], "127.0.0.1:15053");
    let answered = path["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .any(|s| s["layer"] == "dns" && s["what"].as_str().unwrap_or("").contains("10.96.0.20"));
    assert!(answered, "{json}");
    insta::assert_snapshot!("dns_json", json);
    insta::assert_snapshot!("dns_text", run(&args, "text"));
}

// ---------------------------------------------------------------------------------------------
// 5. Inbound from outside: REDIRECT to 15006, and TPROXY to a transparent 15006.

fn inbound(rules: &str, envoy: &str, listen: &str, port: &str) -> Vec<String> {
    let dst = format!("{PRODUCTPAGE_IP}:{port}");
    productpage(
        rules,
        envoy,
        listen,
        &[
            "--from",
            "outside:10.244.1.9",
            "--dst",
            &dst,
            "--host",
            "productpage:9080",
            "--path",
            "/productpage",
        ],
    )
}

#[test]
fn redirect_inbound_is_delivered_from_127_0_0_6() {
    let args = inbound(RULES_1_25, "productpage.istio-1.25", "tcp:0.0.0.0:9080", "9080");
    let (json, path) = single_path(&args);
    assert_eq!(path["ending"]["kind"], "delivered");
    assert_eq!(path["ending"]["socket"], "0.0.0.0:9080");
    assert_eq!(envoy_objects(&path, "listener"), ["virtualInbound"]);
    assert_eq!(envoy_objects(&path, "cluster"), ["inbound|9080||"]);
    assert!(json.contains("127.0.0.6"), "{json}");
    insta::assert_snapshot!("redirect_inbound_json", json);
    insta::assert_snapshot!("redirect_inbound_text", run(&args, "text"));
}

/// Real Istio adds `original_src` (mark 1337) to virtualInbound in TPROXY mode; Envoy binds the
/// upstream socket to the client's address (a PREBIND local address wins over
/// `upstream_bind_config`) and marks it 0x539. The engine takes the address but not the mark.
#[test]
fn tproxy_inbound_to_app() {
    let args = inbound(RULES_1_25_TPROXY, "productpage.istio-1.25-tproxy", "tcp:0.0.0.0:9080", "9080");
    let (json, path) = single_path(&args);
    assert_eq!(path["ending"]["kind"], "loop");
    insta::assert_snapshot!("tproxy_inbound_json", json);
    insta::assert_snapshot!("tproxy_inbound_text", run(&args, "text"));
}

#[test]
fn tproxy_inbound_to_15006_is_closed_by_virtual_inbound_blackhole() {
    let args = inbound(RULES_1_25_TPROXY, "productpage.istio-1.25-tproxy", "tcp:0.0.0.0:9080", "15006");
    let (json, path) = single_path(&args);
    // virtualInbound-blackhole's tcp_proxy names BlackHoleCluster, which has no hosts: Envoy
    // closes with UH (tcp_proxy.cc, `NoHealthyUpstream`).
    assert_eq!(path["ending"]["kind"], "blackhole");
    assert_eq!(path["ending"]["flag"], "UH");
    assert_eq!(envoy_objects(&path, "filter_chain"), ["virtualInbound-blackhole"]);
    assert!(json.contains("TPROXY"), "{json}");
    insta::assert_snapshot!("tproxy_inbound_15006_json", json);
    insta::assert_snapshot!("tproxy_inbound_15006_text", run(&args, "text"));
}

#[test]
fn tproxy_inbound_to_15006_dot() {
    let args = inbound(RULES_1_25_TPROXY, "productpage.istio-1.25-tproxy", "tcp:0.0.0.0:9080", "15006");
    insta::assert_snapshot!(run(&args, "dot"));
}

#[test]
fn tproxy_without_transparent_listener_drops_silently() {
    let args = inbound(RULES_1_25_TPROXY, "productpage.istio-1.25", "tcp:0.0.0.0:9080", "9080");
    let (json, path) = single_path(&args);
    assert_eq!(path["ending"]["kind"], "dropped");
    assert!(path["envoy"].as_array().expect("envoy").is_empty(), "{json}");
    insta::assert_snapshot!("tproxy_not_transparent_json", json);
    insta::assert_snapshot!("tproxy_not_transparent_text", run(&args, "text"));
}

// ---------------------------------------------------------------------------------------------
// 6. 2019 (Istio 1.1) rules: inbound captured to 15001; an app bound only to the pod IP.

fn istio_1_1(envoy: &str) -> Vec<String> {
    inbound(RULES_1_1, envoy, "tcp:10.244.0.5:9080", "9080")
}

#[test]
fn pod_ip_endpoint_with_2019_rules_loops_through_15001() {
    let args = istio_1_1("productpage.istio-1.1-podip-endpoint");
    let (json, path) = single_path(&args);
    assert_eq!(path["ending"]["kind"], "loop");
    let cycle = path["ending"]["cycle"].as_array().expect("cycle");
    assert_eq!(cycle.len(), 2, "{json}");
    assert_eq!(envoy_objects(&path, "listener")[0], "10.244.0.5_9080");
    assert!(json.contains("istio-1.1-redirect.v4.iptables-save:14"), "{json}");
    insta::assert_snapshot!("istio_1_1_loop_json", json);
    insta::assert_snapshot!("istio_1_1_loop_text", run(&args, "text"));
}

#[test]
fn pod_ip_endpoint_loop_mermaid() {
    insta::assert_snapshot!(run(&istio_1_1("productpage.istio-1.1-podip-endpoint"), "mermaid"));
}

/// Envoy's upstream connection to 127.0.0.1:9080 is refused (the app listens only on the pod
/// IP), but the client's connection was accepted by Envoy: HCM answers the request with a local
/// 503 and flag UF (upstream_reset_before_response_started{connection_failure}).
#[test]
fn localhost_endpoint_with_app_on_pod_ip_is_503_uf() {
    let args = istio_1_1("productpage.istio-1.1");
    let (json, path) = single_path(&args);
    assert_eq!(path["ending"]["kind"], "envoy_response");
    assert_eq!(path["ending"]["status"], 503);
    assert_eq!(path["ending"]["flag"], "UF");
    insta::assert_snapshot!("istio_1_1_refused_json", json);
    insta::assert_snapshot!("istio_1_1_refused_text", run(&args, "text"));
}

// ---------------------------------------------------------------------------------------------
// 7. The same app (bound to the pod IP) with Istio >= 1.10 rules and clusters: inbound|9080||
//    is ORIGINAL_DST bound to 127.0.0.6, which `-s 127.0.0.6/32 -o lo -j RETURN` exempts.

#[test]
fn pod_ip_bind_with_modern_rules_is_delivered_from_127_0_0_6() {
    let args = inbound(RULES_1_25, "productpage.istio-1.25", "tcp:10.244.0.5:9080", "9080");
    let (json, path) = single_path(&args);
    assert_eq!(path["ending"]["kind"], "delivered");
    assert_eq!(path["ending"]["socket"], "10.244.0.5:9080");
    assert_eq!(path["ending"]["process"], "app");
    assert!(json.contains("istio-1.25-redirect.v4.iptables-save:20"), "{json}");
    insta::assert_snapshot!("modern_pod_ip_bind_json", json);
    insta::assert_snapshot!("modern_pod_ip_bind_text", run(&args, "text"));
}

// ---------------------------------------------------------------------------------------------
// Contrasts.

/// With the 2019 rules `ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -j ISTIO_REDIRECT` also catches the
/// app's own connection to its pod IP (compare `own_pod_ip_bypasses_envoy`); Envoy hands it to
/// the inbound listener, whose 127.0.0.1 endpoint reaches the app bound to 0.0.0.0.
#[test]
fn own_pod_ip_with_2019_rules_goes_through_envoy() {
    let args = productpage(
        RULES_1_1,
        "productpage.istio-1.1",
        "tcp:0.0.0.0:9080",
        &["--dst", "10.244.0.5:9080", "--host", "productpage:9080"],
    );
    let (json, path) = single_path(&args);
    assert_eq!(path["ending"]["kind"], "delivered");
    assert_eq!(path["ending"]["socket"], "0.0.0.0:9080");
    assert_eq!(envoy_objects(&path, "listener"), ["10.244.0.5_9080"]);
    assert_eq!(envoy_objects(&path, "endpoint"), ["127.0.0.1:9080"]);
    insta::assert_snapshot!("istio_1_1_own_pod_ip_json", json);
    insta::assert_snapshot!("istio_1_1_own_pod_ip_text", run(&args, "text"));
}

/// Non-HTTP bytes to an HTTP service port: `0.0.0.0_9080`'s only chain wants `http/1.1`/`h2c`,
/// so the connection takes `PassthroughFilterChain` and leaves for the ClusterIP itself.
#[test]
fn cluster_ip_without_http_takes_passthrough_filter_chain() {
    let args =
        productpage(RULES_1_25, "productpage.istio-1.25", "tcp:0.0.0.0:9080", &["--dst", "10.96.0.20:9080"]);
    let (json, path) = single_path(&args);
    assert_eq!(path["ending"]["kind"], "left");
    assert_eq!(path["ending"]["dst"], "10.96.0.20:9080");
    assert_eq!(path["ending"]["cluster"], "PassthroughCluster");
    assert_eq!(envoy_objects(&path, "listener"), ["0.0.0.0_9080"]);
    assert_eq!(envoy_objects(&path, "filter_chain"), ["PassthroughFilterChain"]);
    insta::assert_snapshot!("cluster_ip_not_http_json", json);
    insta::assert_snapshot!("cluster_ip_not_http_text", run(&args, "text"));
}

// ---------------------------------------------------------------------------------------------
// Choices: ratings has two healthy EDS endpoints (10.244.2.3, 10.244.2.4), outside the snapshot.

fn ratings(pick: &[&str]) -> Vec<String> {
    let mut rest = vec!["--dst", "10.96.0.40:9080", "--host", "ratings:9080", "--path", "/ratings/0"];
    rest.extend_from_slice(pick);
    productpage(RULES_1_25, "productpage.istio-1.25", "tcp:0.0.0.0:9080", &rest)
}

#[test]
fn two_endpoints_are_two_paths_of_equal_weight() {
    let args = ratings(&[]);
    let json = run(&args, "json");
    let v: Value = serde_json::from_str(&json).expect("valid JSON");
    let paths = v["paths"].as_array().expect("paths");
    assert_eq!(paths.len(), 2, "{json}");
    for (p, ep) in paths.iter().zip(["10.244.2.3:9080", "10.244.2.4:9080"]) {
        assert_eq!(p["weight"], 0.5);
        assert_eq!(p["ending"]["kind"], "left");
        assert_eq!(p["ending"]["dst"], ep);
        assert_eq!(p["ending"]["cluster"], "outbound|9080||ratings.default.svc.cluster.local");
    }
    insta::assert_snapshot!("two_endpoints_json", json);
    insta::assert_snapshot!("two_endpoints_text", run(&args, "text"));
}

#[test]
fn pick_first_takes_the_first_eds_endpoint() {
    let (_, path) = single_path(&ratings(&["--pick", "first"]));
    assert_eq!(path["ending"]["dst"], "10.244.2.3:9080");
}

/// Two endpoints of weight 1: random value 1 falls in the second interval ([1, 2)).
#[test]
fn pick_random_value_takes_the_endpoint_it_falls_on() {
    let (_, path) = single_path(&ratings(&["--pick", "random-value=1"]));
    assert_eq!(path["ending"]["dst"], "10.244.2.4:9080");
}

/// The branches split at the cluster's endpoint choice, but the drawing merges the two
/// connections' shared rule steps, so both endings hang off one node with the weights there.
#[test]
fn two_endpoints_mermaid() {
    insta::assert_snapshot!(run(&ratings(&[]), "mermaid"));
}

// ---------------------------------------------------------------------------------------------
// Why virtualOutbound has a blackhole chain for its own port.

/// From outside to 10.244.0.5:15001: 15006 -> passthrough chain `virtualInbound` ->
/// InboundPassthroughCluster from 127.0.0.6 -> RETURN -> Envoy's own 0.0.0.0:15001 ->
/// `virtualOutbound-blackhole` -> BlackHoleCluster: accepted, then closed (UH). Envoy's
/// tcp_proxy closes a connection whose cluster has no healthy host with the UH flag
/// (source/common/tcp_proxy/tcp_proxy.cc, `NoHealthyUpstream`); meshpath names Istio's
/// BlackHoleCluster as the ending whether a route or a TCP proxy reached it.
#[test]
fn inbound_to_15001_is_closed_by_virtual_outbound_blackhole() {
    let args = productpage(
        RULES_1_25,
        "productpage.istio-1.25",
        "tcp:0.0.0.0:9080",
        &["--from", "outside:10.244.1.9", "--dst", "10.244.0.5:15001"],
    );
    let (json, path) = single_path(&args);
    assert_eq!(path["ending"]["kind"], "blackhole");
    assert_eq!(path["ending"]["cluster"], "BlackHoleCluster");
    assert_eq!(path["ending"]["flag"], "UH");
    assert!(path["ending"].get("status").is_none(), "a TCP proxy has no status to answer");
    assert_eq!(envoy_objects(&path, "filter_chain"), ["virtualInbound", "virtualOutbound-blackhole"]);
    insta::assert_snapshot!("inbound_to_15001_json", json);
    insta::assert_snapshot!("inbound_to_15001_text", run(&args, "text"));
}

// ---------------------------------------------------------------------------------------------
// DNS: a name pilot-agent does not know is forwarded to the pod's resolver as uid 1337.

#[test]
fn dns_unknown_name_is_forwarded_by_pilot_agent() {
    let args = productpage(
        RULES_1_25_DNS,
        "productpage.istio-1.25",
        "tcp:0.0.0.0:9080",
        &[
            "--name",
            "reviews.default.svc.cluster.local=10.96.0.20",
            "--proto",
            "udp",
            "--dst",
            "10.96.0.10:53",
            "--dns-query",
            "www.example.com",
        ],
    );
    let (json, path) = single_path(&args);
    assert_eq!(path["ending"]["kind"], "left");
    assert_eq!(path["ending"]["dst"], "10.96.0.10:53");
    assert!(json.contains("uid 1337 sends udp"), "{json}");
    insta::assert_snapshot!("dns_forwarded_json", json);
    insta::assert_snapshot!("dns_forwarded_text", run(&args, "text"));
}

// ---------------------------------------------------------------------------------------------
// HTTP outcomes on the 2019 dump (its RDS "9080" has no catch-all `allow_any` virtual host).

#[test]
fn unknown_host_on_2019_route_config_is_404_nr() {
    let args = productpage(
        RULES_1_1,
        "productpage.istio-1.1",
        "tcp:0.0.0.0:9080",
        &["--dst", "10.96.0.20:9080", "--host", "nothere:9080"],
    );
    let (json, path) = single_path(&args);
    assert_eq!(path["ending"]["kind"], "envoy_response");
    assert_eq!(path["ending"]["status"], 404);
    assert_eq!(path["ending"]["flag"], "NR");
    insta::assert_snapshot!("istio_1_1_404_json", json);
    insta::assert_snapshot!("istio_1_1_404_text", run(&args, "text"));
}

/// The 2019 dump was taken without `?include_eds`: the route resolves, the endpoints are unknown.
#[test]
fn missing_eds_section_is_undetermined() {
    let args = productpage(
        RULES_1_1,
        "productpage.istio-1.1",
        "tcp:0.0.0.0:9080",
        &["--dst", "10.96.0.20:9080", "--host", "reviews:9080"],
    );
    let (json, path) = single_path(&args);
    assert_eq!(path["ending"]["kind"], "undetermined");
    assert!(json.contains("include_eds"), "{json}");
}

/// Raw TCP from outside to a port nobody listens on: virtualInbound's passthrough chain accepts,
/// tcp_proxy's connection to 10.244.0.5:8080 (from 127.0.0.6) is refused, and Envoy closes the
/// accepted downstream connection with flag UF; the client never sees a refusal.
#[test]
fn inbound_to_closed_port_is_accepted_then_closed_uf() {
    let args = productpage(
        RULES_1_25,
        "productpage.istio-1.25",
        "tcp:0.0.0.0:9080",
        &["--from", "outside:10.244.1.9", "--dst", "10.244.0.5:8080"],
    );
    let (_, path) = single_path(&args);
    assert_eq!(path["ending"]["kind"], "envoy_response");
    assert_eq!(path["ending"]["flag"], "UF");
    assert!(path["ending"].get("status").is_none());
}
