//! Pods as the evidence describes them (tests/fixtures/pods/README.md): the proxy's uid and gid
//! from the rules or as given, pilot-agent's upstream nameservers from resolv.conf, processes
//! that forward DNS, and the source address the kernel picks. Each expectation states what
//! happened in the thread or what the kernel and Istio source do, cited at the test.

mod common;
#[allow(dead_code)] // validate_def is for the other schema tests
mod schema_validator;

use common::{meshpath, RULES_1_25, RULES_1_25_DNS};
use serde_json::Value;

const PODS: &str = "tests/fixtures/pods";

fn fixture(name: &str) -> String {
    format!("{PODS}/{name}")
}

/// `meshpath trace` in pod productpage with `rules` and the Istio 1.25 dump, then `rest`.
fn trace(rules: &str, rest: &[&str]) -> Value {
    let args = common::productpage("trace", rules, "productpage.istio-1.25", "tcp:0.0.0.0:9080", rest);
    let out = meshpath().args(&args).args(["--format", "json"]).output().expect("runs");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let errs = trace_schema().validate(&v);
    assert!(errs.is_empty(), "docs/trace.schema.json refuses the document: {errs:?}");
    v
}

fn trace_schema() -> schema_validator::Schema {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/trace.schema.json");
    let v = serde_json::from_str(&std::fs::read_to_string(path).expect("schema")).expect("JSON");
    schema_validator::Schema::new(v).expect("valid schema")
}

/// The only path of a trace.
fn only_path(v: &Value) -> &Value {
    let paths = v["paths"].as_array().expect("paths");
    assert_eq!(paths.len(), 1, "{v:#}");
    &paths[0]
}

fn steps<'a>(path: &'a Value, kind: &str) -> Vec<&'a Value> {
    path["steps"].as_array().expect("steps").iter().filter(|s| s["detail"]["step"] == kind).collect()
}

const REVIEWS: [&str; 6] = ["--dst", "10.96.0.20:9080", "--host", "reviews:9080", "--path", "/reviews/0"];

/// istio/istio#52614 (OpenShift gives the app container the uid the proxy runs as: "traffic
/// interception fails because the userID of the sidecar proxy matches with the application
/// pod"), and Istio's application requirements (istio/istio.io#9462: an application running
/// as the proxy's uid bypasses the proxy). The rules' `-m owner --uid-owner 1337 -j RETURN`
/// returns the app's connection before ISTIO_REDIRECT: it leaves without Envoy.
#[test]
fn an_app_with_the_proxy_uid_bypasses_the_sidecar() {
    let mut args = vec!["--from", "uid:1337:1000"];
    args.extend(REVIEWS);
    let v = trace(RULES_1_25, &args);
    let path = only_path(&v);
    assert_eq!(path["ending"]["kind"], "left", "{path:#}");
    assert_eq!(path["ending"]["dst"], "10.96.0.20:9080");
    assert_eq!(path["envoy"].as_array().map(Vec::len), Some(0));
    let id = steps(path, "proxy_identity");
    assert_eq!(id.len(), 1, "{path:#}");
    // scenarios/istio-1.25-redirect.v4.iptables-save:23 and :26 are the exemptions.
    assert_eq!(id[0]["detail"]["uid_from"]["line"], 23);
    assert_eq!(id[0]["detail"]["gid_from"]["line"], 26);
    let exempt = steps(path, "rule").into_iter().any(|s| s["detail"]["line"] == 23);
    assert!(exempt, "the uid exemption decides: {path:#}");
}

