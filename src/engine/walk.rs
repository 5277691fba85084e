//! The stepper: a work list of partial paths, each in one state (a packet entering a pod's
//! kernel, or a connection handed to a pod's Envoy). Kernel states run the netfilter
//! evaluator; Envoy states run Envoy's selection; each result becomes the next state or the
//! path's ending. A state seen before on the same path ends it as a loop.

use std::net::{IpAddr, SocketAddr};

use super::{
    Destination, EngineError, EnvoyHop, From, Hop, Mesh, MeshTrace, Path, Pick, Pod, Start, Step, ENVOY_UID,
};
use super::{Ending, Layer};
use crate::envoy::model::EndpointAddress;
use crate::envoy::select::{self, Outcome, Query, Upstream};
use crate::netfilter::eval::{self, Disposition, Entry, NoteKind, Probe, StepKind, Verdict};
use crate::netfilter::model::Protocol;
use crate::netns::L4;

/// The most hops (kernel or Envoy states) one path may take before it is called a loop.
pub const HOP_BUDGET: usize = 64;
/// The most paths one trace may have.
pub const MAX_PATHS: usize = 4096;
/// The socket mark Istio configures for the `original_src` listener filter.
const ORIGINAL_SRC_MARK: u32 = 1337;

#[derive(Debug, Clone)]
enum State {
    Kernel { pod: usize, entry: Entry, src: SocketAddr, dst: SocketAddr, uid: u32, gid: u32, mark: u32 },
    Envoy { pod: usize, listener: SocketAddr, orig_dst: SocketAddr, src: SocketAddr },
}

impl State {
    /// What makes two states the same place for loop detection (source ports are ephemeral).
    fn key(&self) -> String {
        match self {
            State::Kernel { pod, entry, src, dst, uid, mark, .. } => {
                format!("k{pod}:{entry:?}:{}:{dst}:{uid}:{mark}", src.ip())
            }
            State::Envoy { pod, listener, orig_dst, .. } => format!("e{pod}:{listener}:{orig_dst}"),
        }
    }
}

/// A partial path and what comes next: a state to process, or its ending.
type Next = (Partial, Result<State, Ending>);

#[derive(Debug, Clone)]
struct Partial {
    weight: f64,
    steps: Vec<Step>,
    envoy: Vec<EnvoyHop>,
    seen: Vec<(String, usize)>,
    last_cluster: Option<String>,
    proto: L4,
    /// The Envoy whose upstream connection this is (pod, HTTP or TCP proxy): a refused or
    /// dropped connection becomes that Envoy's upstream connection failure (UF).
    upstream_of: Option<(String, bool)>,
    /// Keep each hop's input in `hops` (for reports; off for plain traces).
    record: bool,
    hops: Vec<Hop>,
}

impl Partial {
    fn finish(self, ending: Ending) -> Path {
        Path { weight: self.weight, ending, envoy: self.envoy, steps: self.steps, hops: self.hops }
    }
}

/// Walks `start` through `mesh`.
pub fn trace(mesh: &Mesh, start: &Start) -> Result<MeshTrace, EngineError> {
    walk(mesh, start, false)
}

/// As [`trace`], and each path keeps its hops' inputs ([`Path::hops`]).
pub fn trace_recorded(mesh: &Mesh, start: &Start) -> Result<MeshTrace, EngineError> {
    walk(mesh, start, true)
}

