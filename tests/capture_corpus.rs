//! Every capture of the shared corpus (`pcap/`) reads to the end without panic; what each
//! file's MANIFEST row states (packet count, records cut by snaplen, SNI, Host, DNS names) is
//! what the reader and the flow table find. Every prefix of a few files reads without panic.

mod common;
#[path = "common/corpus.rs"]
mod corpus;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use meshpath::capture::{Capture, Fault, FaultKind, Flow, FlowTable, Format};

struct Summary {
    format: Format,
    packets: u64,
    /// Records with caplen < origlen.
    cut: u64,
    decoded: u64,
    faults: Vec<Fault>,
    interfaces: BTreeSet<u32>,
    vlan_tags: BTreeSet<u8>,
    sub_microsecond: bool,
    flows: Vec<Flow>,
}

fn summarize(path: &Path) -> Summary {
    let bytes = std::fs::read(path).unwrap();
    let mut cap = Capture::open(&bytes[..]).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut table = FlowTable::new();
    let (mut cut, mut decoded, mut sub_us) = (0, 0, false);
    let (mut interfaces, mut vlan_tags) = (BTreeSet::new(), BTreeSet::new());
    while let Some(p) = cap.next_packet() {
        cut += u64::from(p.caplen < p.origlen);
        interfaces.insert(p.interface);
        sub_us |= p.ts_nanos % 1000 != 0;
        if let Some(d) = &p.decoded {
            decoded += 1;
            vlan_tags.insert(d.vlan_tags);
        }
        table.add(&p);
    }
    Summary {
        format: cap.format(),
        packets: cap.packets_read(),
        cut,
        decoded,
        faults: cap.faults().to_vec(),
        interfaces,
        vlan_tags,
        sub_microsecond: sub_us,
        flows: table.into_flows(),
    }
}

/// `pkts=N` / `truncated=N` from the bracketed tail of a MANIFEST `covers` cell.
fn manifest_number(covers: &str, key: &str) -> Option<u64> {
    let tail = &covers[covers.rfind('[')?..];
    let at = tail.find(&format!("{key}="))? + key.len() + 1;
    tail[at..].split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

fn snis(s: &Summary) -> Vec<&str> {
    s.flows.iter().filter_map(|f| f.sniffed.tls.as_ref()?.sni.as_deref()).collect()
}

fn hosts(s: &Summary) -> Vec<&str> {
    s.flows.iter().filter_map(|f| f.sniffed.http.as_ref()?.host.as_deref()).collect()
}

fn dns_names(s: &Summary) -> BTreeSet<&str> {
    s.flows.iter().flat_map(|f| f.sniffed.dns_questions.iter().map(|q| q.name.as_str())).collect()
}

fn alpn_of<'a>(s: &'a Summary, sni: &str) -> Vec<&'a str> {
    s.flows
        .iter()
        .filter_map(|f| f.sniffed.tls.as_ref())
        .find(|t| t.sni.as_deref() == Some(sni))
        .map(|t| t.alpn.iter().map(String::as_str).collect())
        .unwrap_or_default()
}

fn fault_kinds(s: &Summary) -> Vec<(u64, FaultKind)> {
    s.faults.iter().map(|f| (f.index, f.kind)).collect()
}

