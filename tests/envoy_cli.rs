//! `meshpath envoy summary|match` end to end on a small authored sidecar dump.

use assert_cmd::Command;

const DUMP: &str = "tests/fixtures/envoy/sidecar.json";

fn meshpath() -> Command {
    match Command::cargo_bin("meshpath") {
        Ok(c) => c,
        Err(e) => panic!("meshpath binary: {e}"),
    }
}

fn run(args: &[&str]) -> String {
    let out = meshpath().args(args).output().unwrap_or_else(|e| panic!("run: {e}"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn summary_lists_listeners_routes_clusters_endpoints() {
    let text = run(&["envoy", "summary", "--envoy", DUMP]);
    insta::assert_snapshot!("envoy_summary_sidecar", text);
}

#[test]
fn match_http_through_handoff_to_eds_endpoint() {
    let text = run(&[
        "envoy",
        "match",
        "--envoy",
        DUMP,
        "--listener-addr",
        "10.244.0.9:15001",
        "--dst",
        "10.96.10.10:9080",
        "--src",
        "10.244.0.9:41000",
        "--host",
        "reviews:9080",
        "--path",
        "/reviews/1",
    ]);
    insta::assert_snapshot!("envoy_match_http_text", text);
    let json = run(&[
        "envoy",
        "match",
        "--envoy",
        DUMP,
        "--listener-addr",
        "10.244.0.9:15001",
        "--dst",
        "10.96.10.10:9080",
        "--src",
        "10.244.0.9:41000",
        "--host",
        "unknown.example.com",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(v["schema"], "meshpath.envoy-match/v1");
    assert_eq!(v["trace"]["outcome"]["result"], "http_response");
    assert_eq!(v["trace"]["outcome"]["status"], 502);
    insta::assert_snapshot!("envoy_match_block_all_json", json);
}

#[test]
fn match_tcp_blackhole_and_inbound_passthrough() {
    let text = run(&[
        "envoy",
        "match",
        "--envoy",
        DUMP,
        "--listener-addr",
        "10.244.0.9:15001",
        "--dst",
        "10.244.0.9:15001",
    ]);
    assert!(text.contains("=> connection closed by Envoy flag UH"), "{text}");
    let text = run(&[
        "envoy",
        "match",
        "--envoy",
        DUMP,
        "--listener-addr",
        "10.244.0.9:15006",
        "--dst",
        "10.244.0.9:8080",
        "--src",
        "10.244.3.3:5555",
    ]);
    assert!(
        text.contains("=> forwarded to 10.244.0.9:8080 from 127.0.0.6 (cluster InboundPassthroughCluster)"),
        "{text}"
    );
}

#[test]
fn unreadable_dump_is_a_diagnostic_with_line() {
    let dir = std::env::temp_dir().join(format!("meshpath-envoy-cli-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let bad = dir.join("bad.json");
    let _ = std::fs::write(&bad, "{\"configs\": [\n  {\"@type\": }\n]}\n");
    let out = meshpath()
        .args(["envoy", "summary", "--envoy"])
        .arg(&bad)
        .output()
        .unwrap_or_else(|e| panic!("run: {e}"));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2"), "{err}");
}

/// `--listener` names a listener of the dump; an unknown name is bad input (exit 2) that says
/// which listeners exist, not an answer "no listener" with status 0.
#[test]
fn unknown_listener_name_is_an_error_listing_the_listeners() {
    let out = meshpath()
        .env("NO_COLOR", "1")
        .args(["envoy", "match", "--envoy", DUMP, "--listener", "nosuch", "--dst", "10.0.0.1:80"])
        .output()
        .unwrap_or_else(|e| panic!("run: {e}"));
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--listener \"nosuch\": tests/fixtures/envoy/sidecar.json has no listener"),
        "{err}"
    );
    assert!(err.contains("listeners in the dump: 0.0.0.0_9080, virtualInbound, virtualOutbound"), "{err}");
}

/// `--listener` and `--listener-addr` are two ways to say where Envoy starts: both at once is
/// a usage error (exit 2), not one of them silently ignored.
#[test]
fn listener_and_listener_addr_conflict() {
    let out = meshpath()
        .args(["envoy", "match", "--envoy", DUMP, "--listener", "virtualOutbound"])
        .args(["--listener-addr", "10.0.0.1:15001", "--dst", "10.0.0.1:80"])
        .output()
        .unwrap_or_else(|e| panic!("run: {e}"));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot be used with"), "{err}");
}
