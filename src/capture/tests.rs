//! Byte-exact fixtures built with etherparse's PacketBuilder: reader formats and faults, link
//! types, flows and stitching.

use std::net::{IpAddr, SocketAddr};

use etherparse::{PacketBuilder, VlanId};

use super::writer::PcapWriter;
use super::*;

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];

/// TCP flags for [`tcp_v4`].
#[derive(Default, Clone, Copy)]
struct F {
    syn: bool,
    ack: Option<u32>,
    fin: bool,
    rst: bool,
}

const SYN: F = F { syn: true, ack: None, fin: false, rst: false };

fn ack(n: u32) -> F {
    F { ack: Some(n), ..F::default() }
}

/// An IPv4/TCP packet without link header.
fn tcp_v4(src: ([u8; 4], u16), dst: ([u8; 4], u16), seq: u32, f: F, payload: &[u8]) -> Vec<u8> {
    let mut b = PacketBuilder::ipv4(src.0, dst.0, 64).tcp(src.1, dst.1, seq, 1024);
    if f.syn {
        b = b.syn();
    }
    if let Some(a) = f.ack {
        b = b.ack(a);
    }
    if f.fin {
        b = b.fin();
    }
    if f.rst {
        b = b.rst();
    }
    let mut out = Vec::new();
    b.write(&mut out, payload).unwrap();
    out
}

fn udp_v4(src: ([u8; 4], u16), dst: ([u8; 4], u16), payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv4(src.0, dst.0, 64).udp(src.1, dst.1).write(&mut out, payload).unwrap();
    out
}

fn ethernet(ip: &[u8]) -> Vec<u8> {
    let mut out = MAC_B.to_vec();
    out.extend_from_slice(&MAC_A);
    let v = ip.first().map_or(4, |b| b >> 4);
    out.extend_from_slice(if v == 6 { &[0x86, 0xdd] } else { &[0x08, 0x00] });
    out.extend_from_slice(ip);
    out
}

/// A legacy pcap file of raw-IP records at 1 ms intervals.
fn pcap_of(link_type: u32, records: &[Vec<u8>], nanosecond: bool, big_endian: bool) -> Vec<u8> {
    let mut w = PcapWriter::with_byte_order(Vec::new(), link_type, 65535, nanosecond, big_endian).unwrap();
    for (i, r) in records.iter().enumerate() {
        w.write_packet(1_700_000_000_000_000_000 + i as u64 * 1_000_123, r, r.len() as u32).unwrap();
    }
    w.into_inner()
}

/// (index, time, interface, link type, destination) of each packet.
type Seen = (u64, u64, u32, u32, Option<SocketAddr>);

fn read_all(bytes: &[u8]) -> (Vec<Seen>, Vec<Fault>) {
    let mut cap = Capture::open(bytes).unwrap();
    let mut out = Vec::new();
    while let Some(p) = cap.next_packet() {
        let dst = p.decoded.as_ref().map(|d| SocketAddr::new(d.dst, d.dst_port));
        out.push((p.index, p.ts_nanos, p.interface, p.link_type, dst));
    }
    (out, cap.faults().to_vec())
}

#[test]
fn legacy_pcap_both_byte_orders_and_resolutions() {
    let pkt = tcp_v4(([10, 0, 0, 1], 40000), ([10, 96, 0, 10], 80), 1, SYN, b"");
    let want_dst: SocketAddr = "10.96.0.10:80".parse().unwrap();
    for (nanos, be) in [(false, false), (true, false), (false, true), (true, true)] {
        let file = pcap_of(linktype::RAW, &[pkt.clone(), pkt.clone()], nanos, be);
        let mut cap = Capture::open(&file[..]).unwrap();
        assert!(
            matches!(cap.format(), Format::Pcap { big_endian, nanosecond, .. } if big_endian == be && nanosecond == nanos)
        );
        let (pkts, faults) = read_all(&file);
        assert!(faults.is_empty());
        assert_eq!(pkts.len(), 2);
        let frac = if nanos { 1_000_123 } else { 1_000_000 };
        assert_eq!(pkts[1].1 - pkts[0].1, frac, "nanos={nanos} be={be}");
        assert_eq!(pkts[1].4, Some(want_dst));
        assert_eq!(cap.drain(), 2);
    }
}

