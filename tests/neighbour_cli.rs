//! Next-hop resolution before a packet leaves (docs/trace.md, "Next-hop resolution"; fixtures in
//! tests/fixtures/neigh/README.md).
//!
//! Kernel behaviour the expectations come from:
//! * the kernel resolves the next hop in `neigh_output` (net/ipv6/ip6_output.c
//!   `ip6_finish_output2`, net/ipv4/ip_output.c `ip_finish_output2`); an entry in a `NUD_VALID`
//!   state (include/net/neighbour.h) is used as it is, anything else starts a resolution
//!   (net/core/neighbour.c `__neigh_event_send`);
//! * the IPv6 solicitation is sent through `NF_HOOK(NFPROTO_IPV6, NF_INET_LOCAL_OUT, ...)`
//!   (net/ipv6/ndisc.c `ndisc_send_skb`) from the packet's own source address (`ndisc_solicit`),
//!   and the neighbour answers that address (`ndisc_recv_ns` → `ndisc_send_na`): the
//!   advertisement passes PREROUTING and INPUT (net/ipv6/ip6_input.c `ipv6_rcv`,
//!   `ip6_input`) before `ndisc_rcv` reads it;
//! * neighbour discovery is never tracked (net/netfilter/nf_conntrack_proto_icmpv6.c
//!   `nf_conntrack_icmpv6_error`, table `noct_valid_new`): `--state ESTABLISHED` does not
//!   accept it;
//! * ARP is not an IP packet: `arp_xmit` and `arp_rcv` (net/ipv4/arp.c) run the NFPROTO_ARP
//!   hooks only, never iptables' IPv4 tables.

mod common;
#[allow(dead_code)] // `validate_def` serves tests/json_schemas.rs
mod schema_validator;

use common::meshpath;
use schema_validator::Schema;
use serde_json::Value;

const REJECT_V6: &str = "tests/realworld/shared/istio-1.3-ipv6-input-reject.v6.ip6tables-save";
const FIX: &str = "tests/fixtures/neigh";
const OUTSIDE_V6: &str = "[2607:f8b0:4005:80a::200e]:443";

fn trace(args: &[&str]) -> Value {
    let out = meshpath().arg("trace").args(args).args(["--format", "json"]).output().expect("runs");
    let json = String::from_utf8(out.stdout).expect("utf-8");
    let v: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    let paths = v["paths"].as_array().expect("paths");
    assert_eq!(paths.len(), 1, "{json}");
    paths[0].clone()
}

fn v6(rules: &str, neigh: Option<&str>) -> Value {
    let mut args = vec!["--ip6tables", rules, "--pod-ip", "fd01:0:0:2::514"];
    args.extend(["--ip-route", "default via fe80::1 dev eth0", "--dst", OUTSIDE_V6]);
    if let Some(n) = neigh {
        args.extend(["--neigh", n]);
    }
    trace(&args)
}

fn steps<'a>(path: &'a Value, kind: &str) -> Vec<&'a Value> {
    path["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| &s["detail"])
        .filter(|d| d["step"] == kind)
        .collect()
}

/// istio/istio#18956: with istio-iptables.sh's IPv6 INPUT rules (ESTABLISHED accepted, then
/// REJECT) the advertisement from the gateway is rejected, so IPv6 cannot leave the pod.
#[test]
fn the_input_reject_eats_the_neighbour_advertisement() {
    let path = v6(REJECT_V6, None);
    assert_eq!(path["ending"]["kind"], "dropped", "{path}");
    assert_eq!(path["ending"]["reason"], "rule", "{path}");
    assert_eq!(path["ending"]["at"]["chain"], "INPUT", "{path}");
    assert_eq!(path["ending"]["at"]["rule"], 3, "{path}");
    let res = steps(&path, "neighbour_resolution");
    assert_eq!(res.len(), 1, "{path}");
    assert_eq!((&res[0]["next_hop"], &res[0]["protocol"]), (&Value::from("fe80::1"), &Value::from("nd")));
    assert!(res[0].get("entry").is_none(), "{path}");
    let msg = steps(&path, "neighbour_message");
    assert_eq!(msg.len(), 1, "only the advertisement meets a rule: {path}");
    assert_eq!(msg[0]["message"], "advertisement");
    assert_eq!((&msg[0]["src"], &msg[0]["dst"]), (&Value::from("fe80::1"), &Value::from("fd01:0:0:2::514")));
}

/// #18956's fix, `-A INPUT -p ipv6-icmp -j ACCEPT` first: the advertisement is accepted and the
/// connection leaves.
#[test]
fn accepting_icmpv6_lets_the_resolution_through() {
    let path = v6(&format!("{FIX}/accept-icmpv6.v6.ip6tables-save"), None);
    assert_eq!(path["ending"]["kind"], "left", "{path}");
    assert_eq!(steps(&path, "neighbour_message").len(), 1, "{path}");
}

/// A REACHABLE entry spares the resolution: the same REJECT rules let the SYN leave (what the
/// kernel does until the entry goes STALE and must be confirmed again).
#[test]
fn a_reachable_neighbour_entry_skips_the_resolution() {
    let path = v6(REJECT_V6, Some(&format!("{FIX}/reachable.ip-neigh")));
    assert_eq!(path["ending"]["kind"], "left", "{path}");
    let res = steps(&path, "neighbour_resolution");
    assert_eq!(res[0]["entry"], "REACHABLE", "{path}");
    assert!(steps(&path, "neighbour_message").is_empty(), "{path}");
}

