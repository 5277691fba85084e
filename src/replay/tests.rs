//! Unit tests of the replay: flows written as captures, walked through the productpage fixture.

use std::net::SocketAddr;

use etherparse::PacketBuilder;

use super::*;
use crate::capture::writer::PcapWriter;
use crate::capture::{linktype, stitch_redirects, Capture, FlowTable};
use crate::engine::Pod;
use crate::envoy::parse_dump;
use crate::istio::Conventions;
use crate::netfilter::eval::Program;
use crate::netfilter::parse::{parse, ParseOptions};

const RULES: &str = include_str!("../../scenarios/istio-1.25-redirect.v4.iptables-save");
const DUMP: &str = include_str!("../../tests/fixtures/mesh/productpage.istio-1.25.config_dump.json");

fn mesh() -> Mesh {
    let program = Program::new(parse("rules", RULES, ParseOptions::default()).unwrap().ruleset).unwrap();
    let pod = Pod::new(
        "productpage",
        &["10.244.0.5/24".parse().unwrap()],
        Some((program, RULES.into())),
        None,
        Some(parse_dump(DUMP.as_bytes()).unwrap()),
        vec![crate::netns::parse_listen("tcp:0.0.0.0:9080").unwrap()],
    );
    Mesh { pods: vec![pod], names: Default::default() }
}

fn v4(a: SocketAddr) -> [u8; 4] {
    match a.ip() {
        std::net::IpAddr::V4(v) => v.octets(),
        std::net::IpAddr::V6(_) => unreachable!(),
    }
}

/// One TCP packet without payload.
fn tcp(src: &str, dst: &str, syn: bool, ack: bool) -> Vec<u8> {
    let (s, d): (SocketAddr, SocketAddr) = (src.parse().unwrap(), dst.parse().unwrap());
    let mut b = PacketBuilder::ipv4(v4(s), v4(d), 64).tcp(s.port(), d.port(), 1, 1024);
    if syn {
        b = b.syn();
    }
    if ack {
        b = b.ack(2);
    }
    let mut data = Vec::new();
    b.write(&mut data, &[]).unwrap();
    data
}

/// One UDP datagram.
fn udp(src: &str, dst: &str, payload: &[u8]) -> Vec<u8> {
    let (s, d): (SocketAddr, SocketAddr) = (src.parse().unwrap(), dst.parse().unwrap());
    let mut data = Vec::new();
    PacketBuilder::ipv4(v4(s), v4(d), 64).udp(s.port(), d.port()).write(&mut data, payload).unwrap();
    data
}

/// A DNS response for `name` (type A) with the given addresses.
fn dns_answer(name: &str, addrs: &[[u8; 4]]) -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, addrs.len() as u8, 0, 0, 0, 0];
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    for a in addrs {
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4]);
        m.extend_from_slice(a);
    }
    m
}

/// Raw IPv4 packets as a pcap, read into flows, redirected legs stitched.
fn read(packets: &[Vec<u8>]) -> Vec<Flow> {
    let mut w = PcapWriter::new(Vec::new(), linktype::RAW, 65535, false).unwrap();
    for (i, data) in packets.iter().enumerate() {
        w.write_packet(i as u64 * 1000, data, data.len() as u32).unwrap();
    }
    let mut cap = Capture::open(std::io::Cursor::new(w.into_inner())).unwrap();
    let mut table = FlowTable::new();
    while let Some(p) = cap.next_packet() {
        table.add(&p);
    }
    let local = ["10.244.0.5".parse().unwrap()];
    stitch_redirects(table.flows_mut(), &local, &Conventions::ISTIO.redirect_ports());
    table.into_flows()
}

/// The rows of a replay.
fn rows(r: &Replay<'_>) -> Vec<Row> {
    r.rows().collect()
}

/// (src, dst, syn, ack) TCP packets without payload, read into flows.
fn flows(packets: &[(&str, &str, bool, bool)]) -> Vec<Flow> {
    read(&packets.iter().map(|(s, d, syn, ack)| tcp(s, d, *syn, *ack)).collect::<Vec<_>>())
}

#[test]
fn inbound_from_outside_is_delivered_and_agrees() {
    let f = flows(&[
        ("10.244.1.9:51000", "10.244.0.5:9080", true, false),
        ("10.244.0.5:9080", "10.244.1.9:51000", true, true),
    ]);
    let r = rows(&replay(&mut mesh(), 0, &f));
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].side, RowSide::Outside);
    assert_eq!(r[0].ending, "delivered", "{:?}", r[0]);
    assert_eq!(r[0].disagrees, None);
}