#[test]
fn unknown_magic_and_short_files_are_errors() {
    assert!(matches!(Capture::open(&b"GET / HTTP/1.1\r\n"[..]), Err(CaptureError::UnknownFormat { .. })));
    assert!(matches!(Capture::open(&[0xd4u8, 0xc3][..]), Err(CaptureError::TooShort { len: 2 })));
    assert!(matches!(
        Capture::open(&[0xd4u8, 0xc3, 0xb2, 0xa1, 2, 0][..]),
        Err(CaptureError::TooShort { .. })
    ));
}

#[test]
fn last_partial_record_and_oversized_lengths_are_faults() {
    let pkt = tcp_v4(([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 80), 1, SYN, b"");
    let file = pcap_of(linktype::RAW, &[pkt.clone(), pkt.clone()], false, false);
    // Cut inside the second record's data, then inside its header.
    for cut in [file.len() - 3, 24 + 16 + pkt.len() + 5] {
        let (pkts, faults) = read_all(&file[..cut]);
        assert_eq!(pkts.len(), 1);
        assert_eq!(faults.len(), 1, "{faults:?}");
        assert_eq!((faults[0].index, faults[0].kind), (1, FaultKind::TruncatedRecord));
    }
    let mut huge = file.clone();
    huge[24 + 8..24 + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    let (pkts, faults) = read_all(&huge);
    assert!(pkts.is_empty());
    assert_eq!(faults[0].kind, FaultKind::OversizedRecord);
    // Every prefix reads without panic.
    for n in 0..file.len() {
        if let Ok(mut cap) = Capture::open(&file[..n]) {
            cap.drain();
        }
    }
}

#[test]
fn snaplen_cut_records_keep_the_headers() {
    let pkt =
        ethernet(&tcp_v4(([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 80), 1, ack(1), b"GET / HTTP/1.1\r\n\r\n"));
    let mut w = PcapWriter::new(Vec::new(), linktype::ETHERNET, 60, false).unwrap();
    w.write_packet(0, &pkt[..60], pkt.len() as u32).unwrap();
    let file = w.into_inner();
    let mut cap = Capture::open(&file[..]).unwrap();
    let p = cap.next_packet().unwrap();
    let d = p.decoded.clone().unwrap();
    assert_eq!((d.dst_port, d.payload.len(), d.payload_len), (80, 6, 18));
    assert_eq!((p.caplen, p.origlen), (60, pkt.len() as u32));
    assert!(cap.next_packet().is_none());
    assert_eq!(cap.faults()[0].kind, FaultKind::SnaplenCut);
}

/// pcapng helpers (little-endian).
fn ng_block(ty: u32, body: &[u8]) -> Vec<u8> {
    let padded = body.len().div_ceil(4) * 4;
    let len = (12 + padded) as u32;
    let mut b = ty.to_le_bytes().to_vec();
    b.extend_from_slice(&len.to_le_bytes());
    b.extend_from_slice(body);
    b.resize(8 + padded, 0);
    b.extend_from_slice(&len.to_le_bytes());
    b
}

fn ng_shb() -> Vec<u8> {
    let mut body = 0x1a2b_3c4du32.to_le_bytes().to_vec();
    body.extend_from_slice(&[1, 0, 0, 0]);
    body.extend_from_slice(&(-1i64).to_le_bytes());
    ng_block(0x0a0d_0d0a, &body)
}

fn ng_idb(link_type: u16, snaplen: u32, tsresol: Option<u8>) -> Vec<u8> {
    let mut body = link_type.to_le_bytes().to_vec();
    body.extend_from_slice(&[0, 0]);
    body.extend_from_slice(&snaplen.to_le_bytes());
    if let Some(r) = tsresol {
        body.extend_from_slice(&[9, 0, 1, 0, r, 0, 0, 0]);
        body.extend_from_slice(&[0, 0, 0, 0]);
    }
    ng_block(1, &body)
}

fn ng_epb(if_id: u32, ts: u64, data: &[u8], origlen: u32) -> Vec<u8> {
    let mut body = if_id.to_le_bytes().to_vec();
    body.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
    body.extend_from_slice(&(ts as u32).to_le_bytes());
    body.extend_from_slice(&(data.len() as u32).to_le_bytes());
    body.extend_from_slice(&origlen.to_le_bytes());
    body.extend_from_slice(data);
    ng_block(6, &body)
}

#[test]
fn pcapng_interfaces_link_types_and_resolutions() {
    let ip = tcp_v4(([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 443), 1, SYN, b"");
    let mut file = ng_shb();
    file.extend(ng_idb(1, 0, None)); // Ethernet, microseconds
    file.extend(ng_idb(101, 40, Some(9))); // raw IP, nanoseconds, snaplen 40
    file.extend(ng_epb(0, 1_500_000, &ethernet(&ip), (ip.len() + 14) as u32));
    file.extend(ng_block(5, &[0; 8])); // interface statistics: skipped
    file.extend(ng_epb(1, 1_500_000_007, &ip, ip.len() as u32));
    file.extend(ng_epb(7, 0, &ip, ip.len() as u32)); // no interface 7
    file.extend(ng_block(3, &{
        let mut b = (ip.len() as u32).to_le_bytes().to_vec();
        b.extend_from_slice(&ip);
        b
    }));
    let (pkts, faults) = read_all(&file);
    let dst: SocketAddr = "10.0.0.2:443".parse().unwrap();
    assert_eq!(pkts[0], (0, 1_500_000_000, 0, 1, Some(dst)));
    assert_eq!(pkts[1], (1, 1_500_000_007, 1, 101, Some(dst)));
    assert_eq!(pkts[2].0, 3, "the damaged block keeps its index");
    assert_eq!((pkts[2].2, pkts[2].3, pkts[2].4), (0, 1, None), "simple packet block uses interface 0");
    let kinds: Vec<_> = faults.iter().map(|f| (f.index, f.kind)).collect();
    // The simple packet block's raw IP bytes read as Ethernet give an unknown ethertype: no
    // IP view, and no fault (non-IP frames are not damage).
    assert_eq!(kinds, vec![(2, FaultKind::BadBlock)]);
    // A second section resets the interfaces; every prefix reads without panic.
    for n in 0..file.len() {
        if let Ok(mut cap) = Capture::open(&file[..n]) {
            cap.drain();
        }
    }
}

#[test]
fn link_types_vlan_cooked_loopback() {
    let ip = tcp_v4(([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 8080), 1, SYN, b"");
    let dst: SocketAddr = "10.0.0.2:8080".parse().unwrap();
    let build_vlan = |double: bool| {
        let mut out = Vec::new();
        let b = PacketBuilder::ethernet2(MAC_A, MAC_B);
        let v = VlanId::try_new(10).unwrap();
        let b = if double { b.double_vlan(v, VlanId::try_new(20).unwrap()) } else { b.single_vlan(v) };
        b.ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 8080, 1, 1024)
            .syn()
            .write(&mut out, b"")
            .unwrap();
        out
    };
    let mut sll = vec![0, 4, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00];
    sll.extend_from_slice(&ip);
    let mut sll2 = vec![0x08, 0x00, 0, 0, 0, 0, 0, 1, 0, 1, 4, 6, 2, 0, 0, 0, 0, 1, 0, 0];
    sll2.extend_from_slice(&ip);
    let mut null_le = 2u32.to_le_bytes().to_vec();
    null_le.extend_from_slice(&ip);
    let mut null_be = 2u32.to_be_bytes().to_vec();
    null_be.extend_from_slice(&ip);
    let cases: Vec<(u32, Vec<u8>, u8)> = vec![
        (linktype::ETHERNET, build_vlan(false), 1),
        (linktype::ETHERNET, build_vlan(true), 2),
        (linktype::LINUX_SLL, sll, 0),
        (linktype::LINUX_SLL2, sll2, 0),
        (linktype::NULL, null_le, 0),
        (linktype::NULL, null_be, 0),
        (linktype::IPV4, ip.clone(), 0),
    ];
    for (lt, rec, tags) in cases {
        let file = pcap_of(lt, &[rec], false, false);
        let mut cap = Capture::open(&file[..]).unwrap();
        let p = cap.next_packet().unwrap();
        let d = p.decoded.clone().unwrap_or_else(|| panic!("link type {lt}"));
        assert_eq!((SocketAddr::new(d.dst, d.dst_port), d.vlan_tags), (dst, tags), "link type {lt}");
        assert!(d.tcp.unwrap().flags.syn());
    }
    // An unsupported link type is a fault, not an error.
    let file = pcap_of(147, &[ip], false, false);
    let (pkts, faults) = read_all(&file);
    assert_eq!((pkts.len(), faults[0].kind), (1, FaultKind::UnsupportedLinkType));
}

#[test]
fn ipv6_udp_and_icmp() {
    let mut v6 = Vec::new();
    PacketBuilder::ipv6([0xfd; 16], [0xfe; 16], 64).udp(5000, 53).write(&mut v6, b"\0\x01").unwrap();
    let mut icmp = Vec::new();
    PacketBuilder::ipv4([1, 1, 1, 1], [2, 2, 2, 2], 64)
        .icmpv4_echo_request(7, 1)
        .write(&mut icmp, b"hi")
        .unwrap();
    let file = pcap_of(linktype::RAW, &[v6, icmp], false, false);
    let mut cap = Capture::open(&file[..]).unwrap();
    let d = cap.next_packet().unwrap().decoded.unwrap();
    assert_eq!((d.protocol, d.dst_port, d.payload, d.ip_len), (Protocol::Udp, 53, &b"\0\x01"[..], 50));
    let d = cap.next_packet().unwrap().decoded.unwrap();
    assert_eq!((d.protocol, d.icmp, d.payload), (Protocol::Icmp, Some((8, 0)), &b"hi"[..]));
}

fn table_of(records: &[Vec<u8>]) -> FlowTable {
    let file = pcap_of(linktype::RAW, records, false, false);
    let mut cap = Capture::open(&file[..]).unwrap();
    let mut t = FlowTable::new();
    while let Some(p) = cap.next_packet() {
        t.add(&p);
    }
    t
}

const C: ([u8; 4], u16) = ([10, 0, 0, 5], 40000);
const S: ([u8; 4], u16) = ([10, 96, 0, 10], 443);

#[test]
fn tcp_flow_with_split_client_hello_and_close() {
    let hello = super::tls::tests::client_hello("reviews.default.svc.cluster.local", &["istio", "h2"]);
    let (a, b) = hello.split_at(100);
    let t = table_of(&[
        tcp_v4(C, S, 100, SYN, b""),
        tcp_v4(S, C, 900, F { syn: true, ack: Some(101), ..F::default() }, b""),
        tcp_v4(C, S, 101, ack(901), a),
        tcp_v4(C, S, 201, ack(901), b),
        tcp_v4(S, C, 901, F { fin: true, ack: Some(101), ..F::default() }, b""),
        tcp_v4(C, S, 101, F { rst: true, ..F::default() }, b""),
    ]);
    let f = &t.flows()[0];
    assert_eq!(t.flows().len(), 1);
    assert_eq!((f.client, f.server), (SocketAddr::from(C), SocketAddr::from(S)));
    assert!(!f.start_missing && f.syn_ack_seen);
    assert_eq!((f.to_server.packets, f.to_client.packets), (4, 2));
    assert_eq!(f.to_server.payload_bytes, hello.len() as u64);
    assert_eq!((f.fin_from, f.rst_from), (Some(Side::Server), Some(Side::Client)));
    let tls = f.sniffed.tls.as_ref().unwrap();
    assert_eq!(tls.sni.as_deref(), Some("reviews.default.svc.cluster.local"));
    assert_eq!(tls.alpn, vec!["istio", "h2"]);
    assert_eq!(f.sniffed.name(), Some("reviews.default.svc.cluster.local"));
}

#[test]
fn mid_stream_flow_port_reuse_and_http() {
    let req = b"POST /api HTTP/1.1\r\nHost: ratings:9080\r\nContent-Length: 0\r\n\r\n";
    let srv = ([10, 96, 0, 11], 9080);
    let t = table_of(&[
        // Server data first: the capture started mid-connection.
        tcp_v4(srv, C, 5, ack(7), b"HTTP/1.1 200 OK\r\n"),
        tcp_v4(C, srv, 7, F { rst: true, ..F::default() }, b""),
        // The same tuple reused for a new connection.
        tcp_v4(C, srv, 1000, SYN, b""),
        tcp_v4(C, srv, 1001, ack(1), req),
    ]);
    let flows = t.flows();
    assert_eq!(flows.len(), 2);
    assert!(flows[0].start_missing);
    assert_eq!(flows[0].client, SocketAddr::from(C), "the higher port is the client");
    assert!(flows[0].sniffed.http.is_none());
    assert!(!flows[1].start_missing);
    let http = flows[1].sniffed.http.as_ref().unwrap();
    assert_eq!(
        (http.method.as_str(), http.path.as_str(), http.host.as_deref()),
        ("POST", "/api", Some("ratings:9080"))
    );
}

#[test]
fn udp_dns_exchange_is_one_flow_with_answers() {
    let dns = ([10, 96, 0, 10], 53);
    let resp = super::dns::tests::response("httpbin.org", "edge.httpbin.org", [240, 240, 0, 1]);
    let mut query = resp[..12].to_vec();
    query[2] = 1;
    query[7] = 0;
    query.extend_from_slice(&resp[12..12 + 17]);
    let t = table_of(&[udp_v4(C, dns, &query), udp_v4(dns, C, &resp), udp_v4(C, ([1, 2, 3, 4], 9), b"x")]);
    assert_eq!(t.flows().len(), 2);
    let f = &t.flows()[0];
    assert_eq!((f.transport, f.to_server.packets, f.to_client.packets), (Transport::Udp, 1, 1));
    assert_eq!(f.sniffed.dns_questions[0].name, "httpbin.org");
    assert_eq!(t.dns_addresses(), vec![("edge.httpbin.org".to_string(), IpAddr::from([240, 240, 0, 1]))]);
}

#[test]
fn redirected_leg_is_stitched_to_the_original_flow() {
    let pod = [10, 0, 0, 5];
    let lo = ([127, 0, 0, 1], 15001);
    let svc = ([10, 96, 0, 10], 80);
    let other = tcp_v4(([10, 0, 0, 5], 40001), ([10, 96, 0, 12], 80), 1, SYN, b"");
    let mut t = table_of(&[
        other,
        // The client's SYN after REDIRECT, on lo.
        tcp_v4((pod, 40000), lo, 1, SYN, b""),
        // The reply, un-NATed: it shows the original destination.
        tcp_v4(svc, (pod, 40000), 9, F { syn: true, ack: Some(2), ..F::default() }, b""),
        tcp_v4((pod, 40000), lo, 2, ack(10), b"GET / HTTP/1.1\r\nHost: web\r\n\r\n"),
        // Envoy's own upstream connection does not share the client port.
        tcp_v4((pod, 50000), ([10, 1, 2, 3], 8080), 1, SYN, b""),
    ]);
    assert_eq!(t.flows().len(), 4);
    let stitches = stitch_redirects(t.flows_mut(), &[IpAddr::from(pod)], &REDIRECT_PORTS);
    let want = Stitch { leg: 1, original: 2, redirect_port: 15001, client: SocketAddr::from((pod, 40000)) };
    assert_eq!(stitches, vec![want]);
    assert_eq!(t.flows()[1].stitch.as_deref(), Some(&want));
    assert_eq!(t.flows()[2].stitch.as_deref(), Some(&want));
    assert_eq!(t.flows()[2].server, SocketAddr::from(svc));
    assert!(t.flows()[0].stitch.is_none() && t.flows()[3].stitch.is_none());
    assert_eq!(t.flows()[1].sniffed.http.as_ref().and_then(|h| h.host.as_deref()), Some("web"));
}
