//! Replaying a capture's flows through a pod: each flow's first packet becomes one [`Start`]
//! for the engine (side, addresses, protocol and what the client sent, as sniffed), walked
//! once; identical flows share one trace. The A/AAAA answers of DNS flows join the name table
//! for the flows after them, in capture order. The result is one [`Row`] per flow plus a
//! summary; nothing is printed here (docs/replay.md).

mod downstreams;
mod record;
mod rows;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use self::downstreams::Downstreams;
use self::record::{
    id32, Check, ClassKey, Disagrees, Endpoint, FlowRecord, Interner, Outcome, Part, Tables, NONE,
};
use crate::capture::{DnsRecord, Flow, FlowId, Side, Sniffed, Transport};
use crate::engine::{trace, Destination, From, Mesh, MeshTrace, Pick, Start};
use crate::envoy::select::{ClientBytes, HttpRequest};
use crate::istio::Conventions;
use crate::netns::L4;
use crate::util::fasthash::FastMap;

/// Who opened a flow, as the pod sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RowSide {
    /// The client is the pod's app.
    App,
    /// Envoy's own upstream connection.
    Envoy,
    /// The client is outside the pod.
    Outside,
}

impl RowSide {
    pub fn as_str(self) -> &'static str {
        match self {
            RowSide::App => "app",
            RowSide::Envoy => "envoy",
            RowSide::Outside => "outside",
        }
    }
}

/// One flow of the capture and how meshpath predicts it goes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub index: FlowId,
    /// Seconds from the capture's first flow packet.
    pub time: f64,
    pub proto: &'static str,
    pub client: String,
    pub server: String,
    /// Who opened the flow, as the pod sees it.
    pub side: RowSide,
    /// SNI, else HTTP Host, else the first DNS question, else the name an earlier DNS answer
    /// in the capture gave the server's address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// When `name` comes from a DNS answer: the flow that carried it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_from: Option<FlowId>,
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
    /// For Envoy's own upstream connection (`side` = `envoy`): the downstream flow it serves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_of: Option<FlowId>,
    /// What the capture shows that contradicts the prediction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disagrees: Option<String>,
    /// The flow's trace class: flows with the same class were walked identically (one walk).
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

/// The replay of a capture's flows: per flow a small record (docs/reliability.md, "Memory per
/// flow in `replay`"), the [`Row`]s made from it one at a time ([`Replay::rows`]), the summary.
/// Traces are not kept: flows walked identically share one walk, and only the trace of the
/// flow asked for ([`replay_keeping`]) is kept.
#[derive(Debug)]
pub struct Replay<'a> {
    flows: &'a [Flow],
    /// The time of the capture's first flow packet.
    t0: u64,
    records: Vec<FlowRecord>,
    tables: Tables,
    /// How many distinct traces the flows took (flows walked identically count once).
    pub traces: usize,
    /// The flow asked for, walked: its trace and the engine start (what `explain` or
    /// `trace` would take).
    pub kept: Option<Kept>,
    pub summary: Vec<SummaryLine>,
    /// The flows that involve none of the pod's addresses (row ending [`NOT_THIS_POD`]).
    pub not_this_pod: NotThisPod,
}

/// One flow's trace, kept by [`replay_keeping`].
#[derive(Debug, Clone)]
pub struct Kept {
    pub flow: FlowId,
    pub trace: MeshTrace,
    pub start: Start,
}

/// The row ending of a flow that involves none of the pod's addresses: neither end is one of
/// them, and it is not a loopback flow. Such a flow is not walked (it would be walked as if
/// it arrived on the pod's eth0, which it did not).
pub const NOT_THIS_POD: &str = "not_this_pod";

/// Flows of another host, or a wrong `--pod-ip`: how many, the pod's addresses, and the
/// addresses the whole capture holds most often (to say which host it comes from).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NotThisPod {
    pub flows: u64,
    pub pod: String,
    pub pod_addresses: Vec<IpAddr>,
    /// At most [`BUSIEST_SHOWN`] addresses (loopback left out), by flows then address.
    pub busiest: Vec<AddressFlows>,
}

/// How many flows of the capture have this address at one end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddressFlows {
    pub address: IpAddr,
    pub flows: u64,
}

/// How many of the capture's busiest addresses [`NotThisPod`] lists.
pub const BUSIEST_SHOWN: usize = 5;

