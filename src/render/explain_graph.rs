//! The explain report's graph as SVG, laid out by `layout-rs` (pure Rust; no `dot` binary, so
//! the drawing is the same whatever is installed). Nodes are the steps of the paths (shared
//! while paths share their way up to them), the endings are the last nodes, and a loop's
//! closing edge goes back, dashed and red.

use std::collections::BTreeMap;

use layout::backends::svg::SVGWriter;
use layout::core::base::Orientation;
use layout::core::color::Color;
use layout::core::geometry::Point;
use layout::core::style::{LineStyleKind, StyleAttr};
use layout::std_shapes::shapes::{Arrow, Element, LineEndKind, ShapeKind};
use layout::topo::layout::VisualGraph;

use crate::engine::{Ending, Layer, MeshTrace};

/// Longest label line, in characters.
const WIDTH: usize = 44;
/// One font size everywhere (layout-rs emits one CSS class per size).
const FONT: usize = 13;

struct Node {
    label: String,
    fill: &'static str,
}

/// The graph of `t` as an `<svg>` element, or `None` when the layout fails.
pub fn svg(t: &MeshTrace) -> Option<String> {
    let (nodes, edges) = graph(t);
    if nodes.is_empty() {
        return None;
    }
    let drawn = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| draw(&nodes, &edges))).ok()?;
    Some(tidy(&drawn))
}

fn graph(t: &MeshTrace) -> (Vec<Node>, Vec<(usize, usize, bool)>) {
    let mut nodes: Vec<Node> = Vec::new();
    let mut edges: Vec<(usize, usize, bool)> = Vec::new();
    let mut children: BTreeMap<(Option<usize>, String), usize> = BTreeMap::new();
    for p in &t.paths {
        let mut parent: Option<usize> = None;
        let mut ids = Vec::new();
        for s in &p.steps {
            let layer = super::trace::layer_name(s);
            let label = format!("{} {layer}: {}", t.pod_name(s.pod), super::words::step(&t.pods, s));
            let fill = match s.layer() {
                Layer::Envoy => "#e3f2fd",
                Layer::Netfilter => "#fff3e0",
                Layer::Wire => "#eeeeee",
                _ => "#f1f8e9",
            };
            let id = *children.entry((parent, label.clone())).or_insert_with(|| {
                nodes.push(Node { label: wrap(&label), fill });
                if let Some(a) = parent {
                    edges.push((a, nodes.len() - 1, false));
                }
                nodes.len() - 1
            });
            ids.push(id);
            parent = Some(id);
        }
        match &p.ending {
            Ending::Loop { cycle, .. } => {
                if let (Some(&from), Some(&to)) = (ids.last(), ids.get(cycle[0])) {
                    edges.push((from, to, true));
                }
            }
            _ => {
                let label = super::words::ending(&t.pods, p);
                let weight =
                    if t.paths.len() > 1 { format!(" (weight {:.4})", p.weight) } else { String::new() };
                nodes.push(Node { label: wrap(&format!("=> {label}{weight}")), fill: "#ffebee" });
                if let Some(a) = parent {
                    edges.push((a, nodes.len() - 1, false));
                }
            }
        }
    }
    (nodes, edges)
}

/// Breaks a label into lines of at most [`WIDTH`] characters (at spaces when possible).
fn wrap(s: &str) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in s.split(' ') {
        let mut word = word.to_string();
        while word.chars().count() > WIDTH {
            let head: String = word.chars().take(WIDTH).collect();
            word = word.chars().skip(WIDTH).collect();
            if !cur.is_empty() {
                lines.push(std::mem::take(&mut cur));
            }
            lines.push(head);
        }
        if cur.chars().count() + word.chars().count() + 1 > WIDTH && !cur.is_empty() {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(&word);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines.truncate(4);
    lines.join("\n")
}

fn draw(nodes: &[Node], edges: &[(usize, usize, bool)]) -> String {
    let mut vg = VisualGraph::new(Orientation::TopToBottom);
    let handles: Vec<_> = nodes
        .iter()
        .map(|n| {
            let lines: Vec<&str> = n.label.split('\n').collect();
            let longest = lines.iter().map(|l| l.chars().count()).max().unwrap_or(1);
            let size = Point::new(longest as f64 * 7.4 + 16.0, lines.len() as f64 * 17.0 + 12.0);
            let look = StyleAttr::new(Color::fast("black"), 1, Some(color(n.fill)), 6, FONT);
            vg.add_node(Element::create(ShapeKind::new_box(&n.label), look, Orientation::TopToBottom, size))
        })
        .collect();
    for &(a, b, back) in edges {
        let (Some(&ha), Some(&hb)) = (handles.get(a), handles.get(b)) else { continue };
        let arrow = if back {
            let look = StyleAttr::new(Color::fast("red"), 2, None, 0, FONT);
            Arrow::new(
                LineEndKind::None,
                LineEndKind::Arrow,
                LineStyleKind::Dashed,
                "loop",
                &look,
                &None,
                &None,
            )
        } else {
            let look = StyleAttr::new(Color::fast("black"), 1, None, 0, FONT);
            Arrow::new(LineEndKind::None, LineEndKind::Arrow, LineStyleKind::Normal, "", &look, &None, &None)
        };
        vg.add_edge(arrow, ha, hb);
    }
    let mut svg = SVGWriter::new();
    vg.do_it(false, false, false, &mut svg);
    svg.finalize()
}

fn color(hex: &str) -> Color {
    Color::new(u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap_or(0xffffff) << 8 | 0xff)
}

/// Drops the XML declaration and namespace (the SVG is inlined in HTML, where neither is
/// needed) and sorts the lines of the `<style>` block (layout-rs writes them in hash-map order).
fn tidy(svg: &str) -> String {
    let svg = svg.replace(" xmlns=\"http://www.w3.org/2000/svg\"", "").replace("<style>", "\n<style>\n");
    let svg = svg.trim_start_matches(|c| c != '<');
    let svg = match svg.strip_prefix("<?xml") {
        Some(rest) => rest.split_once("?>").map_or(rest, |(_, r)| r),
        None => svg,
    };
    let mut out = String::new();
    let mut style: Vec<&str> = Vec::new();
    let mut in_style = false;
    for line in svg.lines().filter(|l| !l.trim().is_empty()) {
        if line.trim() == "<style>" {
            in_style = true;
            out.push_str(line);
            out.push('\n');
            continue;
        }
        if in_style {
            if line.trim() == "</style>" {
                style.sort_unstable();
                for s in style.drain(..) {
                    out.push_str(s);
                    out.push('\n');
                }
                in_style = false;
            } else {
                style.push(line);
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}
