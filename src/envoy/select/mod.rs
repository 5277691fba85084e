//! Envoy's decisions for one connection (and request): accepting listener, `use_original_dst`
//! hand-off, listener filters, filter chain, network filter, cluster, endpoint and upstream
//! source address — or the response/flag Envoy produces instead.

pub mod chain;
mod http;
pub mod listener;
pub mod matcher;
mod stops;
pub mod transport;
pub mod upstream;

use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use super::model::{
    EnvoyConfig, FilterChain, Listener, NetworkFilterKind, RouteSource, TcpProxy, TcpV1Route,
};
use chain::{MatchInputs, Step};
pub use http::HttpStep;
pub use listener::HandoffMatch;
use listener::{ListenerFilterStep, SocketState};
use matcher::MatcherResult;
use stops::{filters_waited, rejected_outcome};
pub use upstream::{NameTable, Upstream, UpstreamContext};

use crate::envoy::validate::{Instead, ObjectKind};

/// What the client's first bytes look like to Envoy's inspectors.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ClientBytes {
    /// A TLS ClientHello (SNI, ALPN in client order).
    Tls { sni: Option<String>, alpn: Vec<String> },
    /// An HTTP/1.1 request line.
    Http1,
    /// An HTTP/1.0 request line.
    Http10,
    /// The HTTP/2 prior-knowledge preface.
    H2c,
    /// Anything else.
    #[default]
    Opaque,
    /// Nothing: a server-first protocol (MySQL, SMTP ...), the client waits for the server.
    ServerFirst,
}

/// An HTTP request, when the connection carries one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpRequest {
    pub host: Option<String>,
    pub path: String,
    pub method: String,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
}

/// One connection to evaluate.
#[derive(Debug, Clone)]
pub struct Query<'a> {
    /// Where the kernel delivered the connection (e.g. `10.1.2.3:15001` after REDIRECT).
    pub listener_addr: SocketAddr,
    /// Start at this listener instead of looking one up by `listener_addr` (internal
    /// listeners, or to evaluate one listener in isolation).
    pub listener_name: Option<String>,
    /// The original destination (`SO_ORIGINAL_DST`, or the local address under TPROXY).
    pub dst: SocketAddr,
    /// The downstream peer.
    pub src: SocketAddr,
    pub client: ClientBytes,
    pub request: Option<HttpRequest>,
    /// DNS answers for STRICT_DNS / LOGICAL_DNS hosts; borrowed from the caller's table.
    pub dns: std::borrow::Cow<'a, NameTable>,
    /// Selects among weighted clusters (`r % total`); `None` keeps every branch.
    pub random_value: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectRef {
    pub name: String,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub istio_config: Option<String>,
}