/// The outcomes every replay holds first: a flow of another host, a redirected leg.
const OUTCOME_NOT_THIS_POD: u32 = 0;
const OUTCOME_LEG: u32 = 1;

/// Walks every flow in `flows` (redirected legs already stitched) through pod `pod` of `mesh`,
/// in first-seen order. The DNS answers a flow carries are added to `mesh.names` for the flows
/// after it (a name the capture resolved replaces the snapshot's addresses for that name);
/// `mesh.names` is as it was when this returns.
pub fn replay<'a>(mesh: &mut Mesh, pod: usize, flows: &'a [Flow]) -> Replay<'a> {
    replay_keeping(mesh, pod, flows, None)
}

/// As [`replay`], keeping the trace and start of flow `keep` (when it is walked).
pub fn replay_keeping<'a>(
    mesh: &mut Mesh,
    pod: usize,
    flows: &'a [Flow],
    keep: Option<FlowId>,
) -> Replay<'a> {
    let given = mesh.names.clone();
    let out = replay_with_names(mesh, pod, flows, keep);
    mesh.names = given;
    out
}

fn replay_with_names<'a>(mesh: &mut Mesh, pod: usize, flows: &'a [Flow], keep: Option<FlowId>) -> Replay<'a> {
    let t0 = flows.iter().map(|f| f.first_nanos).min().unwrap_or(0);
    let mut tables = Tables::default();
    tables.outcomes.id(Outcome::bare(NOT_THIS_POD));
    tables.outcomes.id(Outcome::bare("leg"));
    let mut out = Replay {
        flows,
        t0,
        records: Vec::with_capacity(flows.len()),
        tables,
        traces: 0,
        kept: None,
        summary: Vec::new(),
        not_this_pod: NotThisPod::default(),
    };
    // Trace class → (class number or NONE for a failed walk, outcome).
    let mut cache: FastMap<ClassKey, (u32, u32)> = FastMap::default();
    let mut parts: Interner<Part> = Interner::default();
    let mut learned = Learned::default();
    let mut downstreams = Downstreams::default();
    let istio = conventions(mesh, pod);
    for f in flows {
        let mut rec = FlowRecord {
            outcome: OUTCOME_NOT_THIS_POD,
            class: NONE,
            name: NONE,
            name_from: NONE,
            leg_of: NONE,
            upstream_of: NONE,
            side: if is_app(f, mesh, pod) { RowSide::App } else { RowSide::Outside },
            disagrees: Disagrees::No,
        };
        if !involves_pod(f, mesh, pod) {
            // Not walked, and its DNS answers were not given to this pod.
            out.not_this_pod.flows += 1;
            out.records.push(rec);
            continue;
        }
        let passthrough = istio.is_inbound_passthrough_source(f.client.ip());
        let envoy = f.stitch.is_none() && (rec.side == RowSide::App || passthrough);
        if envoy {
            let upstream_of = downstreams.claim(f, flows);
            rec.upstream_of = upstream_of.map_or(NONE, id32);
            let predicted = upstream_of.and_then(|d| out.endpoint_of(d));
            if predicted.is_some_and(|p| p != f.server.to_string()) {
                rec.disagrees = Disagrees::EnvoyElsewhere;
            }
            if upstream_of.is_some() || passthrough {
                rec.side = RowSide::Envoy;
            }
        }
        let dns_name = learned.by_addr.get(&f.server.ip()).copied();
        if sniffed_of(f, flows).name().is_none() {
            if let Some((name, from)) = dns_name {
                rec.name = name;
                rec.name_from = id32(from);
            }
        }
        match f.stitch.as_deref().filter(|s| s.leg == f.id) {
            Some(s) => {
                rec.outcome = OUTCOME_LEG;
                rec.leg_of = id32(s.original);
            }
            None => {
                let mut start = start_with(f, sniffed_of(f, flows), mesh, pod);
                if rec.side == RowSide::Envoy {
                    start.from = From::Process { uid: istio.proxy_uid, gid: istio.proxy_gid };
                }
                if let Some((name, _)) = dns_name {
                    let name = out.tables.strings.get(name).map(|n| n.to_string()).unwrap_or_default();
                    by_name(&mut start, mesh, &name);
                }
                // Traces may depend on the names (DNS clusters, the DNS proxy): the key holds
                // the generation of the learned names.
                let key = rows::class_key(&start, learned.generation, &mut parts);
                let (class, outcome) = match cache.get(&key) {
                    Some(&got) => {
                        if keep == Some(f.id) && got.0 != NONE {
                            out.kept =
                                trace(mesh, &start).ok().map(|trace| Kept { flow: f.id, trace, start });
                        }
                        got
                    }
                    None => {
                        let got = match trace(mesh, &start) {
                            Ok(t) => {
                                let class = id32(out.traces);
                                out.traces += 1;
                                let outcome = rows::outcome_of(&t, f, &mut out.tables);
                                if keep == Some(f.id) {
                                    out.kept = Some(Kept { flow: f.id, trace: t, start });
                                }
                                (class, outcome)
                            }
                            Err(e) => {
                                let detail = Some(out.tables.string(&e.to_string()));
                                (NONE, out.tables.outcomes.id(Outcome { detail, ..Outcome::bare("error") }))
                            }
                        };
                        cache.insert(key, got);
                        got
                    }
                };
                rec.class = class;
                rec.outcome = outcome;
                if let Some(d) = disagreement(&out.tables.outcome(outcome), f) {
                    rec.disagrees = d;
                }
            }
        }
        let port = istio.outbound_capture_port;
        let outbound = f.stitch.as_deref().is_some_and(|s| s.original == f.id && s.redirect_port == port);
        let inbound =
            rec.side == RowSide::Outside && mesh.pods.get(pod).is_some_and(|p| p.owns(f.server.ip()));
        if outbound || inbound {
            let endpoint = match out.tables.outcome(rec.outcome).endpoint {
                Endpoint::Other(i) => out.tables.strings.get(i).and_then(|e| e.parse::<SocketAddr>().ok()),
                Endpoint::None | Endpoint::Server => None,
            };
            downstreams.offer(f, endpoint);
        }
        out.records.push(rec);
        learned.learn(f, &mut mesh.names, &mut out.tables);
    }
    out.summary = rows::summary(&out);
    if out.not_this_pod.flows > 0 {
        out.not_this_pod.pod = mesh.pods.get(pod).map(|p| p.name.clone()).unwrap_or_default();
        out.not_this_pod.pod_addresses = pod_addresses(mesh, pod);
        out.not_this_pod.busiest = busiest_addresses(flows);
    }
    out
}