fn walk(mesh: &Mesh, start: &Start, record: bool) -> Result<MeshTrace, EngineError> {
    let mut done: Vec<Path> = Vec::new();
    let first = Partial {
        weight: 1.0,
        steps: Vec::new(),
        envoy: Vec::new(),
        seen: Vec::new(),
        last_cluster: None,
        proto: start.proto,
        upstream_of: None,
        record,
        hops: Vec::new(),
    };
    if start.pod >= mesh.pods.len() {
        return Err(EngineError::NoSuchPod { index: start.pod, pods: mesh.pods.len() });
    }
    let mut work: Vec<Next> = vec![initial(mesh, start, first)];
    while let Some((mut p, next)) = work.pop() {
        let state = match next {
            Ok(s) => s,
            Err(ending) => {
                done.push(p.finish(ending));
                continue;
            }
        };
        let key = state.key();
        if let Some(&(_, at)) = p.seen.iter().find(|(k, _)| *k == key) {
            let ending = loop_ending(&p, at);
            done.push(p.finish(ending));
            continue;
        }
        if p.seen.len() >= HOP_BUDGET {
            let ending = Ending::Loop {
                cycle: [0, p.steps.len().saturating_sub(1)],
                closed_by: vec![format!("hop budget of {HOP_BUDGET} exhausted")],
            };
            done.push(p.finish(ending));
            continue;
        }
        p.seen.push((key, p.steps.len()));
        let mut successors = match state {
            State::Kernel { pod, entry, src, dst, uid, gid, mark } => {
                kernel(mesh, start, p, pod, entry, (src, dst), (uid, gid, mark))?
            }
            State::Envoy { pod, listener, orig_dst, src } => {
                envoy(mesh, start, p, pod, listener, orig_dst, src)
            }
        };
        // Depth first, branches in their natural order.
        successors.reverse();
        work.extend(successors);
        if done.len() + work.len() > MAX_PATHS {
            return Err(EngineError::TooManyPaths(MAX_PATHS));
        }
    }
    Ok(MeshTrace { paths: done })
}

fn step(p: &mut Partial, pod: &Pod, layer: Layer, what: String, source: String) {
    p.steps.push(Step { pod: pod.name.clone(), layer, what, source });
}

fn initial(mesh: &Mesh, start: &Start, mut p: Partial) -> Next {
    let pod = &mesh.pods[start.pod];
    let dst = match &start.dst {
        Destination::Addr(a) => *a,
        Destination::Host { name, port } => {
            match mesh.names.get(&name.to_ascii_lowercase()).and_then(|v| v.first()) {
                Some(ip) => {
                    step(&mut p, pod, Layer::Dns, format!("{name} resolves to {ip}"), "name table".into());
                    SocketAddr::new(*ip, *port)
                }
                None => {
                    step(
                        &mut p,
                        pod,
                        Layer::Dns,
                        format!("{name} is not in the name table"),
                        "name table".into(),
                    );
                    return (p, Err(Ending::Unresolved { pod: pod.name.clone(), host: name.clone() }));
                }
            }
        }
    };
    let state = match &start.from {
        From::Process { uid, gid } => {
            let src = start.src.unwrap_or_else(|| SocketAddr::new(default_source(pod, dst.ip()), 50000));
            State::Kernel { pod: start.pod, entry: Entry::Output, src, dst, uid: *uid, gid: *gid, mark: 0 }
        }
        From::Outside { src } => {
            let src = start.src.unwrap_or(SocketAddr::new(*src, 50000));
            State::Kernel { pod: start.pod, entry: Entry::Prerouting, src, dst, uid: 0, gid: 0, mark: 0 }
        }
    };
    (p, Ok(state))
}

/// The kernel's source address choice: the destination itself for a local one, else the pod's
/// address of that family.
fn default_source(pod: &Pod, dst: IpAddr) -> IpAddr {
    if dst.is_loopback() || pod.owns(dst) {
        return dst;
    }
    pod.primary(dst.is_ipv6()).unwrap_or(if dst.is_ipv6() {
        IpAddr::from([0u16; 8])
    } else {
        IpAddr::from([0u8; 4])
    })
}

