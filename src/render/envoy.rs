//! `meshpath envoy match` output: the decisions Envoy makes for one connection as text, and the
//! versioned JSON document (`meshpath.envoy-match/v1`, docs/envoy.md).

use std::fmt::Write as _;

use crate::envoy::select::{self, Outcome, Query, Trace, Upstream};

/// The JSON schema identifier of `envoy match --format json` (docs/envoy.md).
pub const MATCH_SCHEMA: &str = "meshpath.envoy-match/v1";

/// `envoy match --format json`: the query as evaluated, Envoy's decisions, and how many notes
/// the dump's reading left (`notes`).
pub fn match_json(q: &Query<'_>, trace: &Trace, notes: usize) -> Result<String, serde_json::Error> {
    let (sni, alpn) = match &q.client {
        select::ClientBytes::Tls { sni, alpn } => (sni.as_deref(), alpn.as_slice()),
        _ => (None, &[][..]),
    };
    // Through a JSON value, so keys come out sorted (the document's stable order).
    let doc = serde_json::json!({
        "schema": MATCH_SCHEMA,
        "query": {
            "listener_addr": q.listener_addr.to_string(),
            "listener": q.listener_name,
            "dst": q.dst.to_string(),
            "src": q.src.to_string(),
            "sni": sni,
            "alpn": alpn,
            "request": q.request.as_ref().map(|r| serde_json::json!({
                "host": r.host, "path": r.path, "method": r.method,
                "headers": r.headers.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>(),
            })),
            "random_value": q.random_value,
            "server_first": q.client == select::ClientBytes::ServerFirst,
        },
        "trace": serde_json::to_value(trace)?,
        "notes": notes,
    });
    let mut s = serde_json::to_string_pretty(&doc)?;
    s.push('\n');
    Ok(s)
}