/// What the MANIFEST's prose says about a file, checked against the summary.
fn check_stated(name: &str, s: &Summary) {
    match name {
        "http1_get_host_ethernet.pcap" | "http1_vlan8021q.pcap" | "http1_qinq_double-8021q.pcap" => {
            assert_eq!(hosts(s), vec!["bro.org"]);
            let tags = match name {
                "http1_vlan8021q.pcap" => 1,
                "http1_qinq_double-8021q.pcap" => 2,
                _ => 0,
            };
            assert_eq!(s.vlan_tags, BTreeSet::from([tags]));
            assert_eq!(s.flows.len(), 1);
        }
        "ipv6_dstopts_http09.pcap" => {
            let paths: BTreeSet<_> =
                s.flows.iter().filter_map(|f| Some(f.sniffed.http.as_ref()?.path.as_str())).collect();
            assert_eq!(paths, BTreeSet::from(["/bad.html"]));
            assert!(hosts(s).is_empty(), "no Host header");
            assert!(s.flows.iter().all(|f| f.server.is_ipv6() && f.server.port() == 80));
        }
        "tls13_sni_alpn-h2_sll2.pcap" => {
            assert_eq!(snis(s), vec!["zeek.org"]);
            assert_eq!(alpn_of(s, "zeek.org"), vec!["h2", "http/1.1"]);
        }
        "tls12_sni_ethernet.pcap" => assert_eq!(snis(s), vec!["www.lilawelt.net"]),
        "tls13_ech_outer-sni.pcap" => {
            assert!(!snis(s).is_empty() && snis(s).iter().all(|n| *n == "cloudflare-ech.com"));
            assert_eq!(alpn_of(s, "cloudflare-ech.com").first(), Some(&"h2"));
        }
        "tls13_large-clienthello_x25519kyber.pcap" => {
            assert_eq!(snis(s), vec!["lh3.google.com"]);
            assert_eq!(alpn_of(s, "lh3.google.com").first(), Some(&"h2"));
        }
        "http-connect_then-tls_null-linktype.pcap" => {
            let http = s.flows[0].sniffed.http.as_ref().unwrap();
            assert_eq!(
                (http.method.as_str(), http.host.as_deref()),
                ("CONNECT", Some("secure.newegg.com:443"))
            );
            assert!(s.flows[0].client.ip().is_loopback() && s.flows[0].client.is_ipv6());
        }
        "http1_sll2_loopback.pcap" => assert_eq!(hosts(s), vec!["localhost:8000", "localhost:8000"]),
        "http1_ethernet-zero-mac_loopback.pcap" => assert_eq!(hosts(s), vec!["localhost:56789"; 2]),
        "h2c_prior-knowledge_sll.pcapng" => {
            assert!(matches!(s.format, Format::PcapNg));
            assert_eq!(s.flows.len(), 1);
            assert!(s.flows[0].sniffed.h2_preface);
            assert!(s.flows[0].start_missing, "the capture starts mid-connection");
        }
        "dns_udp_query_response.pcap" | "dns_tcp.pcap" => {
            assert_eq!(dns_names(s), BTreeSet::from(["www.tcpdump.org"]));
            assert!(s.flows[0].sniffed.dns_addresses().count() > 0, "answers");
        }
        "pcapng_two-interfaces_dns.pcapng" => {
            assert_eq!(s.interfaces, BTreeSet::from([0, 1]));
            assert!(dns_names(s).contains("www.apple.com") && dns_names(s).contains("google.com"));
        }
        "linktype228_ipv4.pcap" | "raw101_ipv4.pcap" | "linktype229_ipv6.pcap" | "raw101_ipv6.pcap" => {
            assert_eq!(s.decoded, 1);
        }
        "sll2_icmp_v4v6_loopback.pcap" => {
            assert_eq!(s.decoded, 4, "ICMP and ICMPv6 echo; the other records are ARP");
            assert!(s.flows.is_empty());
        }
        "qinq_8021ad_88a8.pcap" => assert_eq!(s.decoded, 0, "ARP behind an 802.1ad and an 802.1Q tag"),
        "pcapng_vlan_qinq_pcp_dei.pcapng" => assert_eq!(s.vlan_tags, BTreeSet::from([0, 1, 2])),
        "sll_tcp-handshake_nanosecond.pcap" => {
            assert!(matches!(s.format, Format::Pcap { nanosecond: true, .. }));
            assert!(s.sub_microsecond);
            assert!(!s.flows[0].start_missing && s.flows[0].server.port() == 80);
        }
        "misnamed_classic-pcap_raw.pcapng" => {
            assert!(matches!(s.format, Format::Pcap { .. }), "detected by magic, not by name");
            assert_eq!(snis(s), vec!["www.1084bets10.com"]);
        }
        "malformed_caplen-beyond-eof.pcap" => {
            assert_eq!(fault_kinds(s), vec![(0, FaultKind::TruncatedRecord)]);
        }
        "malformed_snaplen1_caplen8.pcap" => {
            assert_eq!(fault_kinds(s), vec![(0, FaultKind::CaplenBeyondSnaplen), (0, FaultKind::SnaplenCut)]);
        }
        "malformed_snaplen1_raw.pcap" => assert_eq!(fault_kinds(s), vec![(0, FaultKind::SnaplenCut)]),
        "truncated_snaplen68_tcp.pcap" | "truncated_snaplen50_null-linktype.pcap" => {
            assert!(s.faults.iter().all(|f| f.kind == FaultKind::SnaplenCut));
            assert_eq!(s.flows.len(), 1, "the cut TCP headers still give ports");
        }
        "empty_header-only.pcap" | "empty_no-packets.pcapng" => assert!(s.faults.is_empty()),
        _ => {}
    }
}

