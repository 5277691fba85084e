//! An Envoy hop: a connection handed to a pod's Envoy goes through its listener, filter chain,
//! route and cluster; each chosen endpoint becomes Envoy's own upstream connection, which
//! re-enters the pod's kernel as the proxy's uid.

use std::borrow::Cow;
use std::net::SocketAddr;

use super::ending::{Ending, Refusal, RejectedConfig, Undetermined};
use super::step::TlsOrigination;
use super::step::{Detail, HttpRoute};
use super::walk::{take_or_clone, Next, Partial, State, UpstreamOf};
use super::{EnvoyHop, Hop, Mesh, Pick, Pod, Start};
use crate::envoy::model::EndpointAddress;
use crate::envoy::select::transport::TransportPick;
use crate::envoy::select::{self, ClientBytes, ObjectRef, Outcome, Query, Upstream};
use crate::netfilter::eval::Entry;

pub(super) fn envoy(
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
        let why = Undetermined::NoConfigDump;
        return vec![(p, Err(Ending::Undetermined { pod: pod.name.clone(), why }))];
    };
    let client = p.wire.clone().unwrap_or_else(|| start.client.clone());
    if p.record {
        let first_step = p.steps.len();
        p.hops.push(Hop::Envoy { pod: pi, first_step, listener, orig_dst, src, client: client.clone() });
    }
    let mut query = envoy_query(mesh, start, listener, orig_dst, src);
    query.client = client.clone();
    let t = select::evaluate(cfg, &query);
    let mut hop = EnvoyHop { pod: pod.name.clone(), ..EnvoyHop::default() };
    let mut istio = Vec::new();
    let remember = |o: &ObjectRef, istio: &mut Vec<String>| {
        if let Some(c) = &o.istio_config {
            if !istio.contains(c) {
                istio.push(c.clone());
            }
        }
    };
    if let Some(a) = t.accepted_by {
        hop.listener = Some(a.name.clone());
        remember(&a, &mut istio);
        p.step(pi, Detail::ListenerAccepts { listener: a, orig_dst });
    }
    if let Some(h) = t.handoff {
        if h.matched.is_some() {
            hop.listener = Some(h.target.name.clone());
            remember(&h.target, &mut istio);
        }
        p.step(
            pi,
            Detail::Handoff { target: h.target, matched: h.matched, restored: h.restored_destination },
        );
    }
    if let Some(ft) = t.listener_filters_timeout {
        p.step(
            pi,
            Detail::ListenerFiltersTimeout { listener: ft.listener, filter: ft.filter, timeout: ft.timeout },
        );
    }
    if let Some(fc) = t.filter_chain {
        let name = if fc.chain.name.is_empty() {
            format!("#{}", fc.index.unwrap_or(0))
        } else {
            fc.chain.name.clone()
        };
        hop.filter_chain = Some(name);
        remember(&fc.chain, &mut istio);
        p.step(pi, Detail::FilterChain { chain: fc.chain, index: fc.index, via: fc.via });
    }
    // What this Envoy reads: the plaintext inside TLS its chain terminated, else the bytes.
    let plaintext = match &t.tls_termination {
        Some(term) => {
            p.step(
                pi,
                Detail::TlsTermination {
                    chain: term.chain.clone(),
                    socket: term.socket.clone(),
                    require_client_certificate: term.require_client_certificate,
                },
            );
            if let Some(up) = p.upstream_of.as_mut() {
                up.handshake_done = true;
            }
            p.inner.clone().unwrap_or(if start.request.is_some() {
                ClientBytes::Http1
            } else {
                ClientBytes::Opaque
            })
        }
        None => client,
    };
    let http = t.http.is_some();
    let retry = t.retry.clone();
    if let Some(h) = t.http {
        hop.route_config = Some(h.route_config.name.clone());
        if let Some(vh) = &h.virtual_host {
            hop.virtual_host = Some(vh.name.clone());
            remember(vh, &mut istio);
        }
        if let Some(r) = &h.route {
            hop.route = Some(if r.name.is_empty() { r.path.clone() } else { r.name.clone() });
            remember(r, &mut istio);
        }
        let route = HttpRoute {
            method: h.method,
            authority: h.authority,
            path: h.path,
            route_config: h.route_config,
            virtual_host: h.virtual_host,
            route: h.route,
            decision: h.decision,
        };
        p.step(pi, Detail::HttpRoute(Box::new(route)));
    }
    let mut out = Vec::new();
    // The original_src listener filter marks upstream sockets with the mark the pod's Istio
    // configures (1337, 0x539, by default).
    let mark =
        if t.socket.as_ref().is_some_and(|s| s.original_src) { pod.istio.original_src_mark } else { 0 };
    let chosen = t.clusters.iter().find(|c| c.selected).map(|c| c.cluster.clone());
    let name = || pod.name.clone();
    match t.outcome {
        Outcome::Forwarded { .. } | Outcome::Weighted => {
            let weighted = matches!(t.outcome, Outcome::Weighted);
            let total: u64 = t.clusters.iter().map(|c| u64::from(c.weight.unwrap_or(1))).sum::<u64>().max(1);
            let picks: Vec<_> = if weighted {
                t.clusters.iter().collect()
            } else {
                t.clusters.iter().filter(|c| c.selected).take(1).collect()
            };
            let n = picks.len();
            let mut p = Some(p);
            for (ci, c) in picks.into_iter().enumerate() {
                let Some(mut q) = take_or_clone(&mut p, ci + 1 == n) else { break };
                let mut h = hop.clone();
                h.istio_config = istio.clone();
                if let Some(ic) = c.origin.as_ref().and_then(|o| o.istio_config.as_ref()) {
                    if !h.istio_config.contains(ic) {
                        h.istio_config.push(ic.clone());
                    }
                }
                if weighted {
                    q.weight *= f64::from(c.weight.unwrap_or(1)) / total as f64;
                }
                h.cluster = Some(c.cluster.clone());
                q.last_cluster = Some(c.cluster.clone());
                q.upstream_of = Some(UpstreamOf {
                    pod: pi,
                    pod_name: pod.name.clone(),
                    http,
                    tls: false,
                    handshake_done: false,
                    retry: retry.clone(),
                });
                let authority =
                    if http { start.request.as_ref().and_then(|r| r.host.as_deref()) } else { None };
                let conn = Conn { plaintext: &plaintext, authority };
                out.extend(upstream(pod, pi, q, h, (&c.cluster, &c.upstream), start.pick, mark, conn));
            }
        }
        Outcome::HttpResponse { status, flag, details, .. } => {
            out.push(answer(pod, p, hop, istio, chosen, (Some(status), flag, details)));
        }
        Outcome::Closed { flag, details } => {
            out.push(answer(pod, p, hop, istio, chosen, (None, flag, details)))
        }
        Outcome::Unresolved { cluster, host } => {
            hop.cluster = Some(cluster);
            hop.istio_config = istio;
            p.envoy.push(hop);
            out.push((p, Err(Ending::Unresolved { pod: name(), host })));
        }
        Outcome::NoListener => {
            out.push((p, Err(Ending::Refused { pod: name(), dst: listener, by: Refusal::NoEnvoyListener })));
        }
        Outcome::Undetermined { reason } => {
            hop.istio_config = istio;
            p.envoy.push(hop);
            out.push((p, Err(Ending::Undetermined { pod: name(), why: Undetermined::Envoy { reason } })));
        }
        Outcome::Rejected { object, resource: l, reason, instead } => {
            if object == crate::envoy::validate::ObjectKind::Listener {
                hop.listener = Some(l.name.clone());
            } else {
                hop.cluster = Some(l.name.clone());
            }
            hop.istio_config = istio;
            p.envoy.push(hop);
            let (name, path, line) = (l.name, l.path, l.line);
            let r = RejectedConfig { pod: pod.name.clone(), object, name, path, line, reason, instead };
            out.push((p, Err(Ending::RejectedConfig(Box::new(r)))));
        }
        Outcome::Stalled { listener: l, filter } => {
            p.envoy.push(hop);
            out.push((p, Err(Ending::Stalled { pod: name(), listener: l.name, filter })));
        }
    }
    out
}

