//! `explain`: a report for the person debugging a connection. For each path: how it ends, the
//! decisive steps and why each went the way it did (the netfilter rule that matched and the
//! earlier rules of its chain that did not, with the match that failed; the Envoy listener,
//! filter chain, virtual host, route, cluster and endpoint, with the alternatives that lost and
//! the Istio resource behind each object), then counterfactuals: small changes to the
//! snapshot, each re-simulated, with the ending they produce.
//!
//! The report is data; `crate::render::explain` prints it. Nothing here prints or reads files.

mod counterfactual;
mod envoy;
mod kernel;
mod rules;

use serde::Serialize;

use crate::engine::{self, Destination, Ending, EngineError, From, Hop, Mesh, MeshTrace, Start};
use crate::render::trace::ending_sentence;

pub use counterfactual::Counterfactual;

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// What was asked (a probe's name, or the connection in words).
    pub title: String,
    pub paths: Vec<PathReport>,
    pub counterfactuals: Vec<Counterfactual>,
    /// The trace the report explains (for drawing it).
    #[serde(skip)]
    pub trace: MeshTrace,
}

/// One path of the trace, explained.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PathReport {
    pub weight: f64,
    /// `Ending::kind()`.
    pub kind: &'static str,
    /// The ending in one sentence.
    pub ending: String,
    /// For a loop: the repeating steps, in words.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cycle: Vec<String>,
    /// For a loop: the rules and Envoy objects in the cycle that send the connection back.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub closed_by: Vec<String>,
    pub decisions: Vec<Decision>,
}

/// One decisive step and why it went that way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub pod: String,
    /// `netfilter`, `kernel` or `envoy`.
    pub layer: &'static str,
    /// The step in a few words.
    pub what: String,
    /// `file:line` of a rule, or the Envoy object's JSON path.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// Why: one line each.
    pub why: Vec<String>,
}

/// The most counterfactuals re-simulated for one report.
pub const MAX_COUNTERFACTUALS: usize = 12;

/// Explains how `start` goes through `mesh`.
pub fn explain(mesh: &Mesh, start: &Start) -> Result<Report, EngineError> {
    let trace = engine::trace_recorded(mesh, start)?;
    let mut paths = Vec::new();
    for p in &trace.paths {
        let mut decisions = Vec::new();
        for hop in &p.hops {
            match hop {
                Hop::Kernel { pod, probe, branch, .. } => {
                    decisions.extend(kernel::decisions(mesh, *pod, probe, *branch)?)
                }
                Hop::Envoy { pod, listener, orig_dst, src, .. } => {
                    decisions.extend(envoy::decisions(mesh, start, *pod, (*listener, *orig_dst, *src)))
                }
            }
        }
        let cycle = match &p.ending {
            Ending::Loop { cycle, .. } => p
                .steps
                .iter()
                .enumerate()
                .skip(cycle[0])
                .take(cycle[1].saturating_sub(cycle[0]) + 1)
                .map(|(i, s)| {
                    let src = if s.source.is_empty() { String::new() } else { format!(" [{}]", s.source) };
                    format!("{}. {}: {}{src}", i + 1, s.pod, s.what)
                })
                .collect(),
            _ => Vec::new(),
        };
        let (ending, closed_by) = match &p.ending {
            Ending::Loop { cycle, closed_by } => {
                (format!("loops: steps {} to {} repeat", cycle[0] + 1, cycle[1] + 1), closed_by.clone())
            }
            e => (ending_sentence(e), Vec::new()),
        };
        paths.push(PathReport {
            weight: p.weight,
            kind: p.ending.kind(),
            ending,
            cycle,
            closed_by,
            decisions,
        });
    }
    let counterfactuals = counterfactual::all(mesh, start, &trace);
    Ok(Report { title: title(mesh, start), paths, counterfactuals, trace })
}

/// The connection in words: who sends what to where.
pub fn title(mesh: &Mesh, start: &Start) -> String {
    let pod = mesh.pods.get(start.pod).map(|p| p.name.as_str()).unwrap_or("?");
    let who = match &start.from {
        From::Process { uid, .. } if *uid == engine::ENVOY_UID => format!("Envoy (uid {uid}) in pod {pod}"),
        From::Process { uid, .. } => format!("the app (uid {uid}) in pod {pod}"),
        From::Outside { src } => format!("{src} from outside pod {pod}"),
    };
    let dst = match &start.dst {
        Destination::Addr(a) => a.to_string(),
        Destination::Host { name, port } => format!("{name}:{port}"),
    };
    let what = match (&start.client, &start.request) {
        (_, Some(r)) => {
            format!(" ({} {}{})", r.method, r.host.as_deref().unwrap_or(""), r.path)
        }
        (crate::envoy::select::ClientBytes::Tls { sni: Some(s), .. }, None) => format!(" (TLS, SNI {s})"),
        _ => String::new(),
    };
    let proto = if start.proto == crate::netns::L4::Udp { "udp" } else { "tcp" };
    format!("{who} connects to {dst} over {proto}{what}")
}

/// Each path's ending in one line (with its weight when there are several).
fn endings_of(t: &MeshTrace) -> Vec<String> {
    let many = t.paths.len() > 1;
    t.paths
        .iter()
        .map(|p| {
            let s = ending_sentence(&p.ending);
            if many {
                format!("{s} (weight {:.4})", p.weight)
            } else {
                s
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
