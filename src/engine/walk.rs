//! The stepper: a work list of partial paths, each in one state (a packet entering a pod's
//! kernel, or a connection handed to a pod's Envoy). Kernel states run the netfilter
//! evaluator (`kernel_hop`); Envoy states run Envoy's selection (`envoy_hop`); each result
//! becomes the next state or the path's ending. A state seen before on the same path ends it
//! as a loop.

use std::net::{IpAddr, SocketAddr};

use super::ending::Ending;
use super::step::{Detail, Step};
use super::{envoy_hop, kernel_hop};
use super::{Destination, EngineError, EnvoyHop, From, Hop, Mesh, MeshTrace, Path, Start};
use crate::envoy::route::RetryPolicy;
use crate::envoy::select::ClientBytes;
use crate::netfilter::eval::Entry;
use crate::netns::L4;

/// The most hops (kernel or Envoy states) one path may take before it is called a loop.
pub const HOP_BUDGET: usize = 64;
/// The most paths one trace may have.
pub const MAX_PATHS: usize = 4096;

#[derive(Debug, Clone)]
pub(super) enum State {
    Kernel { pod: usize, entry: Entry, src: SocketAddr, dst: SocketAddr, uid: u32, gid: u32, mark: u32 },
    Envoy { pod: usize, listener: SocketAddr, orig_dst: SocketAddr, src: SocketAddr },
}

/// What makes two states the same place for loop detection (source ports are ephemeral, so
/// only the source address counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StateKey {
    Kernel { pod: usize, entry: Entry, src: IpAddr, dst: SocketAddr, uid: u32, mark: u32 },
    Envoy { pod: usize, listener: SocketAddr, orig_dst: SocketAddr },
}

impl State {
    fn key(&self) -> StateKey {
        match *self {
            State::Kernel { pod, entry, src, dst, uid, mark, .. } => {
                StateKey::Kernel { pod, entry, src: src.ip(), dst, uid, mark }
            }
            State::Envoy { pod, listener, orig_dst, .. } => StateKey::Envoy { pod, listener, orig_dst },
        }
    }
}

/// A partial path and what comes next: a state to process, or its ending.
pub(super) type Next = (Partial, Result<State, Ending>);

#[derive(Debug, Clone)]
pub(super) struct Partial {
    pub weight: f64,
    pub steps: Vec<Step>,
    pub envoy: Vec<EnvoyHop>,
    seen: Vec<(StateKey, usize)>,
    pub last_cluster: Option<String>,
    pub proto: L4,
    /// The Envoy whose upstream connection this is: when the connection is refused, dropped
    /// or closed by the peer, that Envoy answers ([`upstream_failure`]).
    pub upstream_of: Option<UpstreamOf>,
    /// What the connection's first bytes are, as the next Envoy sees them (`None`: the
    /// client's own, [`Start::client`]).
    pub wire: Option<ClientBytes>,
    /// The plaintext inside, when an Envoy originated TLS on this connection.
    pub inner: Option<ClientBytes>,
    /// Keep each hop's input in `hops` (for reports; off for plain traces).
    pub record: bool,
    pub hops: Vec<Hop>,
    /// The kernel hops of the connection the path is on, since its sender's `connect()`
    /// (the reply walks them back: `super::reply`).
    pub segment: Vec<super::reply::SegmentHop>,
}

impl Partial {
    fn finish(self, ending: Ending) -> Path {
        Path { weight: self.weight, ending, envoy: self.envoy, steps: self.steps, hops: self.hops }
    }

    pub fn step(&mut self, pod: usize, detail: Detail) {
        self.steps.push(Step { pod, detail });
    }

    /// Whether the path already said where pod `pod`'s proxy identity comes from.
    pub fn said_identity(&self, pod: usize) -> bool {
        self.steps.iter().any(|s| s.pod == pod && matches!(s.detail, Detail::ProxyIdentity { .. }))
    }