fn corpus() -> Option<(Vec<PathBuf>, String)> {
    let dir = match corpus::dir("pcap") {
        Ok(d) => d,
        Err(reason) => {
            common::skip("capture corpus", reason);
            return None;
        }
    };
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    let mut files = corpus::files("pcap", ".pcap").unwrap();
    files.extend(corpus::files("pcap", ".pcapng").unwrap());
    files.sort();
    Some((files, manifest))
}

#[test]
fn every_corpus_capture_reads_to_the_end_as_its_manifest_says() {
    let Some((files, manifest)) = corpus() else { return };
    let mut rows = 0;
    for line in manifest.lines().skip(1) {
        let cells: Vec<&str> = line.split('\t').collect();
        let (Some(name), Some(covers)) = (cells.first(), cells.get(4)) else { continue };
        rows += 1;
        let path = files.iter().find(|p| p.file_name().is_some_and(|n| n == *name));
        let path = path.unwrap_or_else(|| panic!("{name} is in MANIFEST.tsv but not on disk"));
        let s = summarize(path);
        for f in &s.faults {
            println!("{name}: {f}");
        }
        let pkts = manifest_number(covers, "pkts").unwrap();
        assert_eq!(s.packets, pkts, "{name}: packet count");
        assert_eq!(s.cut, manifest_number(covers, "truncated").unwrap(), "{name}: records cut short");
        let snaplen_faults = s.faults.iter().filter(|f| f.kind == FaultKind::SnaplenCut).count() as u64;
        assert_eq!(snaplen_faults, s.cut, "{name}: every cut record is reported");
        if covers.contains("err=") {
            assert!(!s.faults.is_empty(), "{name}: the stated error is reported");
        }
        check_stated(name, &s);
    }
    assert_eq!(rows, files.len(), "every capture file has a MANIFEST row");
}

#[test]
fn every_prefix_of_some_corpus_files_reads_without_panic() {
    let Some((files, _)) = corpus() else { return };
    let chosen = [
        "pcapng_two-interfaces_dns.pcapng",
        "h2c_prior-knowledge_sll.pcapng",
        "tls13_sni_alpn-h2_sll2.pcap",
        "dns_tcp.pcap",
        "truncated_snaplen68_tcp.pcap",
        "malformed_caplen-beyond-eof.pcap",
    ];
    for name in chosen {
        let Some(path) = files.iter().find(|p| p.file_name().is_some_and(|n| n == name)) else { continue };
        let bytes = std::fs::read(path).unwrap();
        let full = summarize(path).packets;
        for n in 0..=bytes.len() {
            let Ok(mut cap) = Capture::open(&bytes[..n]) else { continue };
            let mut table = FlowTable::new();
            while let Some(p) = cap.next_packet() {
                table.add(&p);
            }
            assert!(cap.packets_read() <= full, "{name} prefix {n}");
            // Unless the prefix ends on a record boundary, the partial record is reported.
            let partial = cap.bytes_read() < n as u64;
            let reported = cap.faults().iter().any(|f| f.kind == FaultKind::TruncatedRecord);
            assert_eq!(partial, reported, "{name} prefix {n}: {:?}", cap.faults());
        }
    }
}