/// `envoy match` as text: each decision on one line, then the outcome after `=>`.
pub fn match_text(t: &Trace) -> String {
    let mut o = String::new();
    let at = |r: &select::ObjectRef| {
        let line = r.line.map(|l| format!(":{l}")).unwrap_or_default();
        let ic = r.istio_config.as_deref().map(|c| format!(" (istio {c})")).unwrap_or_default();
        format!("{} [{}{line}]{ic}", if r.name.is_empty() { "(unnamed)" } else { &r.name }, r.path)
    };
    match &t.accepted_by {
        Some(l) => {
            let _ = writeln!(o, "accepted by listener {}", at(l));
        }
        None => {
            let _ = writeln!(o, "no listener is bound to that address");
        }
    }
    for s in &t.listener_filters {
        let _ = writeln!(o, "  listener filter {} on {}: {} ({})", s.filter, s.listener, s.status, s.effect);
    }
    if let Some(h) = &t.handoff {
        match h.matched {
            Some(m) => {
                let how = serde_json::to_string(&m).unwrap_or_default();
                let _ = writeln!(
                    o,
                    "handed off ({}) for {} to listener {}",
                    how.trim_matches('"'),
                    h.restored_destination,
                    at(&h.target)
                );
            }
            None => {
                let _ = writeln!(o, "no listener for {}: stays on {}", h.restored_destination, h.target.name);
            }
        }
    }
    if let Some(s) = &t.socket {
        let _ = writeln!(
            o,
            "match inputs: local={} transport={} sni={:?} alpn=[{}]",
            s.local,
            s.transport_protocol,
            s.server_name,
            s.application_protocols.join(",")
        );
    }
    for s in &t.no_chain_steps {
        let _ = writeln!(o, "  {}: {} -> {:?}", s.criterion, s.branch, s.remaining);
    }
    if let Some(c) = &t.filter_chain {
        for s in &c.steps {
            let _ = writeln!(o, "  {}: {} -> {:?}", s.criterion, s.branch, s.remaining);
        }
        let idx = c.index.map(|i| format!("#{i} ")).unwrap_or_default();
        let _ = writeln!(o, "filter chain {idx}{} via {}", at(&c.chain), c.via);
    }
    if let Some(n) = &t.network_filter {
        let _ = match n {
            select::NetworkStep::TcpProxy { filter } => writeln!(o, "network filter {filter}"),
            select::NetworkStep::HttpConnectionManager {
                filter,
                route_config,
                inline,
                route_config_found,
            } => writeln!(
                o,
                "network filter {filter}: route config {route_config:?} ({}{})",
                if *inline { "inline" } else { "rds" },
                if *route_config_found { "" } else { ", not in the dump" }
            ),
        };
    }
    if let Some(h) = &t.http {
        let assumed = if h.assumed { " (assumed)" } else { "" };
        let _ = writeln!(o, "request {} {} host {}{assumed}", h.method, h.path, h.authority);
        if let Some(v) = &h.virtual_host {
            let _ = writeln!(o, "  virtual host {}", at(v));
        }
        if let Some(r) = &h.route {
            let _ = writeln!(o, "  route {}", at(r));
        }
        let _ = writeln!(o, "  router: {}", h.decision);
    }
    for c in &t.clusters {
        let w = c.weight.map(|w| format!(" weight={w}")).unwrap_or_default();
        let sel = if c.selected { " (selected)" } else { "" };
        let up = match &c.upstream {
            Upstream::Endpoint { address, source_address, via, candidates, .. } => {
                let src = source_address.map(|s| format!(" from {s}")).unwrap_or_default();
                format!(
                    "endpoint {address}{src} via {via} ({})",
                    crate::render::plural(candidates.len(), "candidate")
                )
            }
            Upstream::ClusterNotFound => "cluster not found".into(),
            Upstream::NoHealthyHost { reason } => format!("no healthy host: {reason}"),
            Upstream::Unresolved { host } => format!("{host} unresolved (give --name {host}=IP)"),
            Upstream::EndpointsUnknown { service_name } => {
                format!("EDS endpoints of {service_name} not in the dump")
            }
            Upstream::Unsupported { reason } => format!("unsupported: {reason}"),
        };
        let _ = writeln!(o, "cluster {}{w}{sel}: {up}", c.cluster);
    }
    let _ = match &t.outcome {
        Outcome::Forwarded { cluster, endpoint, source_address } => {
            let src = source_address.map(|s| format!(" from {s}")).unwrap_or_default();
            writeln!(o, "=> forwarded to {endpoint}{src} (cluster {cluster})")
        }
        Outcome::Weighted => {
            writeln!(o, "=> weighted: one of the clusters above (give --pick random-value=N to pick)")
        }
        Outcome::HttpResponse { status, flag, details, location } => {
            let f = flag.as_deref().map(|f| format!(" {f}")).unwrap_or_default();
            let l = location.as_deref().map(|l| format!(" location {l}")).unwrap_or_default();
            writeln!(o, "=> Envoy responds {status}{f} ({details}){l}")
        }
        Outcome::Closed { flag, details } => {
            let f = flag.as_deref().map(|f| format!(" flag {f}")).unwrap_or_default();
            writeln!(o, "=> connection closed by Envoy{f} ({details})")
        }
        Outcome::Unresolved { cluster, host } => {
            writeln!(o, "=> cluster {cluster}: {host} is not resolved (give --name {host}=IP)")
        }
        Outcome::NoListener => writeln!(o, "=> no listener"),
        Outcome::Undetermined { reason } => writeln!(o, "=> undetermined: {reason}"),
        Outcome::Rejected { object, resource, reason, instead } => writeln!(
            o,
            "=> rejected config: Envoy refuses {} {} ({}): {reason}; it serves instead {}",
            object.as_str(),
            resource.name,
            resource.path,
            crate::envoy::summary::instead_words(instead)
        ),
        Outcome::Stalled { listener, filter } => writeln!(
            o,
            "=> stalled: listener {} waits in {filter} for client bytes that never come (listener_filters_timeout 0s)",
            listener.name
        ),
    };
    o
}