fn kernel(
    mesh: &Mesh,
    start: &Start,
    p: Partial,
    pi: usize,
    entry: Entry,
    (src, dst): (SocketAddr, SocketAddr),
    (uid, gid, mark): (u32, u32, u32),
) -> Result<Vec<Next>, EngineError> {
    let pod = &mesh.pods[pi];
    let v6 = dst.is_ipv6();
    let Some(prog) = pod.program(v6) else {
        return Err(EngineError::NoRules {
            pod: pod.name.clone(),
            family: if v6 { "IPv6" } else { "IPv4" },
            flag: if v6 { "ip6tables" } else { "iptables" },
        });
    };
    let proto = match p.proto {
        L4::Tcp => Protocol::Tcp,
        L4::Udp => Protocol::Udp,
    };
    let mut probe = Probe::new(entry, proto, src.ip(), src.port(), dst.ip(), dst.port());
    probe.uid = uid;
    probe.gid = gid;
    probe.mark = mark;
    let t = eval::trace(prog, &pod.netns, &probe)?;
    let file = prog.ruleset.source.clone();
    let mut out = Vec::new();
    let n = t.branches.len();
    let mut p = Some(p);
    for (bi, b) in t.branches.into_iter().enumerate() {
        let Some(mut q) = take_or_clone(&mut p, bi + 1 == n) else { break };
        q.weight *= b.probability;
        if q.record {
            let first_step = q.steps.len();
            q.hops.push(Hop::Kernel { pod: pi, first_step, probe: probe.clone(), branch: bi });
        }
        let who = match entry {
            Entry::Output => format!("uid {uid} sends"),
            Entry::Prerouting => "arrives on eth0:".to_string(),
        };
        let proto_name = if q.proto == L4::Tcp { "tcp" } else { "udp" };
        step(&mut q, pod, Layer::Wire, format!("{who} {proto_name} {src} -> {dst}"), String::new());
        let mut notes = b.notes.iter().peekable();
        for (i, s) in b.steps.iter().enumerate() {
            while let Some(n) = notes.next_if(|n| n.before_step <= i) {
                note_step(&mut q, pod, n);
            }
            if s.kind == StepKind::Return || (s.kind == StepKind::Policy && s.verdict == Verdict::Accept) {
                continue;
            }
            let what = match s.kind {
                StepKind::Policy => {
                    format!("{} {} {} policy {:?}", s.hook.as_str(), s.table, s.chain, s.verdict)
                        .to_lowercase()
                }
                _ => format!(
                    "{} {} {} #{} {}{}",
                    s.hook.as_str(),
                    s.table,
                    s.chain,
                    s.rule.unwrap_or(0),
                    verdict_word(s.verdict),
                    s.target.as_deref().map(|t| format!(" {t}")).unwrap_or_default()
                ),
            };
            let source = s.line.map(|l| format!("{file}:{l}")).unwrap_or_default();
            step(&mut q, pod, Layer::Netfilter, what, source);
        }
        for n in notes {
            note_step(&mut q, pod, n);
        }
        let r = &b.result;
        let next = match r.disposition {
            Disposition::Dropped => {
                Err(Ending::Dropped { pod: pod.name.clone(), reason: r.reason.clone().unwrap_or_default() })
            }
            Disposition::Out | Disposition::Forwarded => {
                let (out_dst, out_src) = (r.dst, r.src);
                match mesh.owner_of(out_dst.ip()) {
                    Some(other) if other != pi => {
                        let to = &mesh.pods[other];
                        step(
                            &mut q,
                            pod,
                            Layer::Wire,
                            format!("leaves eth0 towards pod {} ({out_dst})", to.name),
                            String::new(),
                        );
                        Ok(State::Kernel {
                            pod: other,
                            entry: Entry::Prerouting,
                            src: out_src,
                            dst: out_dst,
                            uid: 0,
                            gid: 0,
                            mark: 0,
                        })
                    }
                    _ => Err(Ending::Left {
                        pod: pod.name.clone(),
                        dst: out_dst.to_string(),
                        cluster: q.last_cluster.clone(),
                    }),
                }
            }
            Disposition::Local => local_delivery(mesh, start, &mut q, pi, r),
        };
        let next = match (next, &q.upstream_of) {
            (
                Err(Ending::Refused { reason, .. } | Ending::Dropped { reason, .. }),
                Some((envoy_pod, http)),
            ) => {
                // Envoy had accepted the downstream connection; its upstream one failed.
                Err(Ending::EnvoyResponse {
                    pod: envoy_pod.clone(),
                    status: http.then_some(503),
                    flag: Some("UF".into()),
                    details: format!("upstream connection failure: {reason}"),
                })
            }
            (next, _) => next,
        };
        out.push((q, next));
    }
    Ok(out)
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Continue => "continue",
        Verdict::Jump => "jump",
        Verdict::Goto => "goto",
        Verdict::Return => "return",
        Verdict::Accept => "accept",
        Verdict::Drop => "drop",
    }
}