/// The conventions of pod `pod` (Istio's when there is no such pod).
fn conventions(mesh: &Mesh, pod: usize) -> Conventions {
    mesh.pods.get(pod).map_or(Conventions::ISTIO, |p| p.istio)
}

/// Whether flow `f` was seen in pod `pod`: one end is one of the pod's addresses, or both ends
/// are loopback addresses (the pod's own `lo`).
fn involves_pod(f: &Flow, mesh: &Mesh, pod: usize) -> bool {
    let (c, s) = (f.client.ip(), f.server.ip());
    (c.is_loopback() && s.is_loopback()) || mesh.pods.get(pod).is_some_and(|p| p.owns(c) || p.owns(s))
}

fn pod_addresses(mesh: &Mesh, pod: usize) -> Vec<IpAddr> {
    mesh.pods
        .get(pod)
        .and_then(|p| p.netns.interface("eth0"))
        .map(|i| i.addrs.iter().map(|a| a.addr()).collect())
        .unwrap_or_default()
}

/// The addresses at either end of the most flows, loopback left out.
fn busiest_addresses(flows: &[Flow]) -> Vec<AddressFlows> {
    let mut counts: BTreeMap<IpAddr, u64> = BTreeMap::new();
    for f in flows {
        for ip in [f.client.ip(), f.server.ip()] {
            if !ip.is_loopback() {
                *counts.entry(ip).or_default() += 1;
            }
        }
    }
    let mut list: Vec<AddressFlows> =
        counts.into_iter().map(|(address, flows)| AddressFlows { address, flows }).collect();
    list.sort_by(|a, b| b.flows.cmp(&a.flows).then(a.address.cmp(&b.address)));
    list.truncate(BUSIEST_SHOWN);
    list
}

/// Names learned from the capture's DNS answers so far.
#[derive(Default)]
struct Learned {
    /// Address → (the name the client asked for, interned; the flow whose answer gave it).
    by_addr: BTreeMap<IpAddr, (u32, FlowId)>,
    /// Bumped each time the name table changes.
    generation: u64,
}

