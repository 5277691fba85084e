//! `meshpath trace` output: a traceroute-like text, the `meshpath.trace/v1` JSON document, and
//! the paths drawn as a graph in DOT and Mermaid (pods as clusters, branches with their
//! weights, a loop's closing edge highlighted).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{json, Value};

use super::words;
use crate::engine::{Ending, Layer, MeshTrace, Path, Step};

/// The JSON document's schema name and version (docs/trace.md).
pub const SCHEMA: &str = "meshpath.trace/v2";

#[derive(Serialize)]
struct Document<'a> {
    schema: &'static str,
    paths: Vec<PathView<'a>>,
}

#[derive(Serialize)]
struct PathView<'a> {
    weight: f64,
    ending: Value,
    envoy: &'a [crate::engine::EnvoyHop],
    steps: Vec<StepView<'a>>,
}

#[derive(Serialize)]
struct StepView<'a> {
    /// 1-based, as the text numbers steps.
    n: usize,
    pod: &'a str,
    layer: Layer,
    what: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    source: String,
    detail: DetailView<'a>,
}

/// A step's detail as the engine records it, except that `to_pod` names its pod, as every
/// other pod of the document is named (the engine's pod index means nothing to a reader).
#[derive(Serialize)]
#[serde(untagged)]
enum DetailView<'a> {
    ToPod { step: &'static str, to: &'a str, dst: std::net::SocketAddr },
    Other(&'a crate::engine::Detail),
}

fn detail_view<'a>(t: &'a MeshTrace, d: &'a crate::engine::Detail) -> DetailView<'a> {
    match d {
        crate::engine::Detail::ToPod { to, dst } => {
            DetailView::ToPod { step: "to_pod", to: t.pod_name(*to), dst: *dst }
        }
        other => DetailView::Other(other),
    }
}

/// The `meshpath.trace/v2` document of a trace.
pub fn json(t: &MeshTrace) -> Result<String, serde_json::Error> {
    let paths = t.paths.iter().map(|p| path_view(t, p)).collect::<Result<Vec<_>, _>>()?;
    let mut s = serde_json::to_string_pretty(&Document { schema: SCHEMA, paths })?;
    s.push('\n');
    Ok(s)
}

/// The paths of a trace as the `meshpath.trace/v2` document writes them (`meshpath check
/// --format json` lists them for a failed probe).
pub struct Paths<'a>(pub &'a MeshTrace);

impl Serialize for Paths<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = self.0;
        let paths: Vec<PathView<'_>> = t
            .paths
            .iter()
            .map(|p| path_view(t, p))
            .collect::<Result<_, _>>()
            .map_err(serde::ser::Error::custom)?;
        paths.serialize(s)
    }
}

fn path_view<'a>(t: &'a MeshTrace, p: &'a Path) -> Result<PathView<'a>, serde_json::Error> {
    let steps = p
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| StepView {
            n: i + 1,
            pod: t.pod_name(s.pod),
            layer: s.layer(),
            what: words::step(&t.pods, s),
            source: words::source(s),
            detail: detail_view(t, &s.detail),
        })
        .collect();
    Ok(PathView { weight: p.weight, ending: ending_json(t, p)?, envoy: &p.envoy, steps })
}

/// The ending as data, with its sentence (`text`) and, for kinds that have one, its reason in
/// words; a loop's steps are numbered from 1, as the text numbers them.
pub fn ending_json(t: &MeshTrace, p: &Path) -> Result<Value, serde_json::Error> {
    let mut v = serde_json::to_value(&p.ending)?;
    if let Value::Object(m) = &mut v {
        if let Ending::Loop { cycle, closed_by, .. } = &p.ending {
            m.insert("cycle".into(), json!([cycle[0] + 1, cycle[1] + 1]));
            let by: Vec<Value> = closed_by
                .iter()
                .filter_map(|&i| p.steps.get(i).map(|s| (i, s)))
                .map(|(i, s)| json!({"step": i + 1, "what": words::step(&t.pods, s), "source": words::source(s)}))
                .collect();
            m.insert("closed_by".into(), Value::Array(by));
        }
        if let Ending::EnvoyResponse { details, upstream, .. } = &p.ending {
            m.insert("details".into(), Value::String(words::envoy_details(details, upstream.as_deref())));
        }
        if let Some(r) = words::ending_reason(&p.ending) {
            m.insert("reason_text".into(), Value::String(r));
        }
        m.insert("text".into(), Value::String(words::ending(&t.pods, p)));
    }
    Ok(v)
}

/// One sentence for how a path ends.
pub fn ending_sentence(t: &MeshTrace, p: &Path) -> String {
    words::ending(&t.pods, p)
}

fn layer(s: &Step) -> &'static str {
    match s.layer() {
        Layer::Netfilter => "netfilter",
        Layer::Route => "route",
        Layer::Socket => "socket",
        Layer::Envoy => "envoy",
        Layer::Dns => "dns",
        Layer::Wire => "wire",
    }
}

/// A step's layer as a word.
pub fn layer_name(s: &Step) -> &'static str {
    layer(s)
}