/// Envoy answers the request itself or closes the connection. Whether reached through a route
/// or a TCP proxy, Istio's blackhole cluster is one ending: the connection goes nowhere (its
/// lack of hosts is the design).
fn answer(
    pod: &Pod,
    mut p: Partial,
    mut hop: EnvoyHop,
    istio: Vec<String>,
    cluster: Option<String>,
    (status, flag, details): (Option<u16>, Option<String>, String),
) -> Next {
    hop.istio_config = istio;
    hop.cluster = cluster;
    let name = hop.pod.clone();
    let e = match hop.cluster.as_deref() {
        Some(c) if pod.istio.is_blackhole_cluster(c) => {
            Ending::Blackhole { pod: name, cluster: c.to_string(), status, flag }
        }
        _ => Ending::EnvoyResponse { pod: name, status, flag, details, upstream: None },
    };
    p.envoy.push(hop);
    (p, Err(e))
}

/// Envoy's whole decision for a connection of the walk of `start` that reached pod `pod`'s
/// Envoy at `listener` (original destination `orig_dst`, peer `src`), as the walk made it: for
/// reports that show the alternatives (see [`super::Hop::Envoy`]). `None` without a dump.
pub fn envoy_hop_trace(
    mesh: &Mesh,
    start: &Start,
    pod: usize,
    (listener, orig_dst, src): (SocketAddr, SocketAddr, SocketAddr),
) -> Option<select::Trace> {
    envoy_hop_trace_on(mesh, start, pod, (listener, orig_dst, src), &start.client)
}