    /// How many hops the path has taken (makes ephemeral source ports distinct per hop).
    pub fn hop_count(&self) -> usize {
        self.seen.len()
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
        steps: Vec::with_capacity(16),
        envoy: Vec::new(),
        seen: Vec::with_capacity(8),
        last_cluster: None,
        proto: start.proto,
        upstream_of: None,
        wire: None,
        inner: None,
        record,
        hops: Vec::new(),
        segment: Vec::new(),
    };
    if start.pod >= mesh.pods.len() {
        return Err(EngineError::NoSuchPod { index: start.pod, pods: mesh.pods.len() });
    }
    let mut work: Vec<Next> = vec![initial(mesh, start, first)];
    while let Some((mut p, next)) = work.pop() {
        let state = match next {
            Ok(s) => s,
            Err(ending) => {
                let ending = upstream_failure(&mut p, ending);
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
                closed_by: Vec::new(),
                budget: Some(HOP_BUDGET),
            };
            done.push(p.finish(ending));
            continue;
        }
        p.seen.push((key, p.steps.len()));
        let mut successors = match state {
            State::Kernel { pod, entry, src, dst, uid, gid, mark } => {
                kernel_hop::kernel(mesh, start, p, pod, entry, (src, dst), (uid, gid, mark))?
            }
            State::Envoy { pod, listener, orig_dst, src } => {
                envoy_hop::envoy(mesh, start, p, pod, listener, orig_dst, src)
            }
        };
        // Depth first, branches in their natural order.
        successors.reverse();
        work.extend(successors);
        if done.len() + work.len() > MAX_PATHS {
            return Err(EngineError::TooManyPaths(MAX_PATHS));
        }
    }
    Ok(MeshTrace { pods: mesh.pods.iter().map(|p| p.name.clone()).collect(), paths: done })
}

fn initial(mesh: &Mesh, start: &Start, mut p: Partial) -> Next {
    let pod = &mesh.pods[start.pod];
    let dst = match &start.dst {
        Destination::Addr(a) => *a,
        Destination::Host { name, port } => {
            let addr = mesh.names.get(&name.to_ascii_lowercase()).and_then(|v| v.first()).copied();
            p.step(start.pod, Detail::Resolve { name: name.clone(), addr });
            match addr {
                Some(ip) => SocketAddr::new(ip, *port),
                None => return (p, Err(Ending::Unresolved { pod: pod.name.clone(), host: name.clone() })),
            }
        }
    };
    let state = match &start.from {
        From::Process { uid, gid } => {
            // ICMP has no ports (0 in the socket address).
            let port = if start.proto.is_icmp() { 0 } else { 50000 };
            let src = start.src.unwrap_or_else(|| SocketAddr::new(pod.source_for(dst.ip()), port));
            State::Kernel { pod: start.pod, entry: Entry::Output, src, dst, uid: *uid, gid: *gid, mark: 0 }
        }
        From::Outside { src } => {
            let src = start.src.unwrap_or(SocketAddr::new(*src, 50000));
            State::Kernel { pod: start.pod, entry: Entry::Prerouting, src, dst, uid: 0, gid: 0, mark: 0 }
        }
    };
    (p, Ok(state))
}

/// The Envoy that opened the connection a path is on.
#[derive(Debug, Clone)]
pub(super) struct UpstreamOf {
    pub pod: usize,
    pub pod_name: String,
    /// The router (HTTP) opened it, not a TCP proxy.
    pub http: bool,
    /// Its transport socket is TLS (the connection counts as connected once the handshake
    /// is done).
    pub tls: bool,
    /// A later Envoy on the way terminated that TLS (the handshake completed).
    pub handshake_done: bool,
    /// The retry policy of the route that forwarded the request (HTTP).
    pub retry: Option<RetryPolicy>,
}