impl ObjectRef {
    fn of(o: &super::model::Origin, name: &str) -> Self {
        ObjectRef {
            name: name.to_string(),
            path: o.path.clone(),
            line: o.line,
            istio_config: o.istio_config.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Handoff {
    pub restored_destination: SocketAddr,
    /// `exact`, `wildcard`, or absent when the connection stays.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched: Option<HandoffMatch>,
    pub target: ObjectRef,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainChoice {
    /// `filter_chain_match`, `filter_chain_matcher` or `default_filter_chain`.
    pub via: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    pub chain: ObjectRef,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterPick {
    pub cluster: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    pub selected: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<ObjectRef>,
    pub upstream: Upstream,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NetworkStep {
    TcpProxy {
        filter: String,
    },
    HttpConnectionManager {
        filter: String,
        /// RDS name, or the inline route configuration's name.
        route_config: String,
        inline: bool,
        route_config_found: bool,
    },
}

/// The final result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// A connection to `endpoint` from `source_address` (None = kernel's choice).
    Forwarded {
        cluster: String,
        endpoint: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        source_address: Option<IpAddr>,
    },
    /// Several weighted clusters and no `random_value`: see `clusters`.
    Weighted,
    /// Envoy answers the HTTP request itself.
    HttpResponse {
        status: u16,
        flag: Option<String>,
        details: String,
        /// The `Location` of a redirect.
        #[serde(skip_serializing_if = "Option::is_none")]
        location: Option<String>,
    },
    /// The downstream connection is closed after accept (TCP level; no status).
    Closed { flag: Option<String>, details: String },
    /// A DNS cluster whose host is not in the caller's name table.
    Unresolved { cluster: String, host: String },
    /// Nothing listens at `listener_addr`.
    NoListener,
    /// meshpath cannot decide (a feature it does not model).
    Undetermined { reason: String },
    /// The listener that would take the connection is one Envoy refuses (see
    /// [`crate::envoy::validate`]): its reason, in Envoy's words where known, and what Envoy
    /// serves instead.
    Rejected { object: ObjectKind, resource: ObjectRef, reason: String, instead: Instead },
    /// A listener filter waits for client bytes that never come (a server-first protocol)
    /// and the listener has no `listener_filters_timeout` (`0s`).
    Stalled { listener: ObjectRef, filter: String },
}

/// The listener filters timed out waiting for client bytes and the connection went on
/// (`continue_on_listener_filters_timeout`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FilterTimeout {
    pub listener: String,
    pub filter: String,
    /// `listener_filters_timeout` as the dump gives it (Envoy's default `15s` when absent).
    pub timeout: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Trace {
    pub accepted_by: Option<ObjectRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handoff: Option<Handoff>,
    pub listener_filters: Vec<ListenerFilterStep>,
    pub socket: Option<SocketState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter_chain: Option<ChainChoice>,
    /// The `filter_chain_match` narrowing when it found no chain (and no default applied).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub no_chain_steps: Vec<Step>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_filter: Option<NetworkStep>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<http::HttpStep>,
    pub clusters: Vec<ClusterPick>,
    pub outcome: Outcome,
    /// The chain's `DownstreamTlsContext` terminated the connection's TLS.
    #[serde(skip)]
    pub tls_termination: Option<TlsTermination>,
    /// The retry policy of the route that forwarded the request (the route's, else its
    /// virtual host's).
    #[serde(skip)]
    pub retry: Option<super::route::RetryPolicy>,
    /// The listener filters waited `timeout` before the connection went on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listener_filters_timeout: Option<FilterTimeout>,
}

/// A filter chain's transport socket ends the client's TLS; its filters see the plaintext.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsTermination {
    pub chain: ObjectRef,
    /// The transport socket's name (`envoy.transport_sockets.tls`).
    pub socket: String,
    pub require_client_certificate: bool,
    /// The server's `alpn_protocols`.
    pub alpn: Vec<String>,
}

/// Evaluates one connection against the dump.
pub fn evaluate(cfg: &EnvoyConfig, q: &Query) -> Trace {
    let mut t = Trace {
        accepted_by: None,
        handoff: None,
        listener_filters: Vec::new(),
        socket: None,
        filter_chain: None,
        no_chain_steps: Vec::new(),
        network_filter: None,
        http: None,
        clusters: Vec::new(),
        outcome: Outcome::NoListener,
        tls_termination: None,
        retry: None,
        listener_filters_timeout: None,
    };
    let first = match &q.listener_name {
        Some(name) => cfg.listeners.iter().position(|l| l.name == *name && l.state.serves()),
        None => listener::accepting(cfg, q.listener_addr),
    };
    let Some(first) = first else {
        // Only a rejected update (error_state) would have taken it: Envoy has no such listener.
        let rejected = match &q.listener_name {
            Some(name) => cfg.listeners.iter().position(|l| l.name == *name),
            None => listener::rejected_accepting(cfg, q.listener_addr),
        };
        if let Some(o) = rejected.and_then(|i| rejected_outcome(cfg, i)) {
            t.outcome = o;
        }
        return t;
    };
    let Some(l0) = cfg.listeners.get(first) else {
        return t;
    };
    if let Some(o) = rejected_outcome(cfg, first) {
        t.outcome = o;
        return t;
    }
    t.accepted_by = Some(ObjectRef::of(&l0.origin, &l0.name));
    // Without original_dst the local address is the accepting socket's own (a wildcard bind
    // reports the destination IP); under TPROXY (`transparent`) it already is the original one.
    let local = if l0.transparent || l0.address.socket().is_none() {
        q.dst
    } else if q.listener_addr.ip().is_unspecified() {
        SocketAddr::new(q.dst.ip(), q.listener_addr.port())
    } else {
        q.listener_addr
    };
    let mut st = SocketState {
        local,
        restored: false,
        transport_protocol: String::new(),
        server_name: String::new(),
        application_protocols: Vec::new(),
        original_src: false,
    };
    t.listener_filters = listener::run_filters(l0, &q.client, q.dst, &mut st);
    if let Some(o) = filters_waited(l0, &mut t) {
        t.outcome = o;
        return t;
    }
    let mut current = l0;
    if l0.use_original_dst && st.restored {
        if let Some((i, how)) = listener::handoff_target(cfg, st.local) {
            if let Some(target) = cfg.listeners.get(i).filter(|_| i != first) {
                t.handoff = Some(Handoff {
                    restored_destination: st.local,
                    matched: Some(how),
                    target: ObjectRef::of(&target.origin, &target.name),
                });
                if let Some(o) = rejected_outcome(cfg, i) {
                    t.outcome = o;
                    return t;
                }
                // The target runs its own listener filters on the same socket; no second hop.
                let more = listener::run_filters_no_handoff(target, &q.client, q.dst, &mut st);
                t.listener_filters.extend(more);
                if let Some(o) = filters_waited(target, &mut t) {
                    t.outcome = o;
                    return t;
                }
                current = target;
            }
        }
        if t.handoff.is_none() {
            t.handoff = Some(Handoff {
                restored_destination: st.local,
                matched: None,
                target: ObjectRef::of(&l0.origin, &l0.name),
            });
            let rejected = listener::rejected_handoff_target(cfg, st.local);
            if let Some(o) = rejected.and_then(|i| rejected_outcome(cfg, i)) {
                t.outcome = o;
                return t;
            }
        }
    }
    if st.transport_protocol.is_empty() {
        st.transport_protocol = "raw_buffer".into();
    }
    let inputs = MatchInputs {
        local: st.local,
        source: q.src,
        direct_source: q.src,
        server_name: st.server_name.clone(),
        transport_protocol: st.transport_protocol.clone(),
        application_protocols: st.application_protocols.clone(),
    };
    t.socket = Some(st.clone());
    let chain = match select_chain(current, &inputs) {
        Ok((c, steps)) => {
            t.no_chain_steps = steps;
            c
        }
        Err(reason) => {
            t.outcome = Outcome::Undetermined { reason };
            return t;
        }
    };
    let Some((fc, choice)) = chain else {
        t.outcome = Outcome::Closed {
            flag: Some("NR".into()),
            details: format!("filter_chain_not_found (listener {})", current.name),
        };
        return t;
    };
    if let Some(tls) = &fc.downstream_tls {
        // A TLS server socket (source/common/tls/ssl_socket.cc) handshakes before any filter
        // reads: bytes that are not a ClientHello fail the handshake and Envoy closes.
        if !matches!(q.client, ClientBytes::Tls { .. }) {
            t.filter_chain = Some(choice);
            t.outcome = Outcome::Closed {
                flag: None,
                details: "TLS handshake failed: the chain terminates TLS and the client sent no ClientHello"
                    .into(),
            };
            return t;
        }
        t.tls_termination = Some(TlsTermination {
            chain: choice.chain.clone(),
            socket: fc.transport_socket.clone().unwrap_or_default(),
            require_client_certificate: tls.require_client_certificate,
            alpn: tls.alpn.clone(),
        });
    }
    t.filter_chain = Some(choice);
    network(cfg, q, &st, fc, &mut t);
    t
}

type Found<'l> = (&'l FilterChain, &'static str, Option<usize>);
type ChainPick<'l> = Option<(&'l FilterChain, ChainChoice)>;

/// Classic `filter_chain_match` or the `filter_chain_matcher` tree, then `default_filter_chain`.
fn select_chain<'l>(l: &'l Listener, inp: &MatchInputs) -> Result<(ChainPick<'l>, Vec<Step>), String> {
    let default = || l.default_filter_chain.as_ref().map(|d| (d, "default_filter_chain", None));
    let (found, steps): (Option<Found<'l>>, Vec<Step>) = if let Some(m) = &l.filter_chain_matcher {
        match matcher::evaluate(m, inp) {
            MatcherResult::Chain(name) => {
                let hit = l.filter_chains.iter().position(|c| c.name.as_deref() == Some(name.as_str()));
                let step = Step {
                    criterion: "filter_chain_matcher",
                    branch: name,
                    remaining: hit.into_iter().collect(),
                };
                // A name that matches no chain closes the connection (no default).
                (
                    hit.and_then(|i| l.filter_chains.get(i).map(|c| (c, "filter_chain_matcher", Some(i)))),
                    vec![step],
                )
            }
            MatcherResult::NoMatch => (default(), Vec::new()),
            MatcherResult::Unsupported(u) => return Err(format!("filter_chain_matcher uses {u}")),
        }
    } else {
        let d = chain::select(&l.filter_chains, inp);
        let hit = d.chain.and_then(|i| l.filter_chains.get(i).map(|c| (c, "filter_chain_match", Some(i))));
        (hit.or_else(default), d.steps)
    };
    let Some((c, via, index)) = found else {
        return Ok((None, steps));
    };
    let name = c.name.clone().unwrap_or_default();
    let choice = ChainChoice { via, index, chain: ObjectRef::of(&c.origin, &name), steps };
    Ok((Some((c, choice)), Vec::new()))
}

fn network(cfg: &EnvoyConfig, q: &Query, st: &SocketState, fc: &FilterChain, t: &mut Trace) {
    let Some(f) = fc.terminal() else {
        t.outcome = if fc.filters.is_empty() {
            Outcome::Closed { flag: None, details: "filter chain has no filters".into() }
        } else {
            Outcome::Undetermined {
                reason: format!(
                    "no modelled terminal filter among [{}]",
                    fc.filters.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ")
                ),
            }
        };
        return;
    };
    let restored = st.restored.then_some(st.local);
    match &f.kind {
        NetworkFilterKind::TcpProxy(tp) => {
            t.network_filter = Some(NetworkStep::TcpProxy { filter: f.name.clone() });
            let ctx = UpstreamContext { restored_destination: restored, headers: &[] };
            let picks = tcp_clusters(tp, st, q);
            if picks.is_empty() {
                t.outcome = Outcome::Closed {
                    flag: Some("NR".into()),
                    details: "tcp_proxy has no matching route".into(),
                };
                return;
            }
            let total: u64 = picks.iter().map(|(_, w)| u64::from(w.unwrap_or(0))).sum();
            let selected = q.random_value.and_then(|r| pick_weighted(&picks, r, total));
            finish(cfg, q, st, picks, selected, &ctx, false, t);
        }
        NetworkFilterKind::HttpConnectionManager(h) => {
            let (name, inline, rc) = match &h.route_source {
                RouteSource::Rds(n) => (n.clone(), false, cfg.route_config(n)),
                RouteSource::Inline(r) => (r.name.clone(), true, Some(&**r)),
                RouteSource::Scoped => {
                    t.outcome = Outcome::Undetermined { reason: "scoped_routes are not modelled".into() };
                    return;
                }
                RouteSource::Missing => {
                    t.outcome = Outcome::Undetermined {
                        reason: "http_connection_manager has no usable route configuration".into(),
                    };
                    return;
                }
            };
            t.network_filter = Some(NetworkStep::HttpConnectionManager {
                filter: f.name.clone(),
                route_config: name.clone(),
                inline,
                route_config_found: rc.is_some(),
            });
            let Some(rc) = rc else {
                if !cfg.has_routes() {
                    t.outcome = Outcome::Undetermined {
                        reason: format!(
                            "route configuration {name:?} is not in the dump (it has no routes section)"
                        ),
                    };
                    return;
                }
                // RDS not delivered: Envoy has no route table → every request 404 NR.
                t.outcome = failure(true, 404, "NR", "route_not_found");
                return;
            };
            let tls = fc.transport_socket.is_some();
            http::route_request(cfg, q, st, h, rc, restored, tls, t);
        }
        NetworkFilterKind::Other => {}
    }
}

/// tcp_proxy cluster candidates: `cluster`, `weighted_clusters`, or the v1 route table.
fn tcp_clusters(tp: &TcpProxy, st: &SocketState, q: &Query) -> Vec<(String, Option<u32>)> {
    if !tp.weighted_clusters.is_empty() {
        return tp.weighted_clusters.iter().map(|w| (w.name.clone(), Some(w.weight))).collect();
    }
    if let Some(c) = &tp.cluster {
        return vec![(c.clone(), None)];
    }
    tp.v1_routes
        .iter()
        .find(|r| v1_route_matches(r, st.local, q.src))
        .map(|r| vec![(r.cluster.clone(), None)])
        .unwrap_or_default()
}

fn ports_match(spec: &Option<String>, port: u16) -> bool {
    let Some(spec) = spec else { return true };
    spec.split(',').any(|part| {
        let part = part.trim();
        match part.split_once('-') {
            Some((a, b)) => match (a.trim().parse::<u16>(), b.trim().parse::<u16>()) {
                (Ok(a), Ok(b)) => (a..=b).contains(&port),
                _ => false,
            },
            None => part.parse::<u16>() == Ok(port),
        }
    })
}

fn v1_route_matches(r: &TcpV1Route, local: SocketAddr, src: SocketAddr) -> bool {
    let ip_ok = |list: &[ipnet::IpNet], ip: IpAddr| list.is_empty() || list.iter().any(|n| n.contains(&ip));
    ip_ok(&r.destination_ip_list, local.ip())
        && ports_match(&r.destination_ports, local.port())
        && ip_ok(&r.source_ip_list, src.ip())
        && ports_match(&r.source_ports, src.port())
}

/// Resolves the candidate clusters (`selected` = the weighted pick, if any) and sets the
/// outcome.
#[allow(clippy::too_many_arguments)]
pub(crate) fn finish(
    cfg: &EnvoyConfig,
    q: &Query,
    st: &SocketState,
    picks: Vec<(String, Option<u32>)>,
    selected: Option<usize>,
    ctx: &UpstreamContext<'_>,
    http: bool,
    t: &mut Trace,
) {
    let selected = if picks.len() == 1 { Some(0) } else { selected };
    for (i, (name, weight)) in picks.iter().enumerate() {
        let mut upstream = upstream::choose(cfg, name, ctx, &q.dns);
        if st.original_src {
            if let Upstream::Endpoint { source_address, .. } = &mut upstream {
                *source_address = Some(q.src.ip());
            }
        }
        let origin = cfg.cluster(name).map(|c| ObjectRef::of(&c.origin, &c.name));
        t.clusters.push(ClusterPick {
            cluster: name.clone(),
            weight: *weight,
            selected: selected == Some(i),
            origin,
            upstream,
        });
    }
    let Some(sel) = selected.and_then(|i| t.clusters.get(i)) else {
        t.outcome = Outcome::Weighted;
        return;
    };
    if let Some(f) = crate::envoy::validate::cluster_rejection(cfg, &sel.cluster) {
        let resource =
            ObjectRef { name: f.name.clone(), path: f.path.clone(), line: f.line, istio_config: None };
        t.outcome = Outcome::Rejected {
            object: ObjectKind::Cluster,
            resource,
            reason: f.reason.clone(),
            instead: f.instead.clone(),
        };
        return;
    }
    t.outcome = match &sel.upstream {
        Upstream::Endpoint { address, source_address, .. } => Outcome::Forwarded {
            cluster: sel.cluster.clone(),
            endpoint: address.to_string(),
            source_address: *source_address,
        },
        Upstream::ClusterNotFound => failure(http, 503, "NC", "cluster_not_found"),
        Upstream::NoHealthyHost { .. } => failure(http, 503, "UH", "no_healthy_upstream"),
        Upstream::Unresolved { host } => {
            Outcome::Unresolved { cluster: sel.cluster.clone(), host: host.clone() }
        }
        Upstream::EndpointsUnknown { service_name } => Outcome::Undetermined {
            reason: format!(
                "EDS endpoints for {service_name} are not in the dump (collect it with ?include_eds)"
            ),
        },
        Upstream::Unsupported { reason } => Outcome::Undetermined { reason: reason.clone() },
    };
}

pub(crate) fn failure(http: bool, status: u16, flag: &str, details: &str) -> Outcome {
    if http {
        Outcome::HttpResponse { status, flag: Some(flag.into()), details: details.into(), location: None }
    } else {
        Outcome::Closed { flag: Some(flag.into()), details: details.into() }
    }
}

/// `r % Σweights` against the intervals `[0,w1)`, `[w1,w1+w2)`, … in list order.
pub fn pick_weighted(picks: &[(String, Option<u32>)], r: u64, total: u64) -> Option<usize> {
    if total == 0 {
        return None;
    }
    let mut x = r % total;
    for (i, (_, w)) in picks.iter().enumerate() {
        let w = u64::from(w.unwrap_or(0));
        if x < w {
            return Some(i);
        }
        x -= w;
    }
    None
}

#[cfg(test)]
mod tests;