/// As [`envoy_hop_trace`], for a connection whose first bytes are `client` (the
/// [`Hop::Envoy`]'s: TLS an Envoy before it originated).
pub fn envoy_hop_trace_on(
    mesh: &Mesh,
    start: &Start,
    pod: usize,
    (listener, orig_dst, src): (SocketAddr, SocketAddr, SocketAddr),
    client: &ClientBytes,
) -> Option<select::Trace> {
    let cfg = mesh.pods.get(pod)?.envoy.as_ref()?;
    let mut q = envoy_query(mesh, start, listener, orig_dst, src);
    q.client = client.clone();
    Some(select::evaluate(cfg, &q))
}

/// What Envoy is asked for a connection delivered to `listener` (original destination
/// `orig_dst`, peer `src`) during the walk of `start`.
pub fn envoy_query<'m>(
    mesh: &'m Mesh,
    start: &Start,
    listener: SocketAddr,
    orig_dst: SocketAddr,
    src: SocketAddr,
) -> Query<'m> {
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
        dns: Cow::Borrowed(&mesh.names),
        random_value,
    }
}

/// The connection an Envoy forwards: the plaintext it read, and the HTTP request's host (for
/// `auto_sni`; none for a TCP proxy).
struct Conn<'a> {
    plaintext: &'a ClientBytes,
    authority: Option<&'a str>,
}

/// The bytes the next hop sees on an upstream connection with transport socket `tp`: a TLS
/// ClientHello (and the step that says so), or the plaintext as it was read.
fn originate(
    q: &mut Partial,
    pi: usize,
    (cluster, ep): (&str, &str),
    tp: Option<&TransportPick>,
    conn: &Conn,
) {
    let hello = tp.and_then(|t| Some((t, t.client_hello(conn.authority)?)));
    let Some((t, hello)) = hello else {
        q.wire = Some(conn.plaintext.clone());
        q.inner = None;
        return;
    };
    let socket = t.socket.as_ref().map(|s| s.name.clone()).unwrap_or_default();
    q.step(
        pi,
        Detail::TlsOrigination(Box::new(TlsOrigination {
            cluster: cluster.to_string(),
            endpoint: ep.to_string(),
            socket,
            socket_match: t.socket_match.clone(),
            sni: hello.sni.clone(),
            sni_from: hello.sni_from,
            alpn: hello.alpn.clone(),
            client_certificate: hello.certificate,
        })),
    );
    q.wire = Some(ClientBytes::Tls { sni: hello.sni, alpn: hello.alpn });
    q.inner = Some(conn.plaintext.clone());
    if let Some(up) = q.upstream_of.as_mut() {
        up.tls = true;
    }
}