fn note_step(q: &mut Partial, pod: &Pod, n: &eval::Note) {
    let layer = match n.what {
        NoteKind::Route => Layer::Route,
        NoteKind::Socket => Layer::Socket,
        NoteKind::Conntrack | NoteKind::Mark => return,
        NoteKind::Nat | NoteKind::Loopback | NoteKind::Unknown => Layer::Netfilter,
    };
    // The layer column already says "route" or "socket".
    let text = n.text.strip_prefix("route: ").or_else(|| n.text.strip_prefix("socket: ")).unwrap_or(&n.text);
    step(q, pod, layer, text.to_string(), String::new());
}

fn undetermined(pod: &Pod, reason: &str) -> Ending {
    Ending::Undetermined { pod: pod.name.clone(), reason: reason.to_string() }
}

/// A connection reached a local socket: Envoy, pilot-agent's DNS proxy, the app, or nothing.
fn local_delivery(
    mesh: &Mesh,
    start: &Start,
    q: &mut Partial,
    pi: usize,
    r: &eval::Outcome,
) -> Result<State, Ending> {
    let pod = &mesh.pods[pi];
    let (dst, src, orig) = (r.dst, r.src, r.orig_dst);
    let Some(sock_ep) = &r.socket else {
        let what = if q.proto == L4::Tcp { "connection refused (RST)" } else { "ICMP port unreachable" };
        return Err(Ending::Refused {
            pod: pod.name.clone(),
            dst: dst.to_string(),
            reason: format!("no socket listens on {dst}: {what}"),
        });
    };
    let sock = pod.netns.sockets.iter().find(|s| &s.endpoint() == sock_ep && (s.proto == q.proto));
    let owner = sock.map(|s| s.owner.clone()).unwrap_or_else(|| "unknown".into());
    match owner.as_str() {
        "envoy" => Ok(State::Envoy {
            pod: pi,
            listener: SocketAddr::new(dst.ip(), sock.map_or(dst.port(), |s| s.port)),
            orig_dst: orig,
            src,
        }),
        "pilot-agent" if q.proto == L4::Udp || orig.port() == 53 => {
            let name = start.dns_query.clone().or_else(|| match &start.dst {
                Destination::Host { name, .. } => Some(name.clone()),
                Destination::Addr(_) => None,
            });
            match name.as_ref().and_then(|n| mesh.names.get(&n.to_ascii_lowercase()).map(|a| (n, a))) {
                Some((n, addrs)) => {
                    let list: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
                    step(
                        q,
                        pod,
                        Layer::Dns,
                        format!("pilot-agent's DNS proxy answers {n} with {}", list.join(", ")),
                        "name table".into(),
                    );
                    Err(Ending::Delivered {
                        pod: pod.name.clone(),
                        socket: sock_ep.clone(),
                        process: "pilot-agent (DNS proxy)".into(),
                    })
                }
                None => {
                    let n = name.unwrap_or_else(|| "the query".into());
                    step(
                        q,
                        pod,
                        Layer::Dns,
                        format!("pilot-agent's DNS proxy does not know {n}: forwards it to {orig}"),
                        "name table".into(),
                    );
                    let src = SocketAddr::new(default_source(pod, orig.ip()), 40000 + q.seen.len() as u16);
                    Ok(State::Kernel {
                        pod: pi,
                        entry: Entry::Output,
                        src,
                        dst: orig,
                        uid: ENVOY_UID,
                        gid: ENVOY_UID,
                        mark: 0,
                    })
                }
            }
        }
        process => Err(Ending::Delivered {
            pod: pod.name.clone(),
            socket: sock_ep.clone(),
            process: process.to_string(),
        }),
    }
}

