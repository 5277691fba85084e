//! Configs Envoy refuses and server-first clients, through every command that reads a dump:
//! `envoy summary`, `envoy match`, `trace` and `check`. The dump
//! tests/fixtures/mesh/productpage.istio-1.25-rejected.config_dump.json has a listener whose two
//! filter chains have the same `filter_chain_match`, which Envoy refuses
//! (source/common/listener_manager/filter_chain_manager_impl.cc,
//! `FilterChainManagerImpl::addFilterChains`: "error adding listener '<address>': filter chain
//! '<name>' has the same matching rules defined as '<name>'").

mod common;

use common::{dump, meshpath, productpage, RULES_1_25};

const REJECTED: &str = "productpage.istio-1.25-rejected";
const REASON: &str =
    "error adding listener '0.0.0.0:9080': filter chain '0.0.0.0_9080-twin' has the same matching rules defined as '0.0.0.0_9080'";

fn run(args: &[String]) -> (i32, String, String) {
    let o = meshpath().args(args).output().expect("runs");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[test]
fn summary_lists_the_rejected_listener_first_with_envoys_words() {
    let (code, out, err) = run(&strings(&["envoy", "summary", "--envoy", &dump(REJECTED)]));
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("REJECTED BY ENVOY (1)"));
    let first = lines.next().unwrap_or_default();
    assert!(
        first.starts_with(
            "  listener \"0.0.0.0_9080\" [identical_chain_match]  at configs[3].dynamic_listeners[1]"
        ),
        "{first}"
    );
    assert_eq!(lines.next(), Some(format!("    envoy: {REASON}").as_str()));
}

#[test]
fn match_reports_the_rejected_listener() {
    let args = |format: &str| {
        strings(&[
            "envoy",
            "match",
            "--envoy",
            &dump(REJECTED),
            "--listener-addr",
            "10.244.0.5:15001",
            "--dst",
            "10.96.0.20:9080",
            "--host",
            "reviews:9080",
            "--format",
            format,
        ])
    };
    let (code, out, err) = run(&args("text"));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("=> rejected config: Envoy refuses listener 0.0.0.0_9080 ("), "{out}");
    assert!(out.contains(REASON), "{out}");
    let (_, out, _) = run(&args("json"));
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let o = &v["trace"]["outcome"];
    assert_eq!(o["result"], "rejected");
    assert_eq!(o["object"], "listener");
    assert_eq!(o["reason"], REASON);
    assert_eq!(o["instead"]["serves"], "previous_if_any");
}

#[test]
fn trace_ends_rejected_config() {
    let rest = ["--dst", "10.96.0.20:9080", "--host", "reviews:9080", "--format", "json"];
    let (code, out, err) = run(&productpage("trace", RULES_1_25, REJECTED, "tcp:0.0.0.0:9080", &rest));
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let e = &v["paths"][0]["ending"];
    assert_eq!(e["kind"], "rejected_config", "{e}");
    assert_eq!(e["name"], "0.0.0.0_9080");
    assert_eq!(e["reason"], REASON);
}

#[test]
fn check_passes_the_scenarios_that_expect_rejection_and_stalls() {
    let (code, out, err) = run(&strings(&["check", "tests/fixtures/scenarios/envoy-refuses"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.ends_with("3 probes: 3 passed, 0 failed, 0 without expectations (2 scenario files)\n"),
        "{out}"
    );
}

/// Istio's sniffed outbound listener 0.0.0.0_9080 (tls_inspector, http_inspector,
/// `listener_filters_timeout: 0s`): a server-first client never gets past tls_inspector
/// (source/common/listener_manager/active_tcp_socket.cc: no timer for a zero time-out).
#[test]
fn trace_server_first_through_a_sniffed_port_stalls() {
    let rest = ["--dst", "10.96.0.20:9080", "--server-first"];
    let (code, out, err) =
        run(&productpage("trace", RULES_1_25, "productpage.istio-1.25", "tcp:0.0.0.0:9080", &rest));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("=> stalled in pod productpage: listener 0.0.0.0_9080: envoy.filters.listener.tls_inspector waits"),
        "{out}"
    );
    // The same connection with the client speaking first is routed.
    let rest = ["--dst", "10.96.0.20:9080"];
    let (_, out, _) =
        run(&productpage("trace", RULES_1_25, "productpage.istio-1.25", "tcp:0.0.0.0:9080", &rest));
    assert!(!out.contains("stalled"), "{out}");
}

/// `--server-first` says the client sends nothing: it cannot come with TLS or HTTP fields.
#[test]
fn server_first_conflicts_with_request_fields() {
    let rest = ["--dst", "10.96.0.20:9080", "--server-first", "--host", "reviews"];
    let (code, _, err) =
        run(&productpage("trace", RULES_1_25, "productpage.istio-1.25", "tcp:0.0.0.0:9080", &rest));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--server-first"), "{err}");
}

/// A v3 dump whose listener update Envoy rejected: `error_state.details` is Envoy's message and
/// the `active_state` beside it is what Envoy serves (admin/v3/config_dump_shared.proto).
#[test]
fn summary_reads_error_state() {
    let dir = std::env::temp_dir().join(format!("meshpath-rejected-cli-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let file = dir.join("error-state.json");
    let text = r#"{"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump", "dynamic_listeners": [
  {"name": "0.0.0.0_80",
   "active_state": {"listener": {"name": "0.0.0.0_80", "address": {"socket_address": {"address": "0.0.0.0", "port_value": 80}}}},
   "error_state": {"failed_configuration": {"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", "name": "0.0.0.0_80",
     "address": {"socket_address": {"address": "0.0.0.0", "port_value": 80}}},
     "details": "error adding listener '0.0.0.0:80': multiple filter chains with the same matching rules are defined"}}]}]}"#;
    std::fs::write(&file, text).expect("writable");
    let (code, out, err) =
        run(&["envoy".into(), "summary".into(), "--envoy".into(), file.display().to_string()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("REJECTED BY ENVOY (1)\n  listener \"0.0.0.0_80\" [update_rejected]  at configs[0].dynamic_listeners[0].error_state"), "{out}");
    assert!(out.contains("    envoy: error adding listener '0.0.0.0:80': multiple filter chains with the same matching rules are defined\n"), "{out}");
    assert!(out.contains("    serves instead: the last version it accepted (configs[0].dynamic_listeners[0].active_state.listener)\n"), "{out}");
    assert!(out.contains("0.0.0.0_80 0.0.0.0:80 [rejected update (error_state)]"), "{out}");
}
