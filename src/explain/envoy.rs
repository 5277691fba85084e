//! An Envoy hop explained: the listener and why (bound port or `use_original_dst` hand-off),
//! the filter chain that won and the first criterion each other chain lost on, the virtual
//! hosts whose domains did and did not match the Host, the route, the cluster (or the missing
//! one, with the clusters that exist for that service) and the endpoint; each with the Istio
//! resource behind it when the dump records one.

use std::net::SocketAddr;

use super::{Decision, Said};
use crate::engine::{self, Mesh, Start};
use crate::envoy::model::{EnvoyConfig, FilterChain, Listener};
use crate::envoy::select::{self, ObjectRef, Upstream};

/// The most losing filter chains or virtual hosts listed under one decision.
const MAX_ALTERNATIVES: usize = 8;

pub(super) fn decisions(
    mesh: &Mesh,
    start: &Start,
    pi: usize,
    (listener, orig_dst, src): (SocketAddr, SocketAddr, SocketAddr),
) -> Vec<Decision> {
    let Some(pod) = mesh.pods.get(pi) else { return Vec::new() };
    let Some(cfg) = &pod.envoy else { return Vec::new() };
    let Some(t) = engine::envoy_hop_trace(mesh, start, pi, (listener, orig_dst, src)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut push = |what: String, source: String, why: Vec<String>| {
        let why = why.into_iter().map(Said::Text).collect();
        out.push(Decision { pod: pod.name.clone(), layer: "envoy", what: Said::Text(what), source, why });
    };
    let Some(accepted) = &t.accepted_by else {
        push(format!("no Envoy listener is bound to {listener}"), String::new(), Vec::new());
        return out;
    };
    let bound = cfg.listeners.iter().find(|l| l.name == accepted.name).and_then(|l| l.address.socket());
    let mut why = vec![match bound {
        Some(b) if b != listener => {
            format!("it is bound to {b}; the kernel delivered the connection to {listener}")
        }
        _ => format!("it is bound to {listener}, where the kernel delivered the connection"),
    }];
    istio(accepted, &mut why);
    push(format!("listener {} accepts the connection", accepted.name), accepted.path.clone(), why);
    let mut current = accepted.name.clone();
    if let Some(h) = &t.handoff {
        match &h.matched {
            Some(how) => {
                let d = h.restored_destination;
                let how = match how {
                    select::listener::HandoffMatch::Exact => {
                        format!("{} is bound to exactly {d}", h.target.name)
                    }
                    select::listener::HandoffMatch::Wildcard => {
                        format!(
                            "no listener is bound to {d}; {} takes port {} on the wildcard address",
                            h.target.name,
                            d.port()
                        )
                    }
                };
                let mut why = vec![format!("use_original_dst: the original destination is {d}; {how}")];
                istio(&h.target, &mut why);
                push(format!("hand-off to listener {}", h.target.name), h.target.path.clone(), why);
                current = h.target.name.clone();
            }
            None => push(
                format!(
                    "no listener for {}: the connection stays on {}",
                    h.restored_destination, h.target.name
                ),
                h.target.path.clone(),
                vec![format!(
                    "use_original_dst found no listener bound to {} or to 0.0.0.0:{}",
                    h.restored_destination,
                    h.restored_destination.port()
                )],
            ),
        }
    }
    let l = cfg.listener(&current);
    if let Some(st) = &t.socket {
        let mut why = Vec::new();
        why.push(format!("transport protocol {}", st.transport_protocol));
        if !st.server_name.is_empty() {
            why.push(format!("SNI {}", st.server_name));
        }
        if !st.application_protocols.is_empty() {
            why.push(format!("application protocols {}", st.application_protocols.join(", ")));
        }
        if let Some(fc) = &t.filter_chain {
            let name = chain_name(fc.chain.name.as_str(), fc.index);
            why.insert(0, format!("the connection offers destination {}:", st.local));
            why.push(format!("won by {}", fc.via));
            let mut left = l.map_or(0, |l| l.filter_chains.len());
            let mut narrowed = false;
            for s in &fc.steps {
                if s.remaining.len() < left {
                    narrowed = true;
                    why.push(format!("{}: {} ({} chain(s) left)", s.criterion, s.branch, s.remaining.len()));
                }
                left = s.remaining.len();
            }
            if !narrowed && l.is_some_and(|l| l.filter_chains.len() > 1) && fc.via == "filter_chain_match" {
                why.push("no criterion tells the chains apart".into());
            }
            if let Some(l) = l {
                losers(l, fc.index, &fc.steps, st, src, &mut why);
            }
            istio(&fc.chain, &mut why);
            push(format!("filter chain {name}"), fc.chain.path.clone(), why);
        } else if !t.no_chain_steps.is_empty() {
            for s in &t.no_chain_steps {
                why.push(format!("{}: {}", s.criterion, s.branch));
            }
            push(format!("no filter chain of {current} matches"), String::new(), why);
        }
    }
    if let Some(h) = &t.http {
        http(cfg, h, &mut push);
    }
    for c in &t.clusters {
        cluster(cfg, c, &mut push);
    }
    if let select::Outcome::HttpResponse { status, flag, details, .. } = &t.outcome {
        let flag = flag.as_deref().map(|f| format!(" {f}")).unwrap_or_default();
        push(format!("Envoy answers {status}{flag}"), String::new(), vec![details.clone()]);
    }
    out
}

fn istio(o: &ObjectRef, why: &mut Vec<String>) {
    if let Some(c) = &o.istio_config {
        why.push(format!("Istio resource: {c}"));
    }
}

fn chain_name(name: &str, index: Option<usize>) -> String {
    if name.is_empty() {
        format!("#{}", index.unwrap_or(0))
    } else {
        name.to_string()
    }
}

/// For each chain that lost: the first criterion whose step left it out, and what it asks.
fn losers(
    l: &Listener,
    winner: Option<usize>,
    steps: &[select::chain::Step],
    st: &select::listener::SocketState,
    src: SocketAddr,
    why: &mut Vec<String>,
) {
    let mut lines = Vec::new();
    for (i, c) in l.filter_chains.iter().enumerate() {
        if Some(i) == winner {
            continue;
        }
        let lost = steps.iter().find(|s| !s.remaining.contains(&i));
        let name = chain_name(c.name.as_deref().unwrap_or(""), Some(i));
        match lost {
            Some(s) => lines.push(format!(
                "  {name}: lost on {}: it asks for {}, the connection has {}{}",
                s.criterion,
                asks(c, s.criterion),
                has(st, src, s.criterion),
                if asks(c, s.criterion) == "(any)" && s.branch != "(no branch matches)" {
                    format!(" (chains that name {} are more specific)", s.branch)
                } else {
                    String::new()
                }
            )),
            None => lines.push(format!("  {name}: equally specific, but listed after the winner")),
        }
    }
    if lines.is_empty() {
        return;
    }
    why.push("the other filter chains:".into());
    let n = lines.len();
    why.extend(lines.into_iter().take(MAX_ALTERNATIVES));
    if n > MAX_ALTERNATIVES {
        why.push(format!("  ... and {} more", n - MAX_ALTERNATIVES));
    }
}

/// What the connection offers for one criterion.
fn has(st: &select::listener::SocketState, src: SocketAddr, criterion: &str) -> String {
    let or_none = |s: &str| if s.is_empty() { "none".to_string() } else { s.to_string() };
    match criterion {
        "destination_port" => st.local.port().to_string(),
        "prefix_ranges" => st.local.ip().to_string(),
        "direct_source_prefix_ranges" | "source_prefix_ranges" | "source_type" => src.ip().to_string(),
        "source_ports" => src.port().to_string(),
        "server_names" => or_none(&st.server_name),
        "transport_protocol" => or_none(&st.transport_protocol),
        "application_protocols" => or_none(&st.application_protocols.join(", ")),
        _ => "?".into(),
    }
}

/// What a chain's `filter_chain_match` says for one criterion.
fn asks(c: &FilterChain, criterion: &str) -> String {
    let m = &c.filter_chain_match;
    let list = |v: &[String]| if v.is_empty() { "(any)".to_string() } else { v.join(", ") };
    let nets = |v: &[ipnet::IpNet]| {
        if v.is_empty() {
            "(any)".to_string()
        } else {
            v.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ")
        }
    };
    match criterion {
        "destination_port" => m.destination_port.map_or("(any)".into(), |p| p.to_string()),
        "prefix_ranges" => nets(&m.prefix_ranges),
        "direct_source_prefix_ranges" => nets(&m.direct_source_prefix_ranges),
        "source_prefix_ranges" => nets(&m.source_prefix_ranges),
        "server_names" => list(&m.server_names),
        "transport_protocol" => m.transport_protocol.clone().unwrap_or_else(|| "(any)".into()),
        "application_protocols" => list(&m.application_protocols),
        "source_type" => format!("{:?}", m.source_type),
        "source_ports" => {
            if m.source_ports.is_empty() {
                "(any)".into()
            } else {
                m.source_ports.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
            }
        }
        _ => "?".into(),
    }
}

fn http(cfg: &EnvoyConfig, h: &select::HttpStep, push: &mut impl FnMut(String, String, Vec<String>)) {
    let mut why = Vec::new();
    if h.assumed {
        why.push(format!("no request given: assumed GET / with Host {}", h.authority));
    }
    let rc = cfg.route_configs.iter().find(|r| r.name == h.route_config.name);
    if let Some(rc) = rc {
        let ignore_port = rc.config.ignore_port_in_host_matching;
        let host = if ignore_port { strip_port(&h.authority) } else { h.authority.to_ascii_lowercase() };
        let chosen = h.virtual_host.as_ref().map(|v| v.name.as_str());
        let mut missed = Vec::new();
        for vh in &rc.config.virtual_hosts {
            if Some(vh.name.as_str()) == chosen {
                let hit: Vec<&str> =
                    vh.domains.iter().map(String::as_str).filter(|d| domain_matches(d, &host)).collect();
                why.push(format!(
                    "virtual host {} matches Host {host} by domain {}",
                    vh.name,
                    if hit.is_empty() { "(its domains)".to_string() } else { hit.join(", ") }
                ));
            } else {
                let shown: Vec<&str> = vh.domains.iter().take(4).map(String::as_str).collect();
                let more = vh.domains.len().saturating_sub(4);
                let more = if more > 0 { format!(" +{more}") } else { String::new() };
                missed.push(format!("  {} [{}{more}]", vh.name, shown.join(", ")));
            }
        }
        if chosen.is_none() {
            why.push(format!("no virtual host's domains match Host {host}"));
        }
        if !missed.is_empty() {
            why.push("virtual hosts whose domains do not match:".into());
            let n = missed.len();
            why.extend(missed.into_iter().take(MAX_ALTERNATIVES));
            if n > MAX_ALTERNATIVES {
                why.push(format!("  ... and {} more", n - MAX_ALTERNATIVES));
            }
        }
    }
    if let Some(vh) = &h.virtual_host {
        istio(vh, &mut why);
    }
    if let Some(r) = &h.route {
        let name = if r.name.is_empty() { r.path.as_str() } else { r.name.as_str() };
        why.push(format!("route {name} matches {} {}", h.method, h.path));
        istio(r, &mut why);
    }
    why.push(format!("router decision: {}", h.decision));
    let vh = h.virtual_host.as_ref().map(|v| format!(", virtual host {}", v.name)).unwrap_or_default();
    push(format!("route config {}{vh}", h.route_config.name), h.route_config.path.clone(), why);
}

fn strip_port(authority: &str) -> String {
    let a = authority.to_ascii_lowercase();
    match a.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() && (h.ends_with(']') || !h.contains(':')) => h.to_string(),
        _ => a,
    }
}

