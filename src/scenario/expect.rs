//! Comparing a trace with a probe's expectations (docs/scenarios.md, "Comparison"), and
//! writing the expectations a trace would pass (for `check --update`).
//!
//! A field that is absent is not compared. Fields at the top of `expect` hold for every path;
//! `paths` lists the paths exactly, in trace order. Each mismatch is one plain sentence.

use std::fmt::Write as _;

use crate::engine::{Detail, Ending, EnvoyHop, MeshTrace, Path, Step};
use crate::netfilter::eval::StepKind;

use super::model::{EndingKind, Expect, HopExpect};

/// How far a path's weight may be from the expected one.
pub const WEIGHT_TOLERANCE: f64 = 1e-6;

/// The prose reason of a refused, dropped or undetermined ending, which an expectation's
/// `reason` is a substring of; the caller supplies the wording (`crate::render::words`).
pub type ReasonWords<'a> = &'a dyn Fn(&Ending) -> Option<String>;

/// Every way `trace` differs from `expect`; empty when it passes.
pub fn compare(expect: &Expect, trace: &MeshTrace, reason: ReasonWords) -> Vec<String> {
    let mut out = Vec::new();
    let many = trace.paths.len() > 1;
    for (i, p) in trace.paths.iter().enumerate() {
        let prefix = if many { format!("path {} of {}: ", i + 1, trace.paths.len()) } else { String::new() };
        for m in compare_path(expect, p, reason) {
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
                    // NaN on either side is not close: a mismatch.
                    let close = (ww.value - p.weight).abs() <= WEIGHT_TOLERANCE;
                    if !close {
                        out.push(format!("paths[{i}].weight: expected {}, got {}", ww.value, p.weight));
                    }
                }
                for m in compare_path(w, p, reason) {
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
        | (Ending::Undetermined { pod, .. }, "pod")
        | (Ending::Stalled { pod, .. }, "pod") => Some(pod.clone()),
        (Ending::RejectedConfig(r), "pod") => Some(r.pod.clone()),
        (Ending::Delivered { socket, .. }, "socket") => Some(socket.to_string()),
        (Ending::Delivered { process, .. }, "process") => Some(process.clone()),
        (Ending::Refused { dst, .. }, "dst") | (Ending::Left { dst, .. }, "dst") => Some(dst.to_string()),
        (Ending::Blackhole { cluster, .. }, "cluster") => Some(cluster.clone()),
        (Ending::Left { cluster, .. }, "cluster") => cluster.clone(),
        (Ending::EnvoyResponse { status, .. }, "status") | (Ending::Blackhole { status, .. }, "status") => {
            status.map(|s| s.to_string())
        }
        (Ending::EnvoyResponse { flag, .. }, "flag") | (Ending::Blackhole { flag, .. }, "flag") => {
            flag.clone()
        }
        (Ending::Unresolved { host, .. }, "host") => Some(host.clone()),
        _ => None,
    }
}

/// The ending in a few words: `envoy_response 503 NC`, `left 10.0.0.1:80 via PassthroughCluster`.
pub fn ending_summary(e: &Ending) -> String {
    match e {
        Ending::Delivered { pod, socket, process } => format!("delivered to {process} on {socket} in {pod}"),
        Ending::Refused { pod, dst, .. } => format!("refused {dst} in {pod}"),
        Ending::Dropped { pod, .. } => format!("dropped in {pod}"),
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
        Ending::Blackhole { pod, cluster, .. } => format!("blackhole {cluster} in {pod}"),
        Ending::Left { pod, dst, cluster } => match cluster {
            Some(c) => format!("left {pod} for {dst} via {c}"),
            None => format!("left {pod} for {dst}"),
        },
        Ending::Unresolved { pod, host } => format!("unresolved {host} in {pod}"),
        Ending::Loop { .. } => "loop".into(),
        Ending::Undetermined { pod, .. } => format!("undetermined in {pod}"),
        Ending::RejectedConfig(r) => format!("rejected_config {} in {}", r.name, r.pod),
        Ending::Stalled { pod, listener, filter } => format!("stalled in {filter} of {listener} in {pod}"),
    }
}

fn compare_path(x: &Expect, p: &Path, reason: ReasonWords) -> Vec<String> {
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
        match reason(e) {
            Some(got) if got.contains(want.as_str()) => {}
            Some(got) => out.push(format!("reason: expected it to contain \"{want}\", got \"{got}\"")),
            None => out.push(format!("reason: expected \"{want}\", the ending ({}) has none", e.kind())),
        }
    }
    if let Some(want) = &x.closed_by {
        match e {
            Ending::Loop { .. } => {
                let ids = closing_ids(p);
                for w in want {
                    if !ids.iter().any(|id| names(w, id)) {
                        out.push(format!(
                            "closed_by: expected \"{w}\" among [{}]",
                            ids.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ")
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

/// How a scenario names a loop's closing step: a rule as `TABLE CHAIN #N` (its position in
/// its chain), an Envoy listener as `listener NAME`, an upstream connection as
/// `cluster NAME`. Names the scenario syntax defines, so expectations survive rewording.
pub fn step_id(s: &Step) -> Option<String> {
    match &s.detail {
        Detail::Rule(r) if r.step.kind == StepKind::Rule => {
            Some(format!("{} {} #{}", r.step.table, r.step.chain, r.step.rule.unwrap_or(0)))
        }
        Detail::ListenerAccepts { listener: o, .. } | Detail::Handoff { target: o, .. } => {
            Some(format!("listener {}", o.name))
        }
        Detail::Endpoint { cluster, .. } => Some(format!("cluster {cluster}")),
        _ => None,
    }
}

/// The names of a loop's closing steps, in order, each once.
fn closing_ids(p: &Path) -> Vec<String> {
    let Ending::Loop { closed_by, .. } = &p.ending else { return Vec::new() };
    let mut ids: Vec<String> = Vec::new();
    for id in closed_by.iter().filter_map(|&i| p.steps.get(i)).filter_map(step_id) {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

/// Whether an expectation names `id`: it is `id`, or (the longer form earlier versions wrote,
/// a step in words) holds `id` as a whole phrase.
fn names(want: &str, id: &str) -> bool {
    if want == id {
        return true;
    }
    want.match_indices(id).any(|(at, _)| {
        let before = want[..at].chars().next_back();
        let after = want[at + id.len()..].chars().next();
        let boundary =
            |c: Option<char>| c.is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.' || c == '|'));
        boundary(before) && boundary(after)
    })
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
        Ending::RejectedConfig(_) => EndingKind::RejectedConfig,
        Ending::Stalled { .. } => EndingKind::Stalled,
    };
    let mut x = Expect { ending: Some(kind), ..Expect::default() };
    x.pod = field(e, "pod");
    x.socket = field(e, "socket");
    x.process = field(e, "process");
    x.dst = field(e, "dst");
    x.cluster = field(e, "cluster");
    x.status = match e {
        Ending::EnvoyResponse { status, .. } | Ending::Blackhole { status, .. } => *status,
        _ => None,
    };
    x.flag = field(e, "flag");
    x.host = field(e, "host");
    let ids = closing_ids(p);
    if !ids.is_empty() {
        x.closed_by = Some(ids);
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