fn envoy(
    mesh: &Mesh,
    start: &Start,
    mut p: Partial,
    pi: usize,
    listener: SocketAddr,
    orig_dst: SocketAddr,
    src: SocketAddr,
) -> Vec<Next> {
    let pod = &mesh.pods[pi];
    let Some(cfg) = &pod.envoy else {
        return vec![(
            p,
            Err(undetermined(pod, "the connection reached Envoy, but the pod has no config dump")),
        )];
    };
    if p.record {
        let first_step = p.steps.len();
        p.hops.push(Hop::Envoy { pod: pi, first_step, listener, orig_dst, src });
    }
    let query = envoy_query(mesh, start, listener, orig_dst, src);
    let t = select::evaluate(cfg, &query);
    let mut hop = EnvoyHop { pod: pod.name.clone(), ..EnvoyHop::default() };
    let mut istio = Vec::new();
    let remember = |o: &select::ObjectRef, istio: &mut Vec<String>| {
        if let Some(c) = &o.istio_config {
            if !istio.contains(c) {
                istio.push(c.clone());
            }
        }
    };
    if let Some(a) = &t.accepted_by {
        step(
            &mut p,
            pod,
            Layer::Envoy,
            format!("listener {} accepts the connection (original destination {orig_dst})", a.name),
            a.path.clone(),
        );
        hop.listener = Some(a.name.clone());
        remember(a, &mut istio);
    }
    if let Some(h) = &t.handoff {
        if h.matched.is_some() {
            step(
                &mut p,
                pod,
                Layer::Envoy,
                format!("use_original_dst hands it to listener {}", h.target.name),
                h.target.path.clone(),
            );
            hop.listener = Some(h.target.name.clone());
            remember(&h.target, &mut istio);
        } else {
            step(
                &mut p,
                pod,
                Layer::Envoy,
                format!("no listener for {}: stays on {}", h.restored_destination, h.target.name),
                h.target.path.clone(),
            );
        }
    }
    if let Some(fc) = &t.filter_chain {
        let name = if fc.chain.name.is_empty() {
            format!("#{}", fc.index.unwrap_or(0))
        } else {
            fc.chain.name.clone()
        };
        step(
            &mut p,
            pod,
            Layer::Envoy,
            format!("filter chain {name} (by {})", fc.via),
            fc.chain.path.clone(),
        );
        hop.filter_chain = Some(name);
        remember(&fc.chain, &mut istio);
    }
    if let Some(h) = &t.http {
        hop.route_config = Some(h.route_config.name.clone());
        let mut what =
            format!("{} {}{} on route config {}", h.method, h.authority, h.path, h.route_config.name);
        if let Some(vh) = &h.virtual_host {
            what.push_str(&format!(", virtual host {}", vh.name));
            hop.virtual_host = Some(vh.name.clone());
            remember(vh, &mut istio);
        }
        if let Some(r) = &h.route {
            what.push_str(&format!(
                ", route {}",
                if r.name.is_empty() { r.path.as_str() } else { r.name.as_str() }
            ));
            hop.route = Some(if r.name.is_empty() { r.path.clone() } else { r.name.clone() });
            remember(r, &mut istio);
        }
        what.push_str(&format!(": {}", h.decision));
        step(&mut p, pod, Layer::Envoy, what, h.route_config.path.clone());
    }
    let mut out = Vec::new();
    // Istio's original_src listener filter marks upstream sockets with 1337 (0x539).
    let mark = if t.socket.as_ref().is_some_and(|s| s.original_src) { ORIGINAL_SRC_MARK } else { 0 };
    let http = t.http.is_some();
    match &t.outcome {
        Outcome::Forwarded { .. } | Outcome::Weighted => {
            let total: u64 = t.clusters.iter().map(|c| u64::from(c.weight.unwrap_or(1))).sum::<u64>().max(1);
            let picks: Vec<_> = match t.outcome {
                Outcome::Weighted => t.clusters.iter().collect(),
                _ => t.clusters.iter().filter(|c| c.selected).take(1).collect(),
            };
            let n = picks.len();
            let mut p = Some(p);
            for (ci, c) in picks.into_iter().enumerate() {
                let Some(mut q) = take_or_clone(&mut p, ci + 1 == n) else { break };
                let mut h = hop.clone();
                h.istio_config = istio.clone();
                if let Some(o) = &c.origin {
                    if let Some(ic) = &o.istio_config {
                        if !h.istio_config.contains(ic) {
                            h.istio_config.push(ic.clone());
                        }
                    }
                }
                if matches!(t.outcome, Outcome::Weighted) {
                    q.weight *= f64::from(c.weight.unwrap_or(1)) / total as f64;
                }
                h.cluster = Some(c.cluster.clone());
                q.last_cluster = Some(c.cluster.clone());
                q.upstream_of = Some((pod.name.clone(), http));
                out.extend(upstream(pod, pi, q, h, (&c.cluster, &c.upstream), start.pick, mark));
            }
        }
        Outcome::HttpResponse { status, flag, details, .. } => {
            hop.istio_config = istio;
            hop.cluster = failed_cluster(&t);
            p.envoy.push(hop);
            out.push((
                p,
                Err(Ending::EnvoyResponse {
                    pod: pod.name.clone(),
                    status: Some(*status),
                    flag: flag.clone(),
                    details: details.clone(),
                }),
            ));
        }
        Outcome::Closed { flag, details } => {
            hop.istio_config = istio;
            hop.cluster = failed_cluster(&t);
            p.envoy.push(hop);
            out.push((
                p,
                Err(Ending::EnvoyResponse {
                    pod: pod.name.clone(),
                    status: None,
                    flag: flag.clone(),
                    details: details.clone(),
                }),
            ));
        }
        Outcome::Unresolved { cluster, host } => {
            hop.cluster = Some(cluster.clone());
            hop.istio_config = istio;
            p.envoy.push(hop);
            out.push((p, Err(Ending::Unresolved { pod: pod.name.clone(), host: host.clone() })));
        }
        Outcome::NoListener => {
            out.push((
                p,
                Err(Ending::Refused {
                    pod: pod.name.clone(),
                    dst: listener.to_string(),
                    reason: format!("no Envoy listener accepts {listener}"),
                }),
            ));
        }
        Outcome::Undetermined { reason } => {
            hop.istio_config = istio;
            p.envoy.push(hop);
            out.push((p, Err(undetermined(pod, reason))));
        }
    }
    out
}

