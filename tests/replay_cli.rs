//! `meshpath replay` end to end: tables of corpus captures walked through the productpage
//! fixture pod (tests/fixtures/mesh/README.md) with the capture's client as the pod address,
//! and a capture written here with two SYNs from the pod (to a ClusterIP and to an external
//! address, the latter reset by the server).

mod common;
#[path = "common/corpus.rs"]
mod corpus;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use etherparse::PacketBuilder;
use serde_json::Value;

use meshpath::capture::linktype;
use meshpath::capture::writer::PcapWriter;

const MESH: &str = "tests/fixtures/mesh";
const RULES_1_25: &str = "scenarios/istio-1.25-redirect.v4.iptables-save";

fn pod_args(pod_ip: &str) -> Vec<String> {
    [
        "--pod",
        "productpage",
        "--iptables",
        RULES_1_25,
        "--envoy",
        &format!("{MESH}/productpage.istio-1.25.config_dump.json"),
        "--pod-ip",
        pod_ip,
        "--listen",
        "tcp:0.0.0.0:9080",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn replay(capture: &Path, pod_ip: &str, extra: &[&str]) -> String {
    let out = Command::cargo_bin("meshpath")
        .expect("binary")
        .arg("replay")
        .arg(capture)
        .args(pod_args(pod_ip))
        .args(extra)
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

fn corpus_pcap(name: &str) -> Option<PathBuf> {
    match corpus::dir("pcap") {
        Ok(d) if d.join(name).is_file() => Some(d.join(name)),
        Ok(d) => {
            common::skip(&format!("replay {name}"), format!("{} is missing", d.join(name).display()));
            None
        }
        Err(reason) => {
            common::skip(&format!("replay {name}"), reason);
            None
        }
    }
}

#[test]
fn http1_get_with_host_leaves_through_passthrough() {
    let Some(p) = corpus_pcap("http1_get_host_ethernet.pcap") else { return };
    let table = replay(&p, "141.142.228.5", &[]);
    assert!(table.contains("bro.org") && table.contains("PassthroughCluster"), "{table}");
    insta::assert_snapshot!("replay_http1_get_host", table);
}

#[test]
fn tls_sni_table_and_json() {
    let Some(p) = corpus_pcap("tls12_sni_ethernet.pcap") else { return };
    let table = replay(&p, "192.168.6.107", &[]);
    insta::assert_snapshot!("replay_tls12_sni", table);
    let json: Value =
        serde_json::from_str(&replay(&p, "192.168.6.107", &["--format", "json"])).expect("JSON");
    assert_eq!(json["schema"], "meshpath.replay/v1");
    assert_eq!(json["flows"][0]["name"], "www.lilawelt.net");
    assert_eq!(json["flows"][0]["side"], "app");
    assert_eq!(json["flows"][0]["ending"], "left");
}

fn tcp(src: ([u8; 4], u16), dst: ([u8; 4], u16), syn: bool, rst: bool, ack: bool) -> Vec<u8> {
    let mut b = PacketBuilder::ipv4(src.0, dst.0, 64).tcp(src.1, dst.1, 1000, 1024);
    if syn {
        b = b.syn();
    }
    if rst {
        b = b.rst();
    }
    if ack {
        b = b.ack(1001);
    }
    let mut out = Vec::new();
    b.write(&mut out, &[]).expect("packet");
    out
}

#[test]
fn written_capture_cluster_ip_and_external() {
    const POD: [u8; 4] = [10, 244, 0, 5];
    let reviews = ([10, 96, 0, 20], 9080);
    let external = ([93, 184, 216, 34], 443);
    let packets = [
        tcp((POD, 40000), reviews, true, false, false),
        tcp((POD, 40001), external, true, false, false),
        tcp(external, (POD, 40001), false, true, true),
        tcp((POD, 40002), reviews, true, false, false),
    ];
    let mut w = PcapWriter::new(Vec::new(), linktype::RAW, 65535, false).expect("header");
    for (i, p) in packets.iter().enumerate() {
        let ts = 1_700_000_000_000_000_000 + i as u64 * 1_000_000;
        w.write_packet(ts, p, p.len() as u32).expect("record");
    }
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("replay_two_syns.pcap");
    std::fs::write(&path, w.into_inner()).expect("write capture");

    let v: Value = serde_json::from_str(&replay(&path, "10.244.0.5", &["--format", "json"])).expect("JSON");
    let flows = v["flows"].as_array().expect("flows");
    assert_eq!(flows.len(), 3, "{v}");
    // A bare SYN says nothing to Envoy's HTTP chain: the ClusterIP port's listener takes it to
    // its default PassthroughFilterChain; the external :443 stays on virtualOutbound.
    let endings: Vec<(&str, &str, &str)> = flows
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or("");
            (s("ending"), s("listener"), s("cluster"))
        })
        .collect();
    assert_eq!(
        endings,
        [
            ("left", "0.0.0.0_9080", "PassthroughCluster"),
            ("left", "virtualOutbound", "PassthroughCluster"),
            ("left", "0.0.0.0_9080", "PassthroughCluster"),
        ]
    );
    assert!(flows[1]["disagrees"].as_str().is_some_and(|d| d.contains("RST")), "{v}");
    assert!(flows[0].get("disagrees").is_none());
    let table = replay(&path, "10.244.0.5", &[]);
    // Flows 0 and 2 differ only in the client port: one trace serves both.
    assert!(table.contains("3 flows, 2 traces, 1 disagree"), "{table}");
    insta::assert_snapshot!("replay_written_two_syns", table);
    // The same pod from a scenario file (which also holds pod reviews, not involved here).
    let by_scenario = Command::cargo_bin("meshpath")
        .expect("binary")
        .arg("replay")
        .arg(&path)
        .args(["--scenario", "tests/fixtures/scenarios/pass/bookinfo.scenario.yaml", "--pod", "productpage"])
        .output()
        .expect("runs");
    assert!(by_scenario.status.success(), "{}", String::from_utf8_lossy(&by_scenario.stderr));
    assert_eq!(String::from_utf8_lossy(&by_scenario.stdout), table);
    let csv = replay(&path, "10.244.0.5", &["--format", "csv"]);
    assert_eq!(csv.lines().count(), 4, "{csv}");
    let one = replay(&path, "10.244.0.5", &["--flow", "1"]);
    assert!(one.starts_with("flow 1: tcp 10.244.0.5:40001 -> 93.184.216.34:443 (app)"), "{one}");
}

#[test]
fn dns_corpus_csv_and_json() {
    // Two interfaces, DNS queries and answers (a CNAME chain among them) from 172.17.0.2 and
    // 10.0.0.4; the pod is 10.0.0.4.
    let Some(p) = corpus_pcap("pcapng_two-interfaces_dns.pcapng") else { return };
    insta::assert_snapshot!("replay_two_interfaces_dns_csv", replay(&p, "10.0.0.4", &["--format", "csv"]));
    insta::assert_snapshot!("replay_two_interfaces_dns_json", replay(&p, "10.0.0.4", &["--format", "json"]));
}