pub fn text(t: &MeshTrace) -> String {
    let mut out = String::new();
    let many = t.paths.len() > 1;
    for (i, p) in t.paths.iter().enumerate() {
        if many {
            let _ = writeln!(out, "path {} of {} (weight {:.4}):", i + 1, t.paths.len(), p.weight);
        }
        for (n, s) in p.steps.iter().enumerate() {
            let src = words::source(s);
            let src = if src.is_empty() { String::new() } else { format!("  [{src}]") };
            let what = words::step(&t.pods, s);
            let _ = writeln!(out, "{:>3}  {:<12} {:<9} {what}{src}", n + 1, t.pod_name(s.pod), layer(s));
        }
        let _ = writeln!(out, "=> {}", words::ending(&t.pods, p));
        if many && i + 1 < t.paths.len() {
            out.push('\n');
        }
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Nodes are steps; paths share a node only while they share the whole way up to it (a
/// prefix tree), so a step repeated later in a path is a new node and only a loop's closing
/// edge goes back.
struct Graph {
    nodes: Vec<(String, String)>, // (pod, label)
    edges: Vec<(usize, usize, String, bool)>,
}

fn graph(t: &MeshTrace) -> Graph {
    let mut g = Graph { nodes: Vec::new(), edges: Vec::new() };
    let mut children: BTreeMap<(Option<usize>, String, String), usize> = BTreeMap::new();
    for (pi, p) in t.paths.iter().enumerate() {
        let mut parent: Option<usize> = None;
        let mut ids = Vec::new();
        for s in &p.steps {
            let label = format!("{}: {}", layer(s), words::step(&t.pods, s));
            let pod = t.pod_name(s.pod).to_string();
            let key = (parent, pod.clone(), label.clone());
            let id = match children.get(&key) {
                Some(&id) => id,
                None => {
                    g.nodes.push((pod, label));
                    let id = g.nodes.len() - 1;
                    children.insert(key, id);
                    if let Some(a) = parent {
                        g.edges.push((a, id, String::new(), false));
                    }
                    id
                }
            };
            ids.push(id);
            parent = Some(id);
        }
        g.nodes.push((String::new(), format!("path {}: {}", pi + 1, words::ending(&t.pods, p))));
        let end = g.nodes.len() - 1;
        if let Some(a) = parent {
            let w = if t.paths.len() > 1 { format!("{:.3}", p.weight) } else { String::new() };
            g.edges.push((a, end, w, false));
        }
        if let Ending::Loop { cycle, .. } = &p.ending {
            if let (Some(&from), Some(&to)) = (ids.get(cycle[1]), ids.get(cycle[0])) {
                g.edges.push((from, to, "loop".into(), true));
            }
        }
    }
    g
}

pub fn dot(t: &MeshTrace) -> String {
    let g = graph(t);
    let mut out = String::from(
        "digraph meshpath {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\", fontsize=10];\n",
    );
    let mut pods: Vec<&str> = g.nodes.iter().map(|(p, _)| p.as_str()).collect();
    pods.dedup();
    let mut seen = std::collections::BTreeSet::new();
    let mut ci = 0;
    for pod in pods {
        if !seen.insert(pod) {
            continue;
        }
        if pod.is_empty() {
            for (i, (p, label)) in g.nodes.iter().enumerate() {
                if p.is_empty() {
                    let _ = writeln!(out, "  n{i} [label=\"{}\", shape=ellipse, style=bold];", esc(label));
                }
            }
            continue;
        }
        let _ = writeln!(out, "  subgraph cluster_{ci} {{\n    label=\"pod {}\";", esc(pod));
        ci += 1;
        for (i, (p, label)) in g.nodes.iter().enumerate() {
            if p == pod {
                let _ = writeln!(out, "    n{i} [label=\"{}\"];", esc(label));
            }
        }
        out.push_str("  }\n");
    }
    for (a, b, label, closing) in &g.edges {
        let style = if *closing { ", color=red, penwidth=2, constraint=false" } else { "" };
        let _ = writeln!(out, "  n{a} -> n{b} [label=\"{}\"{style}];", esc(label));
    }
    out.push_str("}\n");
    out
}

pub fn mermaid(t: &MeshTrace) -> String {
    let g = graph(t);
    let mut out = String::from("flowchart TD\n");
    let mut done = std::collections::BTreeSet::new();
    let mut ci = 0;
    for (pod, _) in &g.nodes {
        if !done.insert(pod.clone()) {
            continue;
        }
        if !pod.is_empty() {
            let _ = writeln!(out, "  subgraph pod{ci}[\"pod {}\"]", pod.replace('"', "'"));
            ci += 1;
        }
        for (i, (p, label)) in g.nodes.iter().enumerate() {
            if p == pod {
                let shape = if pod.is_empty() { ("([", "])") } else { ("[", "]") };
                let _ = writeln!(out, "    n{i}{}\"{}\"{}", shape.0, label.replace('"', "'"), shape.1);
            }
        }
        if !pod.is_empty() {
            out.push_str("  end\n");
        }
    }
    let mut loops = Vec::new();
    for (k, (a, b, label, closing)) in g.edges.iter().enumerate() {
        if label.is_empty() {
            let _ = writeln!(out, "  n{a} --> n{b}");
        } else {
            let _ = writeln!(out, "  n{a} -->|{label}| n{b}");
        }
        if *closing {
            loops.push(k);
        }
    }
    for k in loops {
        let _ = writeln!(out, "  linkStyle {k} stroke:red,stroke-width:3px");
    }
    out
}
