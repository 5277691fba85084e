//! ICMP and ICMPv6 probes in `trace`, `explain` and scenario files (`--proto icmp|icmpv6`,
//! `--icmp-type`). The expectations follow the rules' own text and the kernel: Istio's
//! capture rules redirect only TCP (`-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001`), so
//! an ICMP message is not captured; a local ICMP message goes to the kernel's ICMP handler (an
//! echo request is answered by `icmp_echo` in net/ipv4/icmp.c), never to a socket.

mod common;

use common::{meshpath, RULES_1_25};
use serde_json::Value;

fn trace(rules: &str, rest: &[&str]) -> (Value, String) {
    let args = common::productpage("trace", rules, "productpage.istio-1.25", "tcp:0.0.0.0:9080", rest);
    let out = meshpath().args(&args).args(["--format", "json"]).output().expect("runs");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let text = meshpath().args(&args).output().expect("runs");
    (serde_json::from_slice(&out.stdout).expect("JSON"), String::from_utf8_lossy(&text.stdout).into_owned())
}

fn ending(v: &Value) -> &Value {
    let paths = v["paths"].as_array().expect("paths");
    assert_eq!(paths.len(), 1, "{v:#}");
    &paths[0]["ending"]
}

#[test]
fn a_ping_to_another_pod_is_not_captured_and_reaches_its_kernel() {
    let peer =
        format!("reviews=10.244.1.7,{RULES_1_25},{},tcp:0.0.0.0:9080", common::dump("reviews.istio-1.25"));
    let (v, text) = trace(RULES_1_25, &["--proto", "icmp", "--dst", "10.244.1.7", "--peer", &peer]);
    let e = ending(&v);
    assert_eq!((e["kind"].as_str(), e["pod"].as_str()), (Some("delivered"), Some("reviews")), "{text}");
    assert_eq!(e["process"], "kernel (ICMP)");
    assert_eq!(v["paths"][0]["envoy"].as_array().map(Vec::len), Some(0), "{text}");
    assert_eq!(v["paths"][0]["steps"][0]["detail"]["proto"], "icmp");
    assert!(text.contains("sends icmp 10.244.0.5 -> 10.244.1.7"), "{text}");
}

/// `-A OUTPUT -p icmp -m icmp --icmp-type 8 -j DROP` drops echo requests only: a
/// time-exceeded message (type 11) passes (xt_icmp's `icmp_type_code_match`).
#[test]
fn an_icmp_type_rule_decides_by_the_probes_type() {
    let rules = "tests/fixtures/pods/icmp-filter.v4.iptables-save";
    let (v, text) = trace(rules, &["--proto", "icmp", "--dst", "8.8.8.8"]);
    assert_eq!(ending(&v)["kind"], "dropped", "{text}");
    assert_eq!(ending(&v)["at"]["line"], 5, "{text}");
    let (v, text) = trace(rules, &["--proto", "icmp", "--icmp-type", "time-exceeded", "--dst", "8.8.8.8"]);
    assert_eq!(ending(&v)["kind"], "left", "{text}");
}

#[test]
fn icmpv6_towards_an_ipv6_address() {
    let args = [
        "trace",
        "--ip6tables",
        "tests/fixtures/mesh/istio-1.25-redirect.v6.ip6tables-save",
        "--pod-ip",
        "fd00::5",
        "--proto",
        "icmp",
        "--dst",
        "fd00::9",
        "--format",
        "json",
    ];
    let out = meshpath().args(args).output().expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(ending(&v)["kind"], "left");
    assert_eq!(v["paths"][0]["steps"][0]["detail"]["proto"], "icmpv6");
    let out = meshpath()
        .args(["trace", "--iptables", RULES_1_25, "--pod-ip", "10.244.0.5"])
        .args(["--proto", "icmpv6", "--dst", "10.0.0.1"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn explain_takes_icmp_probes() {
    let args = common::productpage(
        "explain",
        "tests/fixtures/pods/icmp-filter.v4.iptables-save",
        "productpage.istio-1.25",
        "tcp:0.0.0.0:9080",
        &["--proto", "icmp", "--dst", "8.8.8.8"],
    );
    let out = meshpath().args(&args).output().expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("dropped"), "{text}");
    assert!(text.contains("icmp"), "{text}");
}
