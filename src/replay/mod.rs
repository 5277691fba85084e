//! Replaying a capture's flows through a pod: each flow's first packet becomes one [`Start`]
//! for the engine (side, addresses, protocol and what the client sent, as sniffed), walked
//! once; identical flows share one trace. The A/AAAA answers of DNS flows join the name table
//! for the flows after them, in capture order. The result is one [`Row`] per flow plus a
//! summary; nothing is printed here (docs/replay.md).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use crate::capture::{DnsRecord, Flow, FlowId, Side, Sniffed, Transport};
use crate::engine::{trace, Destination, Ending, From, Mesh, MeshTrace, Pick, Start};
use crate::envoy::select::{ClientBytes, HttpRequest};
use crate::istio::Conventions;
use crate::netns::L4;

/// One flow of the capture and how meshpath predicts it goes.
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
    /// The engine start of each trace (same index): what `explain` or `trace` would take.
    pub starts: Vec<Start>,
    pub summary: Vec<SummaryLine>,
    /// The flows that involve none of the pod's addresses (row ending [`NOT_THIS_POD`]).
    pub not_this_pod: NotThisPod,
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

/// Walks every flow in `flows` (redirected legs already stitched) through pod `pod` of `mesh`,
/// in first-seen order. The DNS answers a flow carries are added to `mesh.names` for the flows
/// after it (a name the capture resolved replaces the snapshot's addresses for that name);
/// `mesh.names` is as it was when this returns.
pub fn replay(mesh: &mut Mesh, pod: usize, flows: &[Flow]) -> Replay {
    let given = mesh.names.clone();
    let out = replay_with_names(mesh, pod, flows);
    mesh.names = given;
    out
}

