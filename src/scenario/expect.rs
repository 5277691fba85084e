//! Comparing a trace with a probe's expectations (docs/scenarios.md, "Comparison"), and
//! writing the expectations a trace would pass (for `check --update`).
//!
//! A field that is absent is not compared. Fields at the top of `expect` hold for every path;
//! `paths` lists the paths exactly, in trace order. Each mismatch is one plain sentence.

use std::fmt::Write as _;

use crate::engine::{Ending, EnvoyHop, MeshTrace, Path};

use super::model::{EndingKind, Expect, HopExpect};

/// How far a path's weight may be from the expected one.
pub const WEIGHT_TOLERANCE: f64 = 1e-6;

/// Every way `trace` differs from `expect`; empty when it passes.
pub fn compare(expect: &Expect, trace: &MeshTrace) -> Vec<String> {
    let mut out = Vec::new();
    let many = trace.paths.len() > 1;
    for (i, p) in trace.paths.iter().enumerate() {
        let prefix = if many { format!("path {} of {}: ", i + 1, trace.paths.len()) } else { String::new() };
        for m in compare_path(expect, p) {
            out.push(format!("{prefix}{m}"));
        }
    }
    if let Some(paths) = &expect.paths {
        let want = &paths.value;
        if want.len() != trace.paths.len() {
            let n = want.len();
            out.push(format!(
                "paths: expected {n} path{}, got {}",
                if n == 1 { "" } else { "s" },
                trace.paths.len()
            ));
        } else {
            for (i, (w, p)) in want.iter().zip(&trace.paths).enumerate() {
                if let Some(ww) = &w.weight {
                    if (ww.value - p.weight).abs() > WEIGHT_TOLERANCE {
                        out.push(format!("paths[{i}].weight: expected {}, got {}", ww.value, p.weight));
                    }
                }
                for m in compare_path(w, p) {
                    out.push(format!("paths[{i}].{m}"));
                }
            }
        }
    }
    out
}

/// The ending's fields by name, rendered as strings (`None`: the kind has no such field).
fn field(e: &Ending, name: &str) -> Option<String> {
    match (e, name) {
        (Ending::Delivered { pod, .. }, "pod")
        | (Ending::Refused { pod, .. }, "pod")
        | (Ending::Dropped { pod, .. }, "pod")
        | (Ending::EnvoyResponse { pod, .. }, "pod")
        | (Ending::Blackhole { pod, .. }, "pod")
        | (Ending::Left { pod, .. }, "pod")
        | (Ending::Unresolved { pod, .. }, "pod")
        | (Ending::Undetermined { pod, .. }, "pod") => Some(pod.clone()),
        (Ending::Delivered { socket, .. }, "socket") => Some(socket.clone()),
        (Ending::Delivered { process, .. }, "process") => Some(process.clone()),
        (Ending::Refused { dst, .. }, "dst") | (Ending::Left { dst, .. }, "dst") => Some(dst.clone()),
        (Ending::Blackhole { cluster, .. }, "cluster") => Some(cluster.clone()),
        (Ending::Left { cluster, .. }, "cluster") => cluster.clone(),
        (Ending::EnvoyResponse { status, .. }, "status") => status.map(|s| s.to_string()),
        (Ending::EnvoyResponse { flag, .. }, "flag") => flag.clone(),
        (Ending::Unresolved { host, .. }, "host") => Some(host.clone()),
        (Ending::Refused { reason, .. }, "reason")
        | (Ending::Dropped { reason, .. }, "reason")
        | (Ending::Undetermined { reason, .. }, "reason") => Some(reason.clone()),
        _ => None,
    }
}

