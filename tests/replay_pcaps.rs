//! The captures shipped in `pcaps/` (made by `pcaps/make-pcaps.sh` from real traffic in a
//! network namespace with Istio's rules, see pcaps/README.md): each reads to the end without
//! faults, and `meshpath replay` over it, with the pod flags of the productpage fixture pod
//! (10.244.0.5), gives the expected rows (table, CSV and JSON snapshots).

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

use meshpath::capture::{Capture, FlowTable};

const RULES_REDIRECT: &str = "scenarios/istio-1.25-redirect.v4.iptables-save";
const RULES_DNS: &str = "tests/fixtures/mesh/istio-1.25-dns.v4.iptables-save";

/// Every shipped capture with its packet and flow counts.
const SHIPPED: [(&str, u64, usize); 4] = [
    ("outbound-http.pcap", 20, 3),
    ("outbound-tls.pcap", 30, 3),
    ("inbound-http.pcap", 20, 2),
    ("dns-then-vip.pcap", 22, 5),
];

fn pcap(name: &str) -> PathBuf {
    Path::new("pcaps").join(name)
}

fn replay(capture: &str, rules: &str, extra: &[&str]) -> String {
    replay_as(capture, rules, "10.244.0.5", extra)
}

/// `replay` with the pod's address given as `pod_ip`.
fn replay_as(capture: &str, rules: &str, pod_ip: &str, extra: &[&str]) -> String {
    let out = Command::cargo_bin("meshpath")
        .expect("binary")
        .arg("replay")
        .arg(pcap(capture))
        .args([
            "--pod",
            "productpage",
            "--iptables",
            rules,
            "--envoy",
            "tests/fixtures/mesh/productpage.istio-1.25.config_dump.json",
            "--pod-ip",
            pod_ip,
            "--listen",
            "tcp:0.0.0.0:9080",
        ])
        .args(extra)
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn every_shipped_capture_reads_to_the_end() {
    let mut listed: Vec<String> = std::fs::read_dir("pcaps")
        .expect("pcaps/")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pcap") || n.ends_with(".pcapng"))
        .collect();
    listed.sort();
    let mut expected: Vec<String> = SHIPPED.iter().map(|s| s.0.to_string()).collect();
    expected.sort();
    assert_eq!(listed, expected, "every capture in pcaps/ has a row in SHIPPED");
    for (name, packets, flows) in SHIPPED {
        let bytes = std::fs::read(pcap(name)).expect("readable");
        let mut cap = Capture::open(&bytes[..]).expect("a capture");
        let mut table = FlowTable::new();
        while let Some(p) = cap.next_packet() {
            table.add(&p);
        }
        assert!(cap.faults().is_empty(), "{name}: {:?}", cap.faults());
        assert_eq!(cap.packets_read(), packets, "{name}");
        assert_eq!(table.flows().len(), flows, "{name}");
        assert_eq!(cap.bytes_read(), bytes.len() as u64, "{name}");
    }
}

#[test]
fn outbound_http_with_host_routes_by_host_and_shows_envoys_connection() {
    let table = replay("outbound-http.pcap", RULES_REDIRECT, &[]);
    assert!(table.contains("outbound|9080||reviews.default.svc.cluster.local"), "{table}");
    assert!(table.contains("leg of #1") && table.contains("Envoy's upstream of #1"), "{table}");
    insta::assert_snapshot!("pcaps_outbound_http", table);
    insta::assert_snapshot!(
        "pcaps_outbound_http_csv",
        replay("outbound-http.pcap", RULES_REDIRECT, &["--format", "csv"])
    );
}

#[test]
fn outbound_tls_with_sni_leaves_through_passthrough() {
    let json = replay("outbound-tls.pcap", RULES_REDIRECT, &["--format", "json"]);
    let v: Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(v["flows"][1]["name"], "example.com");
    assert_eq!(v["flows"][1]["cluster"], "PassthroughCluster");
    assert_eq!(v["flows"][2]["side"], "envoy");
    insta::assert_snapshot!("pcaps_outbound_tls_json", json);
    insta::assert_snapshot!("pcaps_outbound_tls", replay("outbound-tls.pcap", RULES_REDIRECT, &[]));
}

#[test]
fn inbound_http_is_delivered_through_virtual_inbound() {
    let table = replay("inbound-http.pcap", RULES_REDIRECT, &[]);
    assert!(table.contains("virtualInbound") && table.contains("delivered"), "{table}");
    insta::assert_snapshot!("pcaps_inbound_http", table);
}

#[test]
fn dns_answer_names_the_vip_flows_after_it() {
    let table = replay("dns-then-vip.pcap", RULES_DNS, &[]);
    assert!(table.contains("name from DNS #1"), "{table}");
    insta::assert_snapshot!("pcaps_dns_then_vip", table);
    // With the name in the snapshot's table, pilot-agent's DNS proxy answers the query itself.
    let named =
        replay("dns-then-vip.pcap", RULES_DNS, &["--name", "vm.example.com=240.240.0.5", "--format", "csv"]);
    insta::assert_snapshot!("pcaps_dns_then_vip_named_csv", named);
    let flow = replay("dns-then-vip.pcap", RULES_DNS, &["--flow", "3"]);
    assert!(flow.contains("vm.example.com resolves to 240.240.0.5"), "{flow}");
    // The same flow handed to explain: the report's title is the flow, its name still resolves.
    let why = replay("dns-then-vip.pcap", RULES_DNS, &["--flow", "3", "--explain"]);
    assert!(why.starts_with("flow 3: tcp 10.244.0.5:"), "{why}");
    assert!(why.contains("Ending: leaves pod"), "{why}");
    assert!(why.contains("Why:"), "{why}");
}

/// The captures were taken in the pod 10.244.0.5 (pcaps/README.md). Given another address, no
/// flow involves the pod: none is walked as if it had arrived on the pod's eth0 (which would
/// end in made-up `left` or `envoy_response` rows); each is `not_this_pod`, counted in the
/// summary, and a note names the addresses the capture does hold.
#[test]
fn a_wrong_pod_ip_walks_nothing_and_names_the_captures_addresses() {
    let table = replay_as("inbound-http.pcap", RULES_REDIRECT, "10.244.0.99", &[]);
    let rows: Vec<&str> = table.lines().skip(1).take_while(|l| !l.is_empty()).collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert!(rows.iter().all(|r| r.contains(" not_this_pod ")), "{table}");
    assert!(table.contains("\nsummary\n       2  not_this_pod  -\n"), "{table}");
    assert!(table.contains("2 flows, 0 traces, 0 disagree with the capture, 2 not this pod\n"), "{table}");
    assert!(
        table.contains(
            "note: 2 flows involve none of pod productpage's addresses (10.244.0.99), so they are \
             not walked"
        ),
        "{table}"
    );
    assert!(table.contains("busiest addresses: 10.244.0.5 (2 flows), 10.244.1.9 (1 flow)\n"), "{table}");

    let json = replay_as("inbound-http.pcap", RULES_REDIRECT, "10.244.0.99", &["--format", "json"]);
    let v: Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(v["flows"][0]["ending"], "not_this_pod");
    assert_eq!(v["flows"][0]["paths"], 0);
    assert_eq!(v["not_this_pod"]["flows"], 2);
    assert_eq!(v["not_this_pod"]["pod_addresses"][0], "10.244.0.99");
    assert_eq!(v["not_this_pod"]["busiest"][0]["address"], "10.244.0.5");

    let flow = replay_as("inbound-http.pcap", RULES_REDIRECT, "10.244.0.99", &["--flow", "0"]);
    assert!(flow.starts_with("flow 0: not traced: 10.244.1.9:"), "{flow}");
    assert!(flow.contains("involves none of pod productpage's addresses (10.244.0.99)"), "{flow}");
}

/// With the right address, the note and the count are absent: every flow involves the pod.
#[test]
fn the_right_pod_ip_has_no_flow_of_another_host() {
    let json = replay("outbound-http.pcap", RULES_REDIRECT, &["--format", "json"]);
    let v: Value = serde_json::from_str(&json).expect("JSON");
    assert!(v.get("not_this_pod").is_none(), "{json}");
    let table = replay("outbound-http.pcap", RULES_REDIRECT, &[]);
    assert!(!table.contains("not this pod") && !table.contains("not_this_pod"), "{table}");
}
