//! Accepting listener, `use_original_dst` hand-off and listener filters (Envoy:
//! source/common/listener_manager/connection_handler_impl.cc, active_tcp_listener.cc).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::Serialize;

use super::super::model::{EnvoyConfig, Listener, ListenerFilterKind, ResourceState};
use super::ClientBytes;

/// The listener bound to `addr`: exact `ip:port`, else the wildcard of the same family. Only
/// listeners that bind a socket and serve traffic count. A listener is bound to its `address`
/// and to each of its `additional_addresses` ([`EnvoyConfig::listeners_at`]): Envoy opens a
/// socket per address (source/common/listener_manager/listener_impl.cc,
/// `ListenerImpl::ListenerImpl`) and `ConnectionHandlerImpl::addListener`
/// (connection_handler_impl.cc) indexes the listener under each of them.
pub fn accepting(cfg: &EnvoyConfig, addr: SocketAddr) -> Option<usize> {
    let bound = |l: &Listener| l.bind_to_port && l.state.serves();
    let exact = cfg.listeners_at(addr).into_iter().find(|&i| cfg.listeners.get(i).is_some_and(bound));
    exact.or_else(|| wildcard(cfg, addr, bound))
}

fn wildcard(cfg: &EnvoyConfig, addr: SocketAddr, ok: impl Fn(&Listener) -> bool) -> Option<usize> {
    let any = |ip: IpAddr| SocketAddr::new(ip, addr.port());
    let v4 = any(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let v6 = any(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    let find =
        |a: SocketAddr| cfg.listeners_at(a).into_iter().find(|&i| cfg.listeners.get(i).is_some_and(&ok));
    if addr.is_ipv4() {
        // A non-v6only `[::]:p` listener also serves v4 unless a real `0.0.0.0:p` exists.
        find(v4).or_else(|| find(v6))
    } else {
        find(v6)
    }
}

/// The listener a rejected update (`error_state`) would bind at `addr`, when no serving
/// listener takes it: Envoy has no such listener, the connection is refused.
pub fn rejected_accepting(cfg: &EnvoyConfig, addr: SocketAddr) -> Option<usize> {
    let rejected = |l: &Listener| l.bind_to_port && l.state == ResourceState::Error;
    let exact = cfg.listeners_at(addr).into_iter().find(|&i| cfg.listeners.get(i).is_some_and(rejected));
    exact.or_else(|| wildcard(cfg, addr, rejected))
}

/// The listener a rejected update (`error_state`) would have been for a hand-off to
/// `restored`, when no serving listener is: Envoy has no such listener and the connection
/// stays where it is, so a path that needed it meets the rejection.
pub fn rejected_handoff_target(cfg: &EnvoyConfig, restored: SocketAddr) -> Option<usize> {
    let rejected = |l: &Listener| l.state == ResourceState::Error;
    let exact = cfg.listeners_at(restored).into_iter().find(|&i| cfg.listeners.get(i).is_some_and(rejected));
    exact.or_else(|| wildcard(cfg, restored, rejected))
}

/// The status of a listener filter that waits for client bytes (a server-first client).
pub const WAITING: &str = "waiting";

/// Whether a proto3 JSON duration (`"0s"`, `"0.000s"`) is zero.
pub fn duration_is_zero(d: &str) -> bool {
    d.trim().trim_end_matches('s').parse::<f64>().is_ok_and(|v| v == 0.0)
}

/// Hand-off target for a restored destination: exact `ip:port` among all serving listeners
/// (including `bind_to_port: false`), else the same-family wildcard, else none (stay). Any of a
/// listener's addresses counts, as in `ConnectionHandlerImpl::getBalancedHandlerByAddress`
/// (connection_handler_impl.cc), which searches `tcp_listener_map_by_address_`.
pub fn handoff_target(cfg: &EnvoyConfig, restored: SocketAddr) -> Option<(usize, HandoffMatch)> {
    let serving = |l: &Listener| l.state.serves();
    if let Some(i) =
        cfg.listeners_at(restored).into_iter().find(|&i| cfg.listeners.get(i).is_some_and(serving))
    {
        return Some((i, HandoffMatch::Exact));
    }
    wildcard(cfg, restored, serving).map(|i| (i, HandoffMatch::Wildcard))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoffMatch {
    Exact,
    Wildcard,
}

/// Socket state the listener filters read and write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SocketState {
    pub local: SocketAddr,
    pub restored: bool,
    /// Empty until a filter sets it (`raw_buffer` is applied before chain matching).
    pub transport_protocol: String,
    pub server_name: String,
    pub application_protocols: Vec<String>,
    /// `original_src` ran: the upstream connection uses the downstream peer's address.
    pub original_src: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListenerFilterStep {
    pub listener: String,
    pub filter: String,
    /// `ran`, `disabled` (filter_disabled matched) or `no-op`.
    pub status: &'static str,
    pub effect: String,
}

/// Runs a hand-off target's listener filters (its `use_original_dst` does not hand off again).
pub fn run_filters_no_handoff(
    l: &Listener,
    client: &ClientBytes,
    original_dst: SocketAddr,
    st: &mut SocketState,
) -> Vec<ListenerFilterStep> {
    run_filters(l, client, original_dst, st)
}

/// Runs `l`'s listener filters (with `use_original_dst` as an implicit leading original_dst).
pub fn run_filters(
    l: &Listener,
    client: &ClientBytes,
    original_dst: SocketAddr,
    st: &mut SocketState,
) -> Vec<ListenerFilterStep> {
    let mut out = Vec::new();
    let step = |filter: &str, status: &'static str, effect: String| ListenerFilterStep {
        listener: l.name.clone(),
        filter: filter.to_string(),
        status,
        effect,
    };
    if l.use_original_dst {
        st.local = original_dst;
        st.restored = true;
        out.push(step("use_original_dst", "ran", format!("local address restored to {original_dst}")));
    }
    for f in &l.listener_filters {
        if let Some(p) = &f.disabled {
            if p.matches(st.local.port()) {
                out.push(step(
                    &f.name,
                    "disabled",
                    format!("filter_disabled matches port {}", st.local.port()),
                ));
                continue;
            }
        }
        // tls_inspector and http_inspector peek at the client's first bytes: a client that
        // sends nothing first leaves them waiting, and the filters after them do not run
        // (envoy source/common/listener_manager/active_tcp_socket.cc, `continueFilterChain`).
        let peeks = matches!(f.kind, ListenerFilterKind::TlsInspector | ListenerFilterKind::HttpInspector);
        if peeks && *client == ClientBytes::ServerFirst {
            out.push(step(&f.name, WAITING, "waits for the client's first bytes".into()));
            break;
        }
        let effect = match f.kind {
            ListenerFilterKind::OriginalDst => {
                st.local = original_dst;
                st.restored = true;
                format!("local address restored to {original_dst}")
            }
            ListenerFilterKind::TlsInspector => match client {
                ClientBytes::Tls { sni, alpn } => {
                    st.transport_protocol = "tls".into();
                    st.server_name = sni.as_deref().unwrap_or("").to_ascii_lowercase();
                    st.application_protocols = alpn.clone();
                    format!("TLS ClientHello: sni={:?} alpn=[{}]", st.server_name, alpn.join(","))
                }
                _ => {
                    out.push(step(&f.name, "no-op", "not a TLS ClientHello".into()));
                    continue;
                }
            },
            ListenerFilterKind::HttpInspector => {
                if !st.transport_protocol.is_empty() && st.transport_protocol != "raw_buffer" {
                    out.push(step(&f.name, "no-op", format!("transport already {}", st.transport_protocol)));
                    continue;
                }
                let proto = match client {
                    ClientBytes::Http1 => "http/1.1",
                    ClientBytes::Http10 => "http/1.0",
                    ClientBytes::H2c => "h2c",
                    _ => {
                        out.push(step(&f.name, "no-op", "not HTTP".into()));
                        continue;
                    }
                };
                st.application_protocols = vec![proto.to_string()];
                format!("application protocol {proto}")
            }
            ListenerFilterKind::OriginalSrc => {
                st.original_src = true;
                "upstream source := downstream peer (TPROXY)".into()
            }
            ListenerFilterKind::ProxyProtocol | ListenerFilterKind::Other => {
                out.push(step(&f.name, "no-op", "not modelled; connection passed unchanged".into()));
                continue;
            }
        };
        out.push(step(&f.name, "ran", effect));
    }
    out
}