#[test]
fn redirected_leg_points_to_its_flow_and_is_not_traced() {
    let f = flows(&[
        ("10.244.0.5:40000", "127.0.0.1:15001", true, false),
        ("10.96.0.20:9080", "10.244.0.5:40000", true, true),
    ]);
    let r = replay(&mut mesh(), 0, &f);
    assert_eq!(r.len(), 2);
    assert_eq!(r.traces, 1);
    let (summary, r) = (r.summary.clone(), rows(&r));
    assert_eq!((r[0].ending.as_str(), r[0].leg_of), ("leg", Some(1)));
    assert_eq!(r[0].trace, None);
    assert_eq!(r[1].side, RowSide::App);
    assert_eq!(
        summary.iter().map(|s| (s.ending.as_str(), s.flows)).collect::<Vec<_>>(),
        [("left", 1), ("leg", 1)]
    );
}

#[test]
fn dns_answers_name_later_flows_and_their_traces() {
    let f = read(&[
        tcp("10.244.0.5:40000", "240.240.0.5:80", true, false),
        udp("10.244.0.5:50000", "127.0.0.1:15053", b"query"),
        udp("10.96.0.10:53", "10.244.0.5:50000", &dns_answer("vm.example.com", &[[240, 240, 0, 5]])),
        tcp("10.244.0.5:40001", "240.240.0.5:80", true, false),
    ]);
    let mut m = mesh();
    let r = rows(&replay(&mut m, 0, &f));
    assert!(m.names.is_empty(), "the mesh's names are restored");
    let names: Vec<(Option<&str>, Option<FlowId>)> =
        r.iter().map(|r| (r.name.as_deref(), r.name_from)).collect();
    // Before the answer the address has no name; the DNS query leg is stitched to the reply
    // flow that shows kube-dns; after the answer the address is named, from flow 2.
    assert_eq!(
        names,
        [(None, None), (None, None), (Some("vm.example.com"), None), (Some("vm.example.com"), Some(2))]
    );
    assert_eq!((r[1].ending.as_str(), r[1].leg_of), ("leg", Some(2)));
    // The first and the last flow differ only by the client port but not in what the trace
    // knows: two traces, the last one starts from the name.
    let (a, b) = (r[0].trace.unwrap(), r[3].trace.unwrap());
    assert_ne!(a, b);
    let lookup = |flow: usize| {
        let kept = replay_keeping(&mut mesh(), 0, &f, Some(flow)).kept.unwrap();
        assert_eq!(kept.flow, flow);
        kept.trace.paths[0].steps.iter().any(|s| {
            matches!(&s.detail, crate::engine::Detail::Resolve { name, addr: Some(a) }
                if name == "vm.example.com" && a.to_string() == "240.240.0.5")
        })
    };
    assert!(!lookup(0));
    assert!(lookup(3));
}

#[test]
fn cname_answers_name_the_address_by_the_name_asked_for() {
    // www.example.com CNAME edge.example.net, edge.example.net A 192.0.2.7
    let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0];
    m.extend_from_slice(b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
    m.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 30, 0, 18]);
    m.extend_from_slice(b"\x04edge\x07example\x03net\x00");
    m.extend_from_slice(&[0xc0, 33, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 192, 0, 2, 7]);
    let f = read(&[
        udp("10.96.0.10:53", "10.244.0.5:50000", &m),
        tcp("10.244.0.5:40001", "192.0.2.7:443", true, false),
    ]);
    let r = rows(&replay(&mut mesh(), 0, &f));
    assert_eq!(r[1].name.as_deref(), Some("www.example.com"), "{:?}", f[0].sniffed);
}

#[test]
fn envoys_upstream_connections_pair_with_their_downstream() {
    let f = flows(&[
        // Outbound: the leg on lo, the original destination, then Envoy's connection out to
        // another address than the endpoint it should pick (10.244.1.7:9080).
        ("10.244.0.5:40000", "127.0.0.1:15001", true, false),
        ("10.96.0.20:9080", "10.244.0.5:40000", true, true),
        ("10.244.0.5:40010", "10.96.0.20:9080", true, false),
        // Inbound: a client outside, then Envoy's connection to the app from 127.0.0.6.
        ("10.244.1.9:51000", "10.244.0.5:9080", true, false),
        ("127.0.0.6:41000", "10.244.0.5:9080", true, false),
    ]);
    let kept = replay_keeping(&mut mesh(), 0, &f, Some(2)).kept.unwrap();
    let r = rows(&replay(&mut mesh(), 0, &f));
    let sides: Vec<(&str, Option<FlowId>)> = r.iter().map(|r| (r.side.as_str(), r.upstream_of)).collect();
    assert_eq!(
        sides,
        [("app", None), ("app", None), ("envoy", Some(1)), ("outside", None), ("envoy", Some(3))]
    );
    assert_eq!(kept.start.from, From::Process { uid: 1337, gid: 1337 }, "Istio's proxy uid");
    assert_eq!(r[4].ending, "delivered", "{:?}", r[4]);
    assert_eq!(r[4].disagrees, None);
    // Opaque bytes to 10.96.0.20:9080 take the port's PassthroughFilterChain: its predicted
    // endpoint is the original destination, which is where the connection went.
    assert_eq!(r[1].endpoint.as_deref(), Some("10.96.0.20:9080"));
    assert_eq!(r[2].disagrees, None);
}