/// The cluster the route or tcp_proxy chose when Envoy answers itself because of it: an
/// unknown cluster (NC) or one without a healthy host (UH) is still the object the
/// connection reached (envoy-semantics.md §4 "Outcomes", §5).
fn failed_cluster(t: &crate::envoy::select::Trace) -> Option<String> {
    t.clusters.iter().find(|c| c.selected).map(|c| c.cluster.clone())
}

/// What Envoy is asked for a connection delivered to `listener` (original destination
/// `orig_dst`, peer `src`) during the walk of `start`.
pub fn envoy_query(
    mesh: &Mesh,
    start: &Start,
    listener: SocketAddr,
    orig_dst: SocketAddr,
    src: SocketAddr,
) -> Query {
    let random_value = match start.pick {
        Pick::All => None,
        Pick::First => Some(0),
        Pick::RandomValue(n) => Some(n),
    };
    Query {
        listener_addr: listener,
        listener_name: None,
        dst: orig_dst,
        src,
        client: start.client.clone(),
        request: start.request.clone(),
        dns: mesh.names.clone(),
        random_value,
    }
}

/// From a chosen cluster to the upstream connection(s), one per endpoint branch.
fn upstream(
    pod: &Pod,
    pi: usize,
    p: Partial,
    hop: EnvoyHop,
    (cluster, up): (&str, &Upstream),
    pick: Pick,
    mark: u32,
) -> Vec<Next> {
    let mut p = p;
    let name = pod.name.clone();
    match up {
        Upstream::Endpoint { address, source_address, via, candidates } => {
            if cluster == "BlackHoleCluster" {
                p.envoy.push(hop);
                return vec![(p, Err(Ending::Blackhole { pod: name, cluster: cluster.into() }))];
            }
            let mut eps: Vec<String> = match pick {
                _ if candidates.is_empty() => vec![address.to_string()],
                Pick::All => candidates.clone(),
                Pick::First => vec![candidates[0].clone()],
                Pick::RandomValue(n) => vec![candidates[(n % candidates.len() as u64) as usize].clone()],
            };
            eps.dedup();
            let n = eps.len() as f64;
            let count = eps.len();
            let mut p = Some(p);
            eps.into_iter()
                .enumerate()
                .filter_map(|(ei, ep)| {
                    let mut q = take_or_clone(&mut p, ei + 1 == count)?;
                    q.weight /= n;
                    let mut h = hop.clone();
                    h.endpoint = Some(ep.clone());
                    h.source_address = source_address.map(|s| s.to_string());
                    let from = source_address.map(|s| format!(" from {s}")).unwrap_or_default();
                    step(
                        &mut q,
                        pod,
                        Layer::Envoy,
                        format!("cluster {cluster} picks endpoint {ep}{from} ({via})"),
                        cluster.to_string(),
                    );
                    q.envoy.push(h);
                    let next = match ep.parse::<SocketAddr>() {
                        Ok(dst) => {
                            let src_ip = source_address.unwrap_or_else(|| default_source(pod, dst.ip()));
                            let src = SocketAddr::new(src_ip, 40000 + q.seen.len() as u16);
                            Ok(State::Kernel {
                                pod: pi,
                                entry: Entry::Output,
                                src,
                                dst,
                                uid: ENVOY_UID,
                                gid: ENVOY_UID,
                                mark,
                            })
                        }
                        Err(_) => match address {
                            EndpointAddress::Dns { host, .. } => {
                                Err(Ending::Unresolved { pod: name.clone(), host: host.clone() })
                            }
                            _ => Err(Ending::Undetermined {
                                pod: name.clone(),
                                reason: format!("endpoint {ep} is not an IP address"),
                            }),
                        },
                    };
                    Some((q, next))
                })
                .collect()
        }
        Upstream::ClusterNotFound | Upstream::NoHealthyHost { .. } => {
            let flag = up.flag().map(str::to_string);
            let details = match up {
                Upstream::NoHealthyHost { reason } => reason.clone(),
                _ => format!("cluster {cluster} not found"),
            };
            p.envoy.push(hop);
            let ending = if cluster == "BlackHoleCluster" {
                Ending::Blackhole { pod: name, cluster: cluster.into() }
            } else {
                Ending::EnvoyResponse { pod: name, status: Some(503), flag, details }
            };
            vec![(p, Err(ending))]
        }
        Upstream::Unresolved { host } => {
            p.envoy.push(hop);
            vec![(p, Err(Ending::Unresolved { pod: name, host: host.clone() }))]
        }
        Upstream::EndpointsUnknown { service_name } => {
            p.envoy.push(hop);
            let reason = format!(
                "cluster {cluster}: the dump has no endpoints for {service_name} (take it with ?include_eds)"
            );
            vec![(p, Err(Ending::Undetermined { pod: name, reason }))]
        }
        Upstream::Unsupported { reason } => {
            p.envoy.push(hop);
            vec![(p, Err(Ending::Undetermined { pod: name, reason: reason.clone() }))]
        }
    }
}