fn replay_with_names(mesh: &mut Mesh, pod: usize, flows: &[Flow]) -> Replay {
    let t0 = flows.iter().map(|f| f.first_nanos).min().unwrap_or(0);
    let mut out = Replay::default();
    let mut cache: BTreeMap<String, Result<usize, String>> = BTreeMap::new();
    let mut learned = Learned::default();
    let mut downstreams = Downstreams::default();
    let istio = conventions(mesh, pod);
    for f in flows {
        let mut row = base_row(f, t0, mesh, pod);
        row.name = sniffed_of(f, flows).name().map(str::to_string);
        if !involves_pod(f, mesh, pod) {
            // Not walked, and its DNS answers were not given to this pod.
            row.ending = NOT_THIS_POD.into();
            out.not_this_pod.flows += 1;
            out.rows.push(row);
            continue;
        }
        let passthrough = istio.is_inbound_passthrough_source(f.client.ip());
        let envoy = f.stitch.is_none() && (row.side == RowSide::App || passthrough);
        if envoy {
            row.upstream_of = downstreams.claim(f, flows);
            let predicted = row.upstream_of.and_then(|d| out.rows.get(d)).and_then(|d| d.endpoint.clone());
            if let Some(p) = predicted.filter(|p| *p != f.server.to_string()) {
                row.disagrees =
                    Some(format!("capture: Envoy connected to {}; predicted endpoint {p}", f.server));
            }
            if row.upstream_of.is_some() || passthrough {
                row.side = RowSide::Envoy;
            }
        }
        let dns_name = learned.by_addr.get(&f.server.ip()).cloned();
        if row.name.is_none() {
            if let Some((name, from)) = &dns_name {
                row.name = Some(name.clone());
                row.name_from = Some(*from);
            }
        }
        match f.stitch.filter(|s| s.leg == f.id) {
            Some(s) => {
                row.ending = "leg".into();
                row.leg_of = Some(s.original);
            }
            None => {
                let mut start = start_with(f, sniffed_of(f, flows), mesh, pod);
                if row.side == RowSide::Envoy {
                    start.from = From::Process { uid: istio.proxy_uid, gid: istio.proxy_gid };
                }
                if let Some((name, _)) = &dns_name {
                    by_name(&mut start, mesh, name);
                }
                // Traces may depend on the names (DNS clusters, the DNS proxy): the key holds
                // the generation of the learned names.
                let key = format!("{}|{}", learned.generation, cache_key(&start));
                let got = cache
                    .entry(key)
                    .or_insert_with(|| match trace(mesh, &start) {
                        Ok(t) => {
                            out.traces.push(t);
                            out.starts.push(start.clone());
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
        downstreams.offer(&row, f, mesh, pod);
        out.rows.push(row);
        learned.learn(f, &mut mesh.names);
    }
    out.summary = summary(&out.rows);
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

/// Connections Envoy accepted, waiting for the upstream connection it opens for each
/// (docs/replay.md, "Envoy's own connections"): in an `-i any` capture the app's redirected
/// connection shows as a leg to 15001 plus its original destination, and Envoy's connection to
/// the endpoint follows as a flow from the pod that nothing redirected; inbound, a connection
/// to the pod is followed by Envoy's connection from 127.0.0.6 to the app.
#[derive(Default)]
struct Downstreams {
    /// The server, and the endpoint predicted for it, of each downstream not yet claimed.
    by_addr: BTreeMap<SocketAddr, Vec<FlowId>>,
    claimed: Vec<bool>,
}

impl Downstreams {
    fn offer(&mut self, row: &Row, f: &Flow, mesh: &Mesh, pod: usize) {
        let port = conventions(mesh, pod).outbound_capture_port;
        let outbound = f.stitch.is_some_and(|s| s.original == f.id && s.redirect_port == port);
        let inbound =
            row.side == RowSide::Outside && mesh.pods.get(pod).is_some_and(|p| p.owns(f.server.ip()));
        if !(outbound || inbound) {
            return;
        }
        let endpoint = row.endpoint.as_deref().and_then(|e| e.parse::<SocketAddr>().ok());
        for a in std::iter::once(f.server).chain(endpoint.filter(|e| *e != f.server)) {
            self.by_addr.entry(a).or_default().push(f.id);
        }
    }

    /// The latest unclaimed downstream that started before `f` and went to `f`'s server (as
    /// its destination or its predicted endpoint).
    fn claim(&mut self, f: &Flow, flows: &[Flow]) -> Option<FlowId> {
        let list = self.by_addr.get_mut(&f.server)?;
        let pos = list.iter().rposition(|&d| {
            !self.claimed.get(d).copied().unwrap_or(false)
                && flows.get(d).is_some_and(|x| x.first_nanos <= f.first_nanos)
        })?;
        let d = list.remove(pos);
        if self.claimed.len() <= d {
            self.claimed.resize(d + 1, false);
        }
        self.claimed[d] = true;
        Some(d)
    }
}

/// Names learned from the capture's DNS answers so far.
#[derive(Default)]
struct Learned {
    /// Address → (the name the client asked for, the flow whose answer gave it).
    by_addr: BTreeMap<IpAddr, (String, FlowId)>,
    /// Bumped each time the name table changes.
    generation: u64,
}

impl Learned {
    /// Adds flow `f`'s A/AAAA answers: each name (and, through CNAMEs, the name asked for)
    /// maps to the addresses of this flow's answers, in answer order.
    fn learn(&mut self, f: &Flow, names: &mut crate::envoy::select::NameTable) {
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
            self.by_addr.insert(ip, (asked, f.id));
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

fn base_row(f: &Flow, t0: u64, mesh: &Mesh, pod: usize) -> Row {
    Row {
        index: f.id,
        time: f.first_nanos.saturating_sub(t0) as f64 / 1e9,
        proto: f.transport.name(),
        client: f.client.to_string(),
        server: f.server.to_string(),
        side: if is_app(f, mesh, pod) { RowSide::App } else { RowSide::Outside },
        name: f.sniffed.name().map(str::to_string),
        name_from: None,
        ending: String::new(),
        detail: None,
        listener: None,
        cluster: None,
        endpoint: None,
        paths: 0,
        packets: f.packets(),
        bytes: f.bytes(),
        leg_of: None,
        upstream_of: None,
        disagrees: None,
        trace: None,
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
    f.stitch.filter(|s| s.original == f.id).and_then(|s| flows.get(s.leg)).map_or(own, |leg| &leg.sniffed)
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

/// What a trace depends on: everything of the start except the client's port.
fn cache_key(s: &Start) -> String {
    let src_ip = s.src.map(|a| a.ip().to_string()).unwrap_or_default();
    format!(
        "{:?}|{src_ip}|{:?}|{:?}|{:?}|{:?}|{:?}",
        s.from, s.dst, s.proto, s.client, s.request, s.dns_query
    )
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
    let hop =
        |pick: fn(&crate::engine::EnvoyHop) -> Option<&String>| p.envoy.iter().find_map(|h| pick(h).cloned());
    row.listener = hop(|h| h.listener.as_ref());
    row.cluster = hop(|h| h.cluster.as_ref()).or_else(|| match &p.ending {
        Ending::Blackhole { cluster, .. } => Some(cluster.clone()),
        Ending::Left { cluster, .. } => cluster.clone(),
        _ => None,
    });
    row.endpoint = hop(|h| h.endpoint.as_ref());
    row.disagrees = disagreement(&p.ending, f).or(row.disagrees.take());
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
mod tests;
