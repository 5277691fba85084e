//! The first reply of a delivered TCP connection walked back (docs/trace.md, "The reply";
//! fixtures in tests/fixtures/reply/README.md).
//!
//! Kernel behaviour the expectations come from:
//! * the SYN-ACK matches the reply tuple of the connection's entry and is
//!   `IP_CT_ESTABLISHED_REPLY` (net/netfilter/nf_conntrack_core.c `resolve_normal_ct`), so
//!   `--ctstate ESTABLISHED` matches and `INVALID` does not (net/netfilter/xt_conntrack.c
//!   `conntrack_mt`);
//! * NAT of the request is undone on the reply by the hooks of the other manip type
//!   (net/netfilter/nf_nat_core.c `nf_nat_packet`: for the reply direction the status bit is
//!   inverted), so the client sees the Service address as the source again only at nat INPUT
//!   (`NF_IP_PRI_NAT_SRC`, 100), after filter INPUT (`NF_IP_PRI_FILTER`, 0; both in
//!   include/uapi/linux/netfilter_ipv4.h);
//! * a base chain's policy applies to every packet that reaches its end, replies included.

mod common;
#[allow(dead_code)] // `validate_def` serves tests/json_schemas.rs
mod schema_validator;

use common::meshpath;
use schema_validator::Schema;
use serde_json::Value;

const FIX: &str = "tests/fixtures/reply";

fn run(cmd: &str, client_rules: &str) -> Value {
    let rules = format!("{FIX}/{client_rules}.v4.iptables-save");
    let peer = format!("server=10.244.1.9,{FIX}/server.v4.iptables-save,-,tcp:0.0.0.0:8080");
    let out = meshpath()
        .args([cmd, "--pod", "client", "--iptables", &rules, "--pod-ip", "10.244.0.5"])
        .args(["--peer", &peer, "--dst", "10.96.0.10:80", "--format", "json"])
        .output()
        .expect("runs");
    let json = String::from_utf8(out.stdout).expect("utf-8");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

fn trace(client_rules: &str) -> Value {
    let v = run("trace", client_rules);
    let json = v.to_string();
    let paths = v["paths"].as_array().expect("paths");
    assert_eq!(paths.len(), 1, "{json}");
    paths[0].clone()
}

fn replies(path: &Value) -> Vec<&Value> {
    path["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| &s["detail"])
        .filter(|d| d["step"] == "reply")
        .collect()
}

/// A filter INPUT policy DROP without an `ESTABLISHED` accept: the SYN reaches the server, its
/// SYN-ACK dies in the client's INPUT.
#[test]
fn a_policy_drop_without_an_established_accept_breaks_the_reply() {
    let path = trace("client-input-drop");
    assert_eq!(path["ending"]["kind"], "dropped", "{path}");
    assert_eq!(path["ending"]["pod"], "client", "{path}");
    assert_eq!(path["ending"]["reason"], "policy", "{path}");
    assert_eq!(path["ending"]["chain"], "INPUT", "{path}");
    let r = replies(&path);
    assert_eq!(r.len(), 1, "{path}");
    // The reply starts at the server socket's address, before the client's un-DNAT.
    assert_eq!(
        (&r[0]["src"], &r[0]["dst"]),
        (&Value::from("10.244.1.9:8080"), &Value::from("10.244.0.5:50000"))
    );
}

/// With `--ctstate RELATED,ESTABLISHED -j ACCEPT` the reply is accepted; `--ctstate INVALID
/// -j DROP` (client INPUT, server OUTPUT) does not touch it, nor does a DROP of the Service
/// address as source (filter INPUT sees the server's address).
#[test]
fn an_established_accept_lets_the_reply_in() {
    let path = trace("client-established");
    assert_eq!(path["ending"]["kind"], "delivered", "{path}");
    let rules: Vec<(&Value, &Value)> = path["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| &s["detail"])
        .filter(|d| d["step"] == "rule" && d["hook"] == "INPUT")
        .map(|d| (&d["rule"], &d["verdict"]))
        .collect();
    assert_eq!(rules, [(&Value::from(4), &Value::from("accept"))], "{path}");
}

/// A rule against the server's own address drops the reply: before nat INPUT restores the
/// Service address, filter INPUT sees 10.244.1.9:8080.
#[test]
fn filter_input_sees_the_reply_before_its_source_is_restored() {
    let path = trace("client-drops-server-address");
    assert_eq!(path["ending"]["kind"], "dropped", "{path}");
    assert_eq!(path["ending"]["reason"], "rule", "{path}");
    assert_eq!(path["ending"]["at"]["rule"], 1, "{path}");
}

/// The `reply` step validates against docs/trace.schema.json, and explain's document against
/// docs/explain.schema.json.
#[test]
fn the_json_validates_against_the_schemas() {
    let schema = |f: &str| {
        let text = std::fs::read_to_string(format!("docs/{f}")).expect("schema");
        Schema::new(serde_json::from_str(&text).expect("json")).expect("schema")
    };
    for (cmd, file) in [("trace", "trace.schema.json"), ("explain", "explain.schema.json")] {
        let s = schema(file);
        for rules in ["client-input-drop", "client-established"] {
            let errs = s.validate(&run(cmd, rules));
            assert!(errs.is_empty(), "{cmd} {rules}: {errs:?}");
        }
    }
}

/// explain names the policy that drops the reply among its decisions.
#[test]
fn explain_says_why_the_reply_is_dropped() {
    let rules = format!("{FIX}/client-input-drop.v4.iptables-save");
    let peer = format!("server=10.244.1.9,{FIX}/server.v4.iptables-save,-,tcp:0.0.0.0:8080");
    let out = meshpath()
        .args(["explain", "--pod", "client", "--iptables", &rules, "--pod-ip", "10.244.0.5"])
        .args(["--peer", &peer, "--dst", "10.96.0.10:80"])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("client netfilter: INPUT filter INPUT: no rule decides, policy DROP"), "{text}");
}
