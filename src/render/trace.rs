//! `meshpath trace` output: a traceroute-like text, the `meshpath.trace/v1` JSON document, and
//! the paths drawn as a graph in DOT and Mermaid (pods as clusters, branches with their
//! weights, a loop's closing edge highlighted).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::engine::{Ending, MeshTrace, Path, Step};

pub const SCHEMA: &str = "meshpath.trace/v1";

#[derive(Serialize)]
struct Document<'a> {
    schema: &'static str,
    paths: &'a [Path],
}

pub fn json(t: &MeshTrace) -> serde_json::Result<String> {
    let mut s = serde_json::to_string_pretty(&Document { schema: SCHEMA, paths: &t.paths })?;
    s.push('\n');
    Ok(s)
}

/// One sentence for how a path ends.
pub fn ending_sentence(e: &Ending) -> String {
    match e {
        Ending::Delivered { pod, socket, process } => {
            format!("delivered in pod {pod} to {process} on {socket}")
        }
        Ending::Refused { pod, reason, .. } => format!("refused in pod {pod}: {reason}"),
        Ending::Dropped { pod, reason } => format!("dropped in pod {pod}: {reason}"),
        Ending::EnvoyResponse { pod, status, flag, details } => {
            let flag = flag.as_deref().map(|f| format!(" {f}")).unwrap_or_default();
            match status {
                Some(s) => format!("Envoy in pod {pod} answers {s}{flag} ({details})"),
                None => format!("Envoy in pod {pod} accepts, then closes the connection{flag} ({details})"),
            }
        }
        Ending::Blackhole { pod, cluster } => {
            format!("Envoy in pod {pod} sends it to {cluster}: the connection is dropped")
        }
        Ending::Left { pod, dst, cluster } => match cluster {
            Some(c) => format!("leaves pod {pod} for {dst} through cluster {c}"),
            None => format!("leaves pod {pod} for {dst}"),
        },
        Ending::Unresolved { pod, host } => format!("{host} cannot be resolved in pod {pod}"),
        Ending::Loop { cycle, closed_by } => {
            let by = if closed_by.is_empty() {
                String::new()
            } else {
                format!("; closed by {}", closed_by.join(", "))
            };
            format!("loops: steps {} to {} repeat{by}", cycle[0] + 1, cycle[1] + 1)
        }
        Ending::Undetermined { pod, reason } => format!("undetermined in pod {pod}: {reason}"),
    }
}

fn layer(s: &Step) -> &'static str {
    match s.layer {
        crate::engine::Layer::Netfilter => "netfilter",
        crate::engine::Layer::Route => "route",
        crate::engine::Layer::Socket => "socket",
        crate::engine::Layer::Envoy => "envoy",
        crate::engine::Layer::Dns => "dns",
        crate::engine::Layer::Wire => "wire",
    }
}

pub fn text(t: &MeshTrace) -> String {
    let mut out = String::new();
    let many = t.paths.len() > 1;
    for (i, p) in t.paths.iter().enumerate() {
        if many {
            let _ = writeln!(out, "path {} of {} (weight {:.4}):", i + 1, t.paths.len(), p.weight);
        }
        for (n, s) in p.steps.iter().enumerate() {
            let src = if s.source.is_empty() { String::new() } else { format!("  [{}]", s.source) };
            let _ = writeln!(out, "{:>3}  {:<12} {:<9} {}{src}", n + 1, s.pod, layer(s), s.what);
        }
        let _ = writeln!(out, "=> {}", ending_sentence(&p.ending));
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
            let label = format!("{}: {}", layer(s), s.what);
            let key = (parent, s.pod.clone(), label.clone());
            let id = match children.get(&key) {
                Some(&id) => id,
                None => {
                    g.nodes.push((s.pod.clone(), label));
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
        g.nodes.push((String::new(), format!("path {}: {}", pi + 1, ending_sentence(&p.ending))));
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