/// The partial path for the next branch: a copy while more branches follow, the original for
/// the last one (most steps have a single branch, so nothing is copied).
fn take_or_clone(p: &mut Option<Partial>, last: bool) -> Option<Partial> {
    if last {
        p.take()
    } else {
        p.clone()
    }
}

/// The repeating part of the path and the rules and Envoy objects in it that send the
/// connection back (REDIRECT/TPROXY rules, listeners, clusters).
fn loop_ending(p: &Partial, at: usize) -> Ending {
    let last = p.steps.len().saturating_sub(1);
    let mut closed_by: Vec<String> = Vec::new();
    for s in &p.steps[at.min(p.steps.len())..] {
        let decisive = match s.layer {
            Layer::Netfilter => {
                s.what.contains(" accept REDIRECT")
                    || s.what.contains(" accept TPROXY")
                    || s.what.contains(" accept DNAT")
            }
            Layer::Envoy => {
                s.what.starts_with("listener ")
                    || s.what.starts_with("use_original_dst")
                    || s.what.starts_with("cluster ")
            }
            _ => false,
        };
        if decisive {
            let item =
                if s.source.is_empty() { s.what.clone() } else { format!("{} ({})", s.what, s.source) };
            if !closed_by.contains(&item) {
                closed_by.push(item);
            }
        }
    }
    Ending::Loop { cycle: [at, last], closed_by }
}