/// IPv4: ARP does not pass iptables, so a filter INPUT policy DROP does not stop the
/// resolution; without neighbour evidence the path does not mention it.
#[test]
fn arp_is_not_filtered_by_iptables() {
    let rules = format!("{FIX}/input-drop.v4.iptables-save");
    let base =
        ["--iptables", &rules, "--pod-ip", "10.244.0.5", "--ip-route", "default via 169.254.1.1 dev eth0"];
    let mut args = base.to_vec();
    args.extend(["--dst", "93.184.216.34:443"]);
    let path = trace(&args);
    assert_eq!(path["ending"]["kind"], "left", "{path}");
    assert!(steps(&path, "neighbour_resolution").is_empty(), "{path}");
    let neigh = format!("{FIX}/reachable.ip-neigh");
    args.extend(["--neigh", &neigh]);
    let path = trace(&args);
    assert_eq!(path["ending"]["kind"], "left", "{path}");
    let res = steps(&path, "neighbour_resolution");
    assert_eq!((&res[0]["protocol"], &res[0]["entry"]), (&Value::from("arp"), &Value::from("STALE")));
}

/// A FAILED gateway: the kernel tries again and nothing answers, the packet is dropped.
#[test]
fn a_failed_neighbour_is_unreachable() {
    let rules = format!("{FIX}/input-drop.v4.iptables-save");
    let neigh = format!("{FIX}/failed.ip-neigh");
    let path = trace(&[
        "--iptables",
        &rules,
        "--pod-ip",
        "10.244.0.5",
        "--ip-route",
        "default via 169.254.1.1 dev eth0",
        "--neigh",
        &neigh,
        "--dst",
        "93.184.216.34:443",
    ]);
    assert_eq!(path["ending"]["kind"], "dropped", "{path}");
    assert_eq!(path["ending"]["reason"], "no_neighbour", "{path}");
    assert_eq!(path["ending"]["next_hop"], "169.254.1.1", "{path}");
    // IPv6 with the fixed rules: the messages pass, the entry says nobody answers.
    let path = v6(&format!("{FIX}/accept-icmpv6.v6.ip6tables-save"), Some(&neigh));
    assert_eq!(path["ending"]["reason"], "no_neighbour", "{path}");
}

#[test]
fn a_bad_neighbour_line_is_located() {
    let dir = std::env::temp_dir().join(format!("meshpath-neigh-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let f = dir.join("neigh.txt");
    std::fs::write(&f, "fe80::1 dev eth0 REACHABLE\nfe80::2 dev eth0 WOBBLY\n").expect("write");
    let out = meshpath()
        .args(["trace", "--ip6tables", REJECT_V6, "--pod-ip", "fd01:0:0:2::514", "--dst", OUTSIDE_V6])
        .arg("--neigh")
        .arg(&f)
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("neigh.txt:2:"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// The new steps and the `no_neighbour` reason validate against docs/trace.schema.json and
/// docs/explain.schema.json.
#[test]
fn the_json_validates_against_the_schemas() {
    let schema = |f: &str| {
        let text = std::fs::read_to_string(format!("docs/{f}")).expect("schema");
        Schema::new(serde_json::from_str(&text).expect("json")).expect("schema")
    };
    let (trace_s, explain_s) = (schema("trace.schema.json"), schema("explain.schema.json"));
    let (failed, reachable) = (format!("{FIX}/failed.ip-neigh"), format!("{FIX}/reachable.ip-neigh"));
    let v6 = [
        "--ip6tables",
        REJECT_V6,
        "--pod-ip",
        "fd01:0:0:2::514",
        "--ip-route",
        "default via fe80::1 dev eth0",
    ];
    let v4_rules = format!("{FIX}/input-drop.v4.iptables-save");
    let v4 =
        ["--iptables", &v4_rules, "--pod-ip", "10.244.0.5", "--ip-route", "default via 169.254.1.1 dev eth0"];
    let cases: Vec<Vec<&str>> = vec![
        [&v6[..], &["--dst", OUTSIDE_V6]].concat(),
        [&v6[..], &["--dst", OUTSIDE_V6, "--neigh", &reachable]].concat(),
        [&v4[..], &["--dst", "93.184.216.34:443", "--neigh", &failed]].concat(),
    ];
    for args in cases {
        for (cmd, s) in [("trace", &trace_s), ("explain", &explain_s)] {
            let out = meshpath().arg(cmd).args(&args).args(["--format", "json"]).output().expect("runs");
            let doc: Value =
                serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{cmd} {args:?}: {e}"));
            let errs = s.validate(&doc);
            assert!(errs.is_empty(), "{cmd} {args:?}: {errs:?}");
        }
    }
}

/// The scenario key `neigh` (docs/scenarios.md) gives a pod its neighbour table.
#[test]
fn a_scenario_gives_the_neighbour_table() {
    let out = meshpath().args(["check", &format!("{FIX}/neigh.scenario.yaml")]).output().expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("2 probes: 2 passed"), "{text}");
}
