//! Replaying a capture's flows through a pod: each flow's first packet becomes one [`Start`]
//! for the engine (side, addresses, protocol and what the client sent, as sniffed), walked
//! once; identical flows share one trace. The result is one [`Row`] per flow plus a summary;
//! nothing is printed here (docs/replay.md).

use std::collections::BTreeMap;

use serde::Serialize;

use super::{trace, Destination, Ending, From, Mesh, MeshTrace, Pick, Start, APP_UID};
use crate::capture::{Flow, FlowId, Side, Transport};
use crate::envoy::select::{ClientBytes, HttpRequest};
use crate::netns::L4;

/// One flow of the capture and how meshpath predicts it goes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub index: FlowId,
    /// Seconds from the capture's first flow packet.
    pub time: f64,
    pub proto: &'static str,
    pub client: String,
    pub server: String,
    /// `app` (the client is the pod) or `outside`.
    pub side: &'static str,
    /// SNI, else HTTP Host, else the first DNS question.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The ending kind of the first path (`leg` for a redirected leg, `error` when the walk failed).
    pub ending: String,
    /// Status and/or response flag of an Envoy response; the reason of an error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listener: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// How many paths the walk found (weighted branches); 0 when not traced.
    pub paths: usize,
    pub packets: u64,
    pub bytes: u64,
    /// For a redirected leg: the flow (index) that shows the original destination.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leg_of: Option<FlowId>,
    /// What the capture shows that contradicts the prediction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disagrees: Option<String>,
    /// Index into [`Replay::traces`].
    #[serde(skip)]
    pub trace: Option<usize>,
}

/// How many flows ended one way through one cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SummaryLine {
    pub ending: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    pub flows: u64,
}

/// The rows, the distinct traces they point to and the summary.
#[derive(Debug, Clone, Default)]
pub struct Replay {
    pub rows: Vec<Row>,
    pub traces: Vec<MeshTrace>,
    pub summary: Vec<SummaryLine>,
}

/// Walks every flow in `flows` (redirected legs already stitched) through pod `pod` of `mesh`.
pub fn replay(mesh: &Mesh, pod: usize, flows: &[Flow]) -> Replay {
    let t0 = flows.iter().map(|f| f.first_nanos).min().unwrap_or(0);
    let mut out = Replay::default();
    let mut cache: BTreeMap<String, Result<usize, String>> = BTreeMap::new();
    for f in flows {
        let mut row = base_row(f, t0, mesh, pod);
        match f.stitch.filter(|s| s.leg == f.id) {
            Some(s) => {
                row.ending = "leg".into();
                row.leg_of = Some(s.original);
            }
            None => {
                let start = start_of(f, mesh, pod);
                let key = cache_key(&start);
                let got = cache
                    .entry(key)
                    .or_insert_with(|| match trace(mesh, &start) {
                        Ok(t) => {
                            out.traces.push(t);
                            Ok(out.traces.len() - 1)
                        }
                        Err(e) => Err(e.to_string()),
                    })
                    .clone();
                match got {
                    Ok(i) => {
                        row.trace = Some(i);
                        if let Some(t) = out.traces.get(i) {
                            fill(&mut row, t, f);
                        }
                    }
                    Err(e) => {
                        row.ending = "error".into();
                        row.detail = Some(e);
                    }
                }
            }
        }
        out.rows.push(row);
    }
    out.summary = summary(&out.rows);
    out
}

fn base_row(f: &Flow, t0: u64, mesh: &Mesh, pod: usize) -> Row {
    Row {
        index: f.id,
        time: f.first_nanos.saturating_sub(t0) as f64 / 1e9,
        proto: f.transport.name(),
        client: f.client.to_string(),
        server: f.server.to_string(),
        side: if is_app(f, mesh, pod) { "app" } else { "outside" },
        name: f.sniffed.name().map(str::to_string),
        ending: String::new(),
        detail: None,
        listener: None,
        cluster: None,
        endpoint: None,
        paths: 0,
        packets: f.packets(),
        bytes: f.bytes(),
        leg_of: None,
        disagrees: None,
        trace: None,
    }
}