/// istio/istio#51012: with a custom `runAsUser` on the istio-proxy container "the iptables rules
/// are applied to the wrong user (`-u` argument of the istio-init container)". Envoy then runs
/// as a uid the rules do not exempt, so its own upstream connection is captured again to 15001:
/// the path loops through Envoy.
#[test]
fn a_proxy_running_as_an_unexempted_uid_loops() {
    let mut args = vec!["--proxy-uid", "1000680000", "--proxy-gid", "1000680000"];
    args.extend(REVIEWS);
    let v = trace(RULES_1_25, &args);
    let path = only_path(&v);
    assert_eq!(path["ending"]["kind"], "loop", "{path:#}");
    let id = steps(path, "proxy_identity");
    assert_eq!(id.len(), 1, "{path:#}");
    assert_eq!(id[0]["detail"]["uid"], 1000680000);
    assert_eq!(id[0]["detail"]["uid_from"]["from"], "given");
    assert!(id[0]["what"].as_str().unwrap().contains("given"), "{}", id[0]["what"]);
}

/// istio-iptables run with `--proxy-uid 2000 --proxy-gid 3000` writes the same rules with those
/// ids (tools/istio-iptables/pkg/capture/run.go, one `-m owner --uid-owner N -j RETURN` per
/// proxy uid). The proxy is then uid 2000 / gid 3000: `--from envoy` is exempt, and Envoy's
/// upstream connection for the app leaves without being captured again.
#[test]
fn rules_for_another_proxy_uid_name_the_proxy() {
    let rules = fixture("istio-1.25-uid2000.v4.iptables-save");
    let v = trace(&rules, &["--from", "envoy", "--dst", "10.244.1.7:9080"]);
    let path = only_path(&v);
    assert_eq!(path["ending"]["kind"], "left", "{path:#}");
    assert_eq!(path["steps"][1]["detail"]["sender"]["uid"], 2000);
    assert_eq!(path["steps"][1]["detail"]["sender"]["gid"], 3000);
    let id = steps(path, "proxy_identity");
    assert_eq!(id[0]["detail"]["uid_from"]["from"], "rules");

    let v = trace(&rules, &REVIEWS);
    let path = only_path(&v);
    assert_eq!(path["ending"]["kind"], "left", "{path:#}");
    assert_eq!(path["ending"]["dst"], "10.244.1.7:9080");
    assert_eq!(path["ending"]["cluster"], "outbound|9080||reviews.default.svc.cluster.local");
    // The app's path: no step says the proxy identity (the exempting rule says it).
    assert!(steps(path, "proxy_identity").is_empty());
}

fn dns_query(rules: &str, dst: &str, extra: &[&str]) -> Value {
    let mut args = vec!["--proto", "udp", "--dst", dst, "--dns-query", "www.example.com"];
    args.extend(extra);
    trace(rules, &args)
}

/// pilot-agent forwards a name it does not know to the nameservers of the pod's
/// /etc/resolv.conf (pkg/dns/client/dns.go: `NewLocalDNSServer` reads them, `queryUpstream`
/// asks them in order), not to where the app sent the query; its query, as uid 1337, is not
/// captured again and leaves for kube-dns.
#[test]
fn pilot_agent_forwards_unknown_names_to_the_resolv_conf_nameserver() {
    let conf = fixture("cluster.resolv.conf");
    let v = dns_query(RULES_1_25_DNS, "8.8.8.8:53", &["--resolv-conf", &conf]);
    let path = only_path(&v);
    assert_eq!(path["ending"]["kind"], "left", "{path:#}");
    assert_eq!(path["ending"]["dst"], "10.96.0.10:53");
    let dns = steps(path, "dns_proxy");
    assert_eq!(dns[0]["detail"]["answer"]["answer"], "nameserver");
    assert_eq!(dns[0]["detail"]["answer"]["resolv_conf"], conf.as_str());
    // Without resolv.conf the query's own destination stands for the nameserver, said so.
    let v = dns_query(RULES_1_25_DNS, "8.8.8.8:53", &[]);
    let path = only_path(&v);
    assert_eq!(path["ending"]["dst"], "8.8.8.8:53");
    let dns = steps(path, "dns_proxy");
    assert!(dns[0]["what"].as_str().unwrap().contains("no resolv.conf given"), "{}", dns[0]["what"]);
}

