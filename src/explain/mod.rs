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
mod fix;
mod fix_protocol;
mod fix_rules;
mod kernel;
mod rules;

use serde::Serialize;

use crate::engine::{self, EngineError, Hop, Mesh, MeshTrace, Start};
use crate::netfilter::eval::{Event, Reason};

pub use counterfactual::{Counterfactual, LoopVerdict};
pub use fix::{Annotation, Edit, Fix, ListChange, Setting};

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// What was asked (a probe's name, or the connection in words).
    pub title: String,
    pub paths: Vec<PathReport>,
    pub counterfactuals: Vec<Counterfactual>,
    /// Fixes a user can apply (an Istio setting, or the app's), each re-simulated.
    pub fixes: Vec<Fix>,
    /// The trace the report explains (for drawing it).
    #[serde(skip)]
    pub trace: MeshTrace,
}

/// One path of the trace (the same index in [`Report::trace`]), explained: its decisions.
/// The ending, and for a loop its cycle and closing steps, are the trace path's own.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PathReport {
    pub weight: f64,
    /// `Ending::kind()`.
    pub kind: &'static str,
    pub decisions: Vec<Decision>,
}

/// One decisive step and why it went that way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub pod: String,
    /// `netfilter`, `kernel` or `envoy`.
    pub layer: &'static str,
    /// The step in a few words.
    pub what: Said,
    /// `file:line` of a rule, or the Envoy object's JSON path.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// Why: one line each (an indented line details the one before).
    pub why: Vec<Said>,
}

/// A line of a decision: a phrase of this report, or a kernel fact that `crate::render` words
/// as every report does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Said {
    Text(String),
    /// A kernel decision (routing, NAT, socket lookup ...).
    Event(Event),
    /// The packet is dropped, and why.
    Dropped(Reason),
}

impl Said {
    /// The phrase, for a line of this report's own words.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Said::Text(t) => Some(t),
            _ => None,
        }
    }
}

impl std::convert::From<String> for Said {
    fn from(s: String) -> Said {
        Said::Text(s)
    }
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
                Hop::Envoy { pod, listener, orig_dst, src, client, .. } => {
                    // The hop is re-run with the bytes it got (TLS an Envoy before it started).
                    let mut on = start.clone();
                    on.client = client.clone();
                    decisions.extend(envoy::decisions(mesh, &on, *pod, (*listener, *orig_dst, *src)))
                }
            }
        }
        paths.push(PathReport { weight: p.weight, kind: p.ending.kind(), decisions });
    }
    let counterfactuals = counterfactual::all(mesh, start, &trace);
    let fixes = fix::all(mesh, start, &trace);
    Ok(Report { title: String::new(), paths, counterfactuals, fixes, trace })
}

#[cfg(test)]
mod tests;