fn is_app(f: &Flow, mesh: &Mesh, pod: usize) -> bool {
    mesh.pods.get(pod).is_some_and(|p| p.owns(f.client.ip()))
}

/// The engine's start for a flow's first packet.
pub fn start_of(f: &Flow, mesh: &Mesh, pod: usize) -> Start {
    let from = if is_app(f, mesh, pod) {
        From::Process { uid: APP_UID, gid: APP_UID }
    } else {
        From::Outside { src: f.client.ip() }
    };
    let (client, request) = client_bytes(f);
    Start {
        pod,
        from,
        dst: Destination::Addr(f.server),
        proto: match f.transport {
            Transport::Tcp => L4::Tcp,
            Transport::Udp => L4::Udp,
        },
        src: Some(f.client),
        client,
        request,
        pick: Pick::All,
    }
}

fn client_bytes(f: &Flow) -> (ClientBytes, Option<HttpRequest>) {
    let s = &f.sniffed;
    if let Some(t) = &s.tls {
        return (ClientBytes::Tls { sni: t.sni.clone(), alpn: t.alpn.clone() }, None);
    }
    if let Some(h) = &s.http {
        let bytes = if h.minor_version == 0 { ClientBytes::Http10 } else { ClientBytes::Http1 };
        let req = HttpRequest {
            host: h.host.clone(),
            path: h.path.clone(),
            method: h.method.clone(),
            headers: Vec::new(),
        };
        return (bytes, Some(req));
    }
    if s.h2_preface {
        return (ClientBytes::H2c, None);
    }
    (ClientBytes::Opaque, None)
}

/// What a trace depends on: everything of the start except the client's port.
fn cache_key(s: &Start) -> String {
    let src_ip = s.src.map(|a| a.ip().to_string()).unwrap_or_default();
    format!("{:?}|{src_ip}|{:?}|{:?}|{:?}|{:?}", s.from, s.dst, s.proto, s.client, s.request)
}

fn fill(row: &mut Row, t: &MeshTrace, f: &Flow) {
    row.paths = t.paths.len();
    let Some(p) = t.paths.first() else {
        row.ending = "none".into();
        return;
    };
    row.ending = p.ending.kind().to_string();
    row.detail = match &p.ending {
        Ending::EnvoyResponse { status, flag, .. } => {
            let parts: Vec<String> =
                status.iter().map(|s| s.to_string()).chain(flag.iter().cloned()).collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        }
        _ => None,
    };
    let hop = |pick: fn(&super::EnvoyHop) -> Option<&String>| p.envoy.iter().find_map(|h| pick(h).cloned());
    row.listener = hop(|h| h.listener.as_ref());
    row.cluster = hop(|h| h.cluster.as_ref()).or_else(|| match &p.ending {
        Ending::Blackhole { cluster, .. } => Some(cluster.clone()),
        Ending::Left { cluster, .. } => cluster.clone(),
        _ => None,
    });
    row.endpoint = hop(|h| h.endpoint.as_ref());
    row.disagrees = disagreement(&p.ending, f);
}

/// When the capture itself contradicts the predicted ending (docs/replay.md, "disagrees").
fn disagreement(e: &Ending, f: &Flow) -> Option<String> {
    let kind = e.kind();
    match e {
        Ending::Delivered { .. } | Ending::Left { .. } if f.rst_from == Some(Side::Server) => {
            Some(format!("capture: RST from the server; predicted {kind}"))
        }
        Ending::Refused { .. } | Ending::Dropped { .. } if server_replied(f) => {
            Some(format!("capture: the server replied; predicted {kind}"))
        }
        _ => None,
    }
}