/// One TCP segment (ACK) carrying `payload`.
fn tcp_data(src: &str, dst: &str, seq: u32, payload: &[u8]) -> Vec<u8> {
    let (s, d): (SocketAddr, SocketAddr) = (src.parse().unwrap(), dst.parse().unwrap());
    let mut data = Vec::new();
    PacketBuilder::ipv4(v4(s), v4(d), 64)
        .tcp(s.port(), d.port(), seq, 1024)
        .ack(2)
        .write(&mut data, payload)
        .unwrap();
    data
}

/// A MySQL server speaks first (its greeting) and the client answers: replay takes the
/// client for a server-first one, which Istio's sniffed outbound listener for 9080 leaves
/// waiting in tls_inspector (listener_filters_timeout 0s; envoy
/// source/common/listener_manager/active_tcp_socket.cc).
#[test]
fn first_payload_from_the_server_makes_a_server_first_client() {
    let (c, s) = ("10.244.0.5:40100", "10.96.0.20:9080");
    let f = read(&[
        tcp(c, s, true, false),
        tcp(s, c, true, true),
        tcp_data(s, c, 2, b"J\0\0\0\x0a8.0.36\0"),
        tcp_data(c, s, 2, b"\x20\0\0\x01login"),
    ]);
    assert_eq!(start_of(&f[0], &mesh(), 0).client, ClientBytes::ServerFirst);
    let r = rows(&replay(&mut mesh(), 0, &f));
    assert_eq!(r[0].ending, "stalled", "{:?}", r[0]);
    // The client speaking first is not.
    let f = read(&[tcp(c, s, true, false), tcp(s, c, true, true), tcp_data(c, s, 2, b"\x16\x03\x01")]);
    assert_ne!(start_of(&f[0], &mesh(), 0).client, ClientBytes::ServerFirst);
}

/// Flows that differ only by the client's port are walked once: one trace class, one outcome
/// shared by every flow's small record (docs/reliability.md, "Memory per flow in `replay`").
#[test]
fn flows_of_one_class_share_one_walk_and_one_outcome() {
    let packets: Vec<Vec<u8>> =
        (0..50).map(|i| tcp(&format!("10.244.1.9:{}", 40000 + i), "10.244.0.5:9080", true, false)).collect();
    let f = read(&packets);
    let r = replay(&mut mesh(), 0, &f);
    assert_eq!((r.len(), r.traces), (50, 1));
    // The two outcomes every replay holds (not this pod, leg) and the one of these flows.
    assert_eq!(r.tables.outcomes.len(), 3);
    assert!(r.rows().all(|x| x.trace == Some(0) && x.ending == "delivered"), "{:?}", r.row(0));
    assert!(r.kept.is_none(), "no trace is kept unless asked for");
}

/// Each of Envoy's connections to the app claims the latest downstream not yet claimed
/// (docs/replay.md, "Envoy's own connections"), through the lists of offers kept per address.
#[test]
fn envoys_connections_claim_the_latest_downstreams_in_turn() {
    let (app, envoy) = ("10.244.0.5:9080", "127.0.0.6");
    let mut packets: Vec<(String, String)> =
        (0..3).map(|i| (format!("10.244.1.9:{}", 51000 + i), app.to_string())).collect();
    packets.extend((0..4).map(|i| (format!("{envoy}:{}", 41000 + i), app.to_string())));
    let p: Vec<(&str, &str, bool, bool)> =
        packets.iter().map(|(s, d)| (s.as_str(), d.as_str(), true, false)).collect();
    let r = rows(&replay(&mut mesh(), 0, &flows(&p)));
    let claims: Vec<Option<FlowId>> = r.iter().map(|x| x.upstream_of).collect();
    assert_eq!(claims, [None, None, None, Some(2), Some(1), Some(0), None]);
}