/// When the connection an Envoy opened upstream ends before a server takes it, the path goes
/// back to that Envoy, which answers its own client:
///
/// - refused (RST) or dropped: the connection never comes up. Envoy's HTTP router resets the
///   stream with `LocalConnectionFailure`/`RemoteConnectionFailure`/`ConnectionTimeout`, which
///   `Filter::streamResetReasonToResponseFlag` (source/common/router/router.cc) turns into
///   `UpstreamConnectionFailure`, short `UF`; the local reply is 503
///   (`upstream_reset_before_response_started{connection_failure}`). The TCP proxy closes the
///   downstream with `UF` (source/common/tcp_proxy/tcp_proxy.cc, `Filter::onUpstreamEvent`:
///   a close before the connection is up sets `UpstreamConnectionFailure`).
/// - closed by the peer's Envoy (no filter chain, a failed handshake, its own close): when the
///   connection was up (plaintext, or TLS whose handshake the peer completed) the stream reset
///   is `ConnectionTermination` → `UpstreamConnectionTermination`, `UC`, 503
///   (`upstream_reset_before_response_started{connection_termination}`); a TLS connection the
///   peer closes during the handshake never came up → `UF`. A TCP proxy closes the downstream
///   (`UF` before the connection is up, no flag after).
///
/// Istio's blackhole cluster stays its own ending.
fn upstream_failure(p: &mut Partial, ending: Ending) -> Ending {
    let Some(up) = p.upstream_of.clone() else { return ending };
    let closed_by_peer =
        matches!(&ending, Ending::EnvoyResponse { status: None, pod, .. } if *pod != up.pod_name || up.http);
    let (flag, details) = match &ending {
        Ending::Refused { .. } | Ending::Dropped { .. } => {
            (Some("UF"), "upstream_reset_before_response_started{connection_failure}")
        }
        _ if closed_by_peer && up.tls && !up.handshake_done => {
            (Some("UF"), "upstream_reset_before_response_started{connection_failure}")
        }
        _ if closed_by_peer => {
            (up.http.then_some("UC"), "upstream_reset_before_response_started{connection_termination}")
        }
        _ => return ending,
    };
    // The router retries the reset when its policy says so (RetryStateImpl::wouldRetryFromReset);
    // every retry meets the same peer, and when they run out the router adds
    // `UpstreamRetryLimitExceeded`, `URX` (source/common/router/router.cc, `Filter::onUpstreamReset`:
    // `RetryStatus::NoRetryLimitExceeded`).
    let connection_failure = flag == Some("UF");
    let retried = up.http && up.retry.as_ref().is_some_and(|r| r.retries_reset(connection_failure));
    let flag = flag.map(|f| if retried { format!("{f},URX") } else { f.to_string() });
    let details = if up.http { details.to_string() } else { "downstream closed".to_string() };
    p.step(
        up.pod,
        Detail::UpstreamFailure {
            flag: flag.clone(),
            status: up.http.then_some(503),
            details: details.clone(),
        },
    );
    Ending::EnvoyResponse {
        pod: up.pod_name,
        status: up.http.then_some(503),
        flag,
        details,
        upstream: Some(Box::new(ending)),
    }
}

/// The partial path for the next branch: a copy while more branches follow, the original for
/// the last one (most steps have a single branch, so nothing is copied).
pub(super) fn take_or_clone(p: &mut Option<Partial>, last: bool) -> Option<Partial> {
    if last {
        p.take()
    } else {
        p.clone()
    }
}

/// The repeating part of the path and the steps in it that send the connection back
/// (REDIRECT/TPROXY/DNAT rules, listeners, hand-offs, upstream connections).
fn loop_ending(p: &Partial, at: usize) -> Ending {
    let last = p.steps.len().saturating_sub(1);
    let mut closed_by: Vec<usize> = Vec::new();
    for (i, s) in p.steps.iter().enumerate().skip(at) {
        let repeat = closed_by.iter().any(|&j| p.steps[j] == *s);
        if s.detail.sends_on() && !repeat {
            closed_by.push(i);
        }
    }
    Ending::Loop { cycle: [at, last], closed_by, budget: None }
}

#[cfg(test)]
mod upstream_failure_tests {
    //! The answer of the Envoy whose upstream connection failed. Flags: source/common/router/router.cc
    //! `Filter::streamResetReasonToResponseFlag` (connection failure → `UF`, connection
    //! termination → `UC`) and `Filter::onUpstreamReset` (`URX` when the retries ran out);
    //! retried resets: source/common/router/retry_state_impl.cc `wouldRetryFromReset`; TCP:
    //! source/common/tcp_proxy/tcp_proxy.cc `Filter::onUpstreamEvent`.

    use super::*;
    use crate::engine::Refusal;