impl Learned {
    /// Adds flow `f`'s A/AAAA answers: each name (and, through CNAMEs, the name asked for)
    /// maps to the addresses of this flow's answers, in answer order.
    fn learn(&mut self, f: &Flow, names: &mut crate::envoy::select::NameTable, tables: &mut Tables) {
        let s = &f.sniffed;
        if s.dns_answers.is_empty() {
            return;
        }
        let mut per_name: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
        for (name, ip) in s.dns_addresses() {
            let asked = alias_head(s, name);
            for n in [name, asked.as_str()] {
                let v = per_name.entry(n.to_string()).or_default();
                if !v.contains(&ip) {
                    v.push(ip);
                }
            }
            self.by_addr.insert(ip, (tables.string(&asked), f.id));
        }
        for (name, addrs) in per_name {
            if names.get(&name) != Some(&addrs) {
                names.insert(name, addrs);
                self.generation += 1;
            }
        }
    }
}

/// The name a CNAME chain in the same answers starts from (`name` itself without one).
fn alias_head(s: &crate::capture::Sniffed, name: &str) -> String {
    let mut head = name.to_string();
    for _ in 0..8 {
        let owner = s.dns_answers.iter().find_map(|a| match &a.record {
            DnsRecord::Cname(target) if *target == head && a.name != head => Some(a.name.clone()),
            _ => None,
        });
        match owner {
            Some(o) => head = o,
            None => break,
        }
    }
    head
}

/// A flow to an address a DNS answer named: the walk starts from the name when the name table
/// resolves it to that very address (so the trace shows the lookup and goes where the capture
/// went); otherwise it keeps the address.
fn by_name(start: &mut Start, mesh: &Mesh, name: &str) {
    if let Destination::Addr(a) = start.dst {
        if mesh.names.get(name).and_then(|v| v.first()) == Some(&a.ip()) {
            start.dst = Destination::Host { name: name.to_string(), port: a.port() };
        }
    }
}

fn is_app(f: &Flow, mesh: &Mesh, pod: usize) -> bool {
    mesh.pods.get(pod).is_some_and(|p| p.owns(f.client.ip()))
}

/// The engine's start for a flow's first packet, with what the flow itself says it sends.
pub fn start_of(f: &Flow, mesh: &Mesh, pod: usize) -> Start {
    start_with(f, &f.sniffed, mesh, pod)
}

/// What the client of flow `f` sent: for the original-destination flow of a redirected
/// connection, the client's bytes travel on the leg (to 15001), so they are read there.
pub fn sniffed_of<'a>(f: &'a Flow, flows: &'a [Flow]) -> &'a Sniffed {
    let own = &f.sniffed;
    if own.tls.is_some() || own.http.is_some() || own.h2_preface || !own.dns_questions.is_empty() {
        return own;
    }
    f.stitch
        .as_deref()
        .filter(|s| s.original == f.id)
        .and_then(|s| flows.get(s.leg))
        .map_or(own, |leg| &leg.sniffed)
}

fn start_with(f: &Flow, sniffed: &Sniffed, mesh: &Mesh, pod: usize) -> Start {
    let from = if is_app(f, mesh, pod) {
        let istio = conventions(mesh, pod);
        From::Process { uid: istio.app_uid, gid: istio.app_gid }
    } else {
        From::Outside { src: f.client.ip() }
    };
    let (client, request) =
        if server_spoke_first(f) { (ClientBytes::ServerFirst, None) } else { client_bytes(sniffed) };
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
        // A DNS query: pilot-agent's DNS proxy answers its first question (docs/trace.md, "DNS").
        dns_query: sniffed.dns_questions.first().map(|q| q.name.clone()),
        pick: Pick::All,
        icmp_type: None,
    }
}

/// A TCP connection seen from its SYN whose first payload came from the server: a
/// server-first protocol (the client waited for the server's greeting).
fn server_spoke_first(f: &Flow) -> bool {
    f.transport == Transport::Tcp
        && !f.start_missing
        && f.first_payload_from == Some(crate::capture::Side::Server)
}

fn client_bytes(s: &Sniffed) -> (ClientBytes, Option<HttpRequest>) {
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

/// When the capture itself contradicts the predicted ending (docs/replay.md, "disagrees").
fn disagreement(o: &Outcome, f: &Flow) -> Option<Disagrees> {
    match o.check {
        Check::ServerReset if f.rst_from == Some(Side::Server) => Some(Disagrees::RstFromServer),
        Check::ServerReply if server_replied(f) => Some(Disagrees::ServerReplied),
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

#[cfg(test)]
mod tests;