/// The ending in a few words: `envoy_response 503 NC`, `left 10.0.0.1:80 via PassthroughCluster`.
pub fn ending_summary(e: &Ending) -> String {
    match e {
        Ending::Delivered { pod, socket, process } => format!("delivered to {process} on {socket} in {pod}"),
        Ending::Refused { pod, dst, .. } => format!("refused {dst} in {pod}"),
        Ending::Dropped { pod, reason } => format!("dropped in {pod} ({reason})"),
        Ending::EnvoyResponse { pod, status, flag, .. } => {
            let mut s = "envoy_response".to_string();
            if let Some(st) = status {
                let _ = write!(s, " {st}");
            }
            if let Some(f) = flag {
                let _ = write!(s, " {f}");
            }
            let _ = write!(s, " in {pod}");
            s
        }
        Ending::Blackhole { pod, cluster } => format!("blackhole {cluster} in {pod}"),
        Ending::Left { pod, dst, cluster } => match cluster {
            Some(c) => format!("left {pod} for {dst} via {c}"),
            None => format!("left {pod} for {dst}"),
        },
        Ending::Unresolved { pod, host } => format!("unresolved {host} in {pod}"),
        Ending::Loop { closed_by, .. } => {
            if closed_by.is_empty() {
                "loop".into()
            } else {
                format!("loop closed by {}", closed_by.join(", "))
            }
        }
        Ending::Undetermined { pod, reason } => format!("undetermined in {pod} ({reason})"),
    }
}

fn compare_path(x: &Expect, p: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let e = &p.ending;
    if let Some(kind) = x.ending {
        if kind.as_str() != e.kind() {
            out.push(format!("ending: expected {}, got {}", kind.as_str(), ending_summary(e)));
        }
    }
    let exact: [(&str, Option<String>); 8] = [
        ("pod", x.pod.clone()),
        ("socket", x.socket.clone()),
        ("process", x.process.clone()),
        ("dst", x.dst.clone()),
        ("cluster", x.cluster.clone()),
        ("status", x.status.map(|s| s.to_string())),
        ("flag", x.flag.clone()),
        ("host", x.host.clone()),
    ];
    for (name, want) in exact {
        let Some(want) = want else { continue };
        match field(e, name) {
            Some(got) if got == want => {}
            Some(got) => out.push(format!("{name}: expected {want}, got {got}")),
            None => out.push(format!("{name}: expected {want}, the ending ({}) has none", e.kind())),
        }
    }
    if let Some(want) = &x.reason {
        match field(e, "reason") {
            Some(got) if got.contains(want.as_str()) => {}
            Some(got) => out.push(format!("reason: expected it to contain \"{want}\", got \"{got}\"")),
            None => out.push(format!("reason: expected \"{want}\", the ending ({}) has none", e.kind())),
        }
    }
    if let Some(want) = &x.closed_by {
        match e {
            Ending::Loop { closed_by, .. } => {
                for w in want {
                    if !closed_by.contains(w) {
                        out.push(format!(
                            "closed_by: expected \"{w}\" among [{}]",
                            closed_by.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ")
                        ));
                    }
                }
            }
            _ => out.push(format!("closed_by: expected a loop, the ending ({}) has none", e.kind())),
        }
    }
    if let Some(hops) = &x.envoy {
        if hops.len() != p.envoy.len() {
            let got: Vec<String> = p.envoy.iter().map(hop_label).collect();
            out.push(format!(
                "envoy: expected {} hop{}, got {}{}",
                hops.len(),
                if hops.len() == 1 { "" } else { "s" },
                p.envoy.len(),
                if got.is_empty() { String::new() } else { format!(" ({})", got.join(", ")) }
            ));
        } else {
            for (i, (w, h)) in hops.iter().zip(&p.envoy).enumerate() {
                for m in compare_hop(w, h) {
                    out.push(format!("envoy[{i}].{m}"));
                }
            }
        }
    }
    out
}

fn hop_label(h: &EnvoyHop) -> String {
    format!("{} {}", h.pod, h.listener.as_deref().unwrap_or("?"))
}