/// Envoy's domain forms: exact, `*.suffix`, `prefix*`, `*` (case-insensitive).
fn domain_matches(domain: &str, host: &str) -> bool {
    let d = domain.to_ascii_lowercase();
    if d == "*" || d == host {
        return true;
    }
    if let Some(suffix) = d.strip_prefix('*') {
        return host.len() > suffix.len() && host.ends_with(suffix);
    }
    if let Some(prefix) = d.strip_suffix('*') {
        return host.len() > prefix.len() && host.starts_with(prefix);
    }
    false
}

fn cluster(cfg: &EnvoyConfig, c: &select::ClusterPick, push: &mut impl FnMut(String, String, Vec<String>)) {
    let mut why = Vec::new();
    if let Some(w) = c.weight {
        why.push(format!("weight {w}"));
    }
    let source = cfg.cluster(&c.cluster).map(|x| x.origin.path.clone()).unwrap_or_default();
    let what = match &c.upstream {
        Upstream::Endpoint { address, source_address, via, candidates, .. } => {
            why.push(format!("endpoint chosen by {via}"));
            if candidates.len() > 1 {
                let list: Vec<String> = candidates.iter().map(|a| a.to_string()).collect();
                why.push(format!("candidates: {}", list.join(", ")));
            }
            if let Some(s) = source_address {
                why.push(format!("upstream source address {s}"));
            }
            format!("cluster {} sends to {address}", c.cluster)
        }
        Upstream::ClusterNotFound => {
            let same = same_service(cfg, &c.cluster);
            if same.is_empty() {
                why.push("no cluster of that service exists".into());
            } else {
                why.push(format!("clusters that exist for that service: {}", same.join(", ")));
            }
            format!("cluster {} does not exist (NC)", c.cluster)
        }
        Upstream::NoHealthyHost { reason } => {
            why.push(reason.clone());
            format!("cluster {} has no healthy host (UH)", c.cluster)
        }
        Upstream::Unresolved { host } => format!("cluster {}: {host} does not resolve", c.cluster),
        Upstream::EndpointsUnknown { service_name } => {
            format!("cluster {}: the dump has no endpoints for {service_name}", c.cluster)
        }
        Upstream::Unsupported { reason } => format!("cluster {}: {reason}", c.cluster),
    };
    if let Some(o) = &c.origin {
        istio(o, &mut why);
    }
    if let Some(ic) = cfg.cluster(&c.cluster).and_then(|x| x.origin.istio_config.clone()) {
        let line = format!("Istio resource: {ic}");
        if !why.contains(&line) {
            why.push(line);
        }
    }
    push(what, source, why);
}

/// Istio cluster names `direction|port|subset|host`: the other clusters of that port and host.
pub(super) fn same_service(cfg: &EnvoyConfig, name: &str) -> Vec<String> {
    let parts: Vec<&str> = name.split('|').collect();
    let [_, port, _, host] = parts[..] else { return Vec::new() };
    cfg.clusters
        .iter()
        .filter(|c| {
            let p: Vec<&str> = c.name.split('|').collect();
            p.len() == 4 && p[1] == port && p[3] == host && c.name != name
        })
        .map(|c| c.name.clone())
        .collect()
}