    fn partial(http: bool, tls: bool, handshake_done: bool, retry_on: Option<&str>) -> Partial {
        Partial {
            weight: 1.0,
            steps: Vec::new(),
            envoy: Vec::new(),
            seen: Vec::new(),
            last_cluster: None,
            proto: L4::Tcp,
            upstream_of: Some(UpstreamOf {
                pod: 0,
                pod_name: "client".into(),
                http,
                tls,
                handshake_done,
                retry: retry_on.map(|r| RetryPolicy { retry_on: r.into(), num_retries: Some(2) }),
            }),
            wire: None,
            inner: None,
            record: false,
            hops: Vec::new(),
            segment: Vec::new(),
        }
    }

    fn refused() -> Ending {
        Ending::Refused {
            pod: "server".into(),
            dst: "10.0.0.2:9080".parse().unwrap_or_else(|e| panic!("{e}")),
            by: Refusal::NoSocket { proto: L4::Tcp },
        }
    }

    fn peer_closed() -> Ending {
        Ending::EnvoyResponse {
            pod: "server".into(),
            status: None,
            flag: Some("NR".into()),
            details: "filter_chain_not_found".into(),
            upstream: None,
        }
    }

    fn answer(e: &Ending) -> (Option<&str>, Option<u16>, Option<&str>) {
        match e {
            Ending::EnvoyResponse { pod, status, flag, .. } => (Some(pod.as_str()), *status, flag.as_deref()),
            _ => (None, None, None),
        }
    }

    #[test]
    fn refused_is_uf_and_urx_when_the_route_retries_connect_failures() {
        let mut p = partial(true, false, false, None);
        assert_eq!(answer(&upstream_failure(&mut p, refused())), (Some("client"), Some(503), Some("UF")));
        let mut p = partial(true, false, false, Some("connect-failure,refused-stream"));
        assert_eq!(answer(&upstream_failure(&mut p, refused())), (Some("client"), Some(503), Some("UF,URX")));
        assert!(matches!(p.steps.last().map(|s| &s.detail), Some(Detail::UpstreamFailure { .. })));
    }

    #[test]
    fn a_peer_close_is_uc_once_connected_and_uf_during_the_tls_handshake() {
        let mut p = partial(true, false, false, Some("connect-failure"));
        // connect-failure does not retry a connection termination.
        assert_eq!(answer(&upstream_failure(&mut p, peer_closed())), (Some("client"), Some(503), Some("UC")));
        let mut p = partial(true, false, false, Some("reset"));
        assert_eq!(
            answer(&upstream_failure(&mut p, peer_closed())),
            (Some("client"), Some(503), Some("UC,URX"))
        );
        // A TLS connection closed before the handshake completed never came up.
        let mut p = partial(true, true, false, None);
        assert_eq!(answer(&upstream_failure(&mut p, peer_closed())), (Some("client"), Some(503), Some("UF")));
        let mut p = partial(true, true, true, None);
        assert_eq!(answer(&upstream_failure(&mut p, peer_closed())), (Some("client"), Some(503), Some("UC")));
    }

    #[test]
    fn a_tcp_proxy_closes_the_downstream() {
        let mut p = partial(false, false, false, None);
        assert_eq!(answer(&upstream_failure(&mut p, peer_closed())), (Some("client"), None, None));
        let mut p = partial(false, false, false, None);
        assert_eq!(answer(&upstream_failure(&mut p, refused())), (Some("client"), None, Some("UF")));
        let mut p = partial(false, true, false, None);
        assert_eq!(answer(&upstream_failure(&mut p, peer_closed())), (Some("client"), None, Some("UF")));
    }

    #[test]
    fn other_endings_and_the_blackhole_stay() {
        let mut p = partial(true, false, false, None);
        let bh = Ending::Blackhole {
            pod: "server".into(),
            cluster: "BlackHoleCluster".into(),
            status: None,
            flag: None,
        };
        assert_eq!(upstream_failure(&mut p, bh.clone()), bh);
        let answered = Ending::EnvoyResponse {
            pod: "server".into(),
            status: Some(404),
            flag: Some("NR".into()),
            details: "route_not_found".into(),
            upstream: None,
        };
        assert_eq!(upstream_failure(&mut p, answered.clone()), answered);
        assert!(p.steps.is_empty());
    }
}