/// From a chosen cluster to the upstream connection(s), one per endpoint branch.
#[allow(clippy::too_many_arguments)]
fn upstream(
    pod: &Pod,
    pi: usize,
    p: Partial,
    hop: EnvoyHop,
    (cluster, up): (&str, &Upstream),
    pick: Pick,
    mark: u32,
    conn: Conn,
) -> Vec<Next> {
    let name = pod.name.clone();
    let end = |mut p: Partial, hop: EnvoyHop, e: Ending| {
        p.envoy.push(hop);
        vec![(p, Err(e))]
    };
    match up {
        Upstream::Endpoint { address, source_address, via, candidates, transports } => {
            if pod.istio.is_blackhole_cluster(cluster) {
                let e = Ending::Blackhole { pod: name, cluster: cluster.into(), status: None, flag: None };
                return end(p, hop, e);
            }
            let mut eps: Vec<(&EndpointAddress, Option<&TransportPick>)> = match pick {
                _ if candidates.is_empty() => vec![(address, transports.first())],
                Pick::All => candidates.iter().zip(0..).map(|(c, i)| (c, transports.get(i))).collect(),
                Pick::First => vec![(&candidates[0], transports.first())],
                Pick::RandomValue(n) => {
                    let i = (n % candidates.len() as u64) as usize;
                    vec![(&candidates[i], transports.get(i))]
                }
            };
            eps.dedup_by(|a, b| a.0 == b.0);
            let n = eps.len() as f64;
            let count = eps.len();
            let mut p = Some(p);
            eps.into_iter()
                .enumerate()
                .filter_map(|(ei, (ep, tp))| {
                    let mut q = take_or_clone(&mut p, ei + 1 == count)?;
                    q.weight /= n;
                    let mut h = hop.clone();
                    let ep_text = ep.to_string();
                    h.endpoint = Some(ep_text.clone());
                    h.source_address = source_address.map(|s| s.to_string());
                    q.step(
                        pi,
                        Detail::Endpoint {
                            cluster: cluster.to_string(),
                            endpoint: ep_text.clone(),
                            source: *source_address,
                            via: via.clone(),
                        },
                    );
                    originate(&mut q, pi, (cluster, &ep_text), tp, &conn);
                    q.envoy.push(h);
                    let next = match ep {
                        EndpointAddress::Ip { ip, port } => {
                            let dst = SocketAddr::new(*ip, *port);
                            let src_ip = source_address.unwrap_or_else(|| pod.source_for(dst.ip()));
                            let src = SocketAddr::new(src_ip, 40000 + q.hop_count() as u16);
                            Ok(State::Kernel {
                                pod: pi,
                                entry: Entry::Output,
                                src,
                                dst,
                                uid: pod.istio.proxy_uid,
                                gid: pod.istio.proxy_gid,
                                mark,
                            })
                        }
                        EndpointAddress::Dns { host, .. } => {
                            Err(Ending::Unresolved { pod: name.clone(), host: host.clone() })
                        }
                        _ => Err(Ending::Undetermined {
                            pod: name.clone(),
                            why: Undetermined::EndpointNotAnAddress { endpoint: ep_text },
                        }),
                    };
                    Some((q, next))
                })
                .collect()
        }
        Upstream::ClusterNotFound | Upstream::NoHealthyHost { .. } => {
            let flag = up.flag().map(str::to_string);
            let ending = if pod.istio.is_blackhole_cluster(cluster) {
                Ending::Blackhole { pod: name, cluster: cluster.into(), status: Some(503), flag }
            } else {
                let details = match up {
                    Upstream::NoHealthyHost { reason } => reason.clone(),
                    _ => format!("cluster {cluster} not found"),
                };
                Ending::EnvoyResponse { pod: name, status: Some(503), flag, details, upstream: None }
            };
            end(p, hop, ending)
        }
        Upstream::Unresolved { host } => end(p, hop, Ending::Unresolved { pod: name, host: host.clone() }),
        Upstream::EndpointsUnknown { service_name } => {
            let why = Undetermined::EndpointsNotInDump {
                cluster: cluster.to_string(),
                service_name: service_name.clone(),
            };
            end(p, hop, Ending::Undetermined { pod: name, why })
        }
        Upstream::Unsupported { reason } => {
            let why = Undetermined::Envoy { reason: reason.clone() };
            end(p, hop, Ending::Undetermined { pod: name, why })
        }
    }
}