/// A reply that is not a reset: SYN+ACK (TCP) or any packet back (UDP).
fn server_replied(f: &Flow) -> bool {
    match f.transport {
        Transport::Tcp => f.syn_ack_seen || f.to_client.payload_bytes > 0,
        Transport::Udp => f.to_client.packets > 0,
    }
}

fn summary(rows: &[Row]) -> Vec<SummaryLine> {
    let mut counts: BTreeMap<(String, Option<String>), u64> = BTreeMap::new();
    for r in rows {
        *counts.entry((r.ending.clone(), r.cluster.clone())).or_default() += 1;
    }
    counts.into_iter().map(|((ending, cluster), flows)| SummaryLine { ending, cluster, flows }).collect()
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use etherparse::PacketBuilder;

    use super::*;
    use crate::capture::writer::PcapWriter;
    use crate::capture::{linktype, stitch_redirects, Capture, FlowTable, REDIRECT_PORTS};
    use crate::engine::Pod;
    use crate::envoy::parse_dump;
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

    /// (src, dst, syn, ack) TCP packets without payload, as a raw-IPv4 pcap, read into flows.
    fn flows(packets: &[(&str, &str, bool, bool)]) -> Vec<Flow> {
        let mut w = PcapWriter::new(Vec::new(), linktype::RAW, 65535, false).unwrap();
        for (i, (src, dst, syn, ack)) in packets.iter().enumerate() {
            let (s, d): (SocketAddr, SocketAddr) = (src.parse().unwrap(), dst.parse().unwrap());
            let ip = |a: SocketAddr| match a.ip() {
                std::net::IpAddr::V4(v) => v.octets(),
                std::net::IpAddr::V6(_) => unreachable!(),
            };
            let mut b = PacketBuilder::ipv4(ip(s), ip(d), 64).tcp(s.port(), d.port(), 1, 1024);
            if *syn {
                b = b.syn();
            }
            if *ack {
                b = b.ack(2);
            }
            let mut data = Vec::new();
            b.write(&mut data, &[]).unwrap();
            w.write_packet(i as u64 * 1000, &data, data.len() as u32).unwrap();
        }
        let mut cap = Capture::open(std::io::Cursor::new(w.into_inner())).unwrap();
        let mut table = FlowTable::new();
        while let Some(p) = cap.next_packet() {
            table.add(&p);
        }
        let local = ["10.244.0.5".parse().unwrap()];
        stitch_redirects(table.flows_mut(), &local, &REDIRECT_PORTS);
        table.into_flows()
    }

    #[test]
    fn inbound_from_outside_is_delivered_and_agrees() {
        let f = flows(&[
            ("10.244.1.9:51000", "10.244.0.5:9080", true, false),
            ("10.244.0.5:9080", "10.244.1.9:51000", true, true),
        ]);
        let r = replay(&mesh(), 0, &f);
        assert_eq!(r.rows.len(), 1);
        assert_eq!(r.rows[0].side, "outside");
        assert_eq!(r.rows[0].ending, "delivered", "{:?}", r.rows[0]);
        assert_eq!(r.rows[0].disagrees, None);
    }

    #[test]
    fn redirected_leg_points_to_its_flow_and_is_not_traced() {
        let f = flows(&[
            ("10.244.0.5:40000", "127.0.0.1:15001", true, false),
            ("10.96.0.20:9080", "10.244.0.5:40000", true, true),
        ]);
        let r = replay(&mesh(), 0, &f);
        assert_eq!(r.rows.len(), 2);
        assert_eq!((r.rows[0].ending.as_str(), r.rows[0].leg_of), ("leg", Some(1)));
        assert_eq!(r.rows[0].trace, None);
        assert_eq!(r.rows[1].side, "app");
        assert_eq!(r.traces.len(), 1);
        assert_eq!(
            r.summary.iter().map(|s| (s.ending.as_str(), s.flows)).collect::<Vec<_>>(),
            [("left", 1), ("leg", 1)]
        );
    }
}