/// istio/istio#30309 ("Possible DNS redirect loop", confirmed with systemd-resolved on GCE
/// Ubuntu): resolv.conf names a local resolver, which forwards to the cluster DNS; its query is
/// not the proxy's uid, so the rules that capture every DNS query send it back to the agent,
/// which forwards it to the local resolver again.
#[test]
fn a_local_resolver_behind_capture_all_dns_loops() {
    let conf = fixture("stub.resolv.conf");
    let fwd = ["--resolv-conf", conf.as_str(), "--forwarder", "127.0.0.53=10.96.0.10"];
    let v = dns_query(RULES_1_25_DNS, "127.0.0.53:53", &fwd);
    let path = only_path(&v);
    assert_eq!(path["ending"]["kind"], "loop", "{path:#}");
    let closed_by: Vec<&str> = path["ending"]["closed_by"]
        .as_array()
        .expect("closed_by")
        .iter()
        .filter_map(|c| path["steps"][c["step"].as_u64().unwrap() as usize - 1]["detail"]["step"].as_str())
        .collect();
    assert_eq!(closed_by, ["dns_forwarder", "rule", "dns_proxy"]);
    // The agent's query to 127.0.0.53 leaves from 127.0.0.1, the local route's source
    // (`ip route get 127.0.0.53`: `local 127.0.0.53 dev lo src 127.0.0.1`).
    let sends = steps(path, "send");
    assert!(sends.iter().any(|s| s["detail"]["dst"] == "127.0.0.53:53"
        && s["detail"]["src"].as_str().unwrap().starts_with("127.0.0.1:")));
}

/// istio/istio#30647, the fix of #30309: only queries to the resolv.conf nameservers are
/// captured (`-d 127.0.0.53/32` on the DNS rules), so the local resolver's own query to the
/// cluster DNS goes out as sent.
#[test]
fn capturing_only_the_resolv_conf_nameserver_breaks_the_loop() {
    let conf = fixture("stub.resolv.conf");
    let rules = fixture("istio-1.25-dns-stub.v4.iptables-save");
    let fwd = ["--resolv-conf", conf.as_str(), "--forwarder", "127.0.0.53=10.96.0.10"];
    let v = dns_query(&rules, "127.0.0.53:53", &fwd);
    let path = only_path(&v);
    assert_eq!(path["ending"]["kind"], "left", "{path:#}");
    assert_eq!(path["ending"]["dst"], "10.96.0.10:53");
    assert_eq!(steps(path, "dns_proxy").len(), 1);
    assert_eq!(steps(path, "dns_forwarder").len(), 1);
}

/// The same two pods as a scenario file, with the keys `proxy_uid`, `resolv_conf` and
/// `forwarders`: `meshpath check` passes its expectations.
#[test]
fn the_scenario_keys_describe_the_same_pods() {
    let out = meshpath().args(["check", &fixture("pods.scenario.yaml")]).output().expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("5 probes: 5 passed"), "{text}");
}

#[test]
fn bad_forwarders_and_resolv_conf_are_usage_errors() {
    let args = common::productpage(
        "trace",
        RULES_1_25,
        "productpage.istio-1.25",
        "tcp:0.0.0.0:9080",
        &["--dst", "10.96.0.20:9080", "--forwarder", "127.0.0.53"],
    );
    let out = meshpath().args(&args).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("LISTEN=UPSTREAM"));
}

/// `netfilter trace --from envoy` is the pod's proxy too: with rules made for uid 2000, the
/// exemption at line 23 returns Envoy's connection (nothing redirects it).
#[test]
fn netfilter_trace_from_envoy_is_the_pods_proxy() {
    let rules = fixture("istio-1.25-uid2000.v4.iptables-save");
    let out = meshpath()
        .args(["netfilter", "trace", "--iptables", &rules, "--pod-ip", "10.244.0.5"])
        .args(["--from", "envoy", "--dst", "10.96.0.20:9080", "--format", "json"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let lines: Vec<u64> = v["steps"].as_array().unwrap().iter().filter_map(|s| s["line"].as_u64()).collect();
    assert!(lines.contains(&23), "{v:#}");
    assert!(!v.to_string().contains("REDIRECT"), "{v:#}");
}