fn compare_hop(w: &HopExpect, h: &EnvoyHop) -> Vec<String> {
    let pairs: [(&str, &Option<String>, Option<&String>); 9] = [
        ("pod", &w.pod, Some(&h.pod)),
        ("listener", &w.listener, h.listener.as_ref()),
        ("filter_chain", &w.filter_chain, h.filter_chain.as_ref()),
        ("route_config", &w.route_config, h.route_config.as_ref()),
        ("virtual_host", &w.virtual_host, h.virtual_host.as_ref()),
        ("route", &w.route, h.route.as_ref()),
        ("cluster", &w.cluster, h.cluster.as_ref()),
        ("endpoint", &w.endpoint, h.endpoint.as_ref()),
        ("source_address", &w.source_address, h.source_address.as_ref()),
    ];
    let mut out = Vec::new();
    for (name, want, got) in pairs {
        let Some(want) = want else { continue };
        match got {
            Some(g) if g == want => {}
            Some(g) => out.push(format!("{name}: expected {want}, got {g}")),
            None => out.push(format!("{name}: expected {want}, got none")),
        }
    }
    out
}

/// The expectations `trace` passes, as `check --update` writes them: the ending's kind and
/// fields (`reason` and Envoy's `details` left out: they are prose), each Envoy hop's
/// listener, route_config, virtual_host, cluster and endpoint; with several paths, every path
/// with its weight under `paths` and only what all paths share at the top.
pub fn from_trace(trace: &MeshTrace) -> Expect {
    let mut paths: Vec<Expect> = trace.paths.iter().map(path_expect).collect();
    if paths.len() == 1 {
        return paths.remove(0);
    }
    let mut top = Expect::default();
    let kinds: Vec<&str> = trace.paths.iter().map(|p| p.ending.kind()).collect();
    if kinds.windows(2).all(|w| w[0] == w[1]) {
        top.ending = paths.first().and_then(|p| p.ending);
    }
    for (p, t) in paths.iter_mut().zip(&trace.paths) {
        p.weight = Some(serde_saphyr::Spanned::new(
            t.weight,
            serde_saphyr::Location::UNKNOWN,
            serde_saphyr::Location::UNKNOWN,
        ));
        if top.ending.is_some() {
            p.ending = None;
        }
    }
    top.paths = Some(serde_saphyr::Spanned::new(
        paths,
        serde_saphyr::Location::UNKNOWN,
        serde_saphyr::Location::UNKNOWN,
    ));
    top
}

fn path_expect(p: &Path) -> Expect {
    let e = &p.ending;
    let kind = match e {
        Ending::Delivered { .. } => EndingKind::Delivered,
        Ending::Refused { .. } => EndingKind::Refused,
        Ending::Dropped { .. } => EndingKind::Dropped,
        Ending::EnvoyResponse { .. } => EndingKind::EnvoyResponse,
        Ending::Blackhole { .. } => EndingKind::Blackhole,
        Ending::Left { .. } => EndingKind::Left,
        Ending::Unresolved { .. } => EndingKind::Unresolved,
        Ending::Loop { .. } => EndingKind::Loop,
        Ending::Undetermined { .. } => EndingKind::Undetermined,
    };
    let mut x = Expect { ending: Some(kind), ..Expect::default() };
    x.pod = field(e, "pod");
    x.socket = field(e, "socket");
    x.process = field(e, "process");
    x.dst = field(e, "dst");
    x.cluster = field(e, "cluster");
    x.status = match e {
        Ending::EnvoyResponse { status, .. } => *status,
        _ => None,
    };
    x.flag = field(e, "flag");
    x.host = field(e, "host");
    if let Ending::Loop { closed_by, .. } = e {
        if !closed_by.is_empty() {
            x.closed_by = Some(closed_by.clone());
        }
    }
    x.envoy = Some(
        p.envoy
            .iter()
            .map(|h| HopExpect {
                pod: Some(h.pod.clone()),
                listener: h.listener.clone(),
                route_config: h.route_config.clone(),
                virtual_host: h.virtual_host.clone(),
                cluster: h.cluster.clone(),
                endpoint: h.endpoint.clone(),
                ..HopExpect::default()
            })
            .collect(),
    );
    x
}

#[cfg(test)]
mod tests;
