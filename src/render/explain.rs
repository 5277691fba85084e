//! `meshpath explain` output: plain text (the default), Markdown, and one self-contained HTML
//! page (inline CSS, the graph as inline SVG beside the steps; no script, no external URL).

use std::fmt::Write as _;

use serde::Serialize;

use super::{explain_fix as fix, markup_escape, words};
use crate::engine::{Destination, Ending, From, Mesh, MeshTrace, Start};
use crate::explain::{Counterfactual, Decision, LoopVerdict, Report, Said};

/// The JSON document's schema name and version (docs/explain.md).
pub const SCHEMA: &str = "meshpath.explain/v1";

/// The connection in words: who sends what to where (the report's default title).
pub fn title(mesh: &Mesh, start: &Start) -> String {
    let pod = mesh.pods.get(start.pod).map(|p| p.name.as_str()).unwrap_or("?");
    let proxy = |uid: u32| mesh.pods.get(start.pod).is_some_and(|p| p.istio.is_proxy_uid(uid));
    let who = match &start.from {
        From::Process { uid, .. } if proxy(*uid) => format!("Envoy (uid {uid}) in pod {pod}"),
        From::Process { uid, .. } => format!("the app (uid {uid}) in pod {pod}"),
        From::Outside { src } => format!("{src} from outside pod {pod}"),
    };
    let dst = match &start.dst {
        Destination::Addr(a) => a.to_string(),
        Destination::Host { name, port } => format!("{name}:{port}"),
    };
    let what = match (&start.client, &start.request) {
        (_, Some(r)) => format!(" ({} {}{})", r.method, r.host.as_deref().unwrap_or(""), r.path),
        (crate::envoy::select::ClientBytes::Tls { sni: Some(s), .. }, None) => format!(" (TLS, SNI {s})"),
        (crate::envoy::select::ClientBytes::ServerFirst, None) => {
            " (server-first: it waits for the server to speak)".into()
        }
        _ => String::new(),
    };
    let proto = if start.proto == crate::netns::L4::Udp { "udp" } else { "tcp" };
    format!("{who} connects to {dst} over {proto}{what}")
}

/// A path of the report in words: its ending and, for a loop, its cycle and closing steps.
struct PathWords {
    ending: String,
    cycle: Vec<String>,
    closed_by: Vec<String>,
}

fn path_words(r: &Report, i: usize) -> PathWords {
    let t = &r.trace;
    let Some(p) = t.paths.get(i) else {
        return PathWords { ending: String::new(), cycle: Vec::new(), closed_by: Vec::new() };
    };
    let (ending, cycle) = match &p.ending {
        Ending::Loop { cycle, .. } => {
            let steps = p
                .steps
                .iter()
                .enumerate()
                .skip(cycle[0])
                .take(cycle[1].saturating_sub(cycle[0]) + 1)
                .map(|(i, s)| {
                    let src = words::source(s);
                    let src = if src.is_empty() { String::new() } else { format!(" [{src}]") };
                    format!("{}. {}: {}{src}", i + 1, t.pod_name(s.pod), words::step(&t.pods, s))
                })
                .collect();
            (format!("loops: steps {} to {} repeat", cycle[0] + 1, cycle[1] + 1), steps)
        }
        _ => (words::ending(&t.pods, p), Vec::new()),
    };
    PathWords { ending, cycle, closed_by: words::closed_by(&t.pods, p) }
}

fn ending_line(r: &Report, i: usize, w: &PathWords) -> String {
    if r.paths.len() > 1 {
        let weight = r.paths.get(i).map_or(0.0, |p| p.weight);
        format!("Path {} of {} (weight {weight:.4}): {}", i + 1, r.paths.len(), w.ending)
    } else {
        format!("Ending: {}", w.ending)
    }
}

/// Each path's ending in one line (with its weight when there are several).
pub(super) fn endings_of(t: &MeshTrace) -> Vec<String> {
    let many = t.paths.len() > 1;
    t.paths
        .iter()
        .map(|p| {
            let s = words::ending(&t.pods, p);
            if many {
                format!("{s} (weight {:.4})", p.weight)
            } else {
                s
            }
        })
        .collect()
}

/// What a counterfactual's walk ends with, one line per path.
fn counterfactual_endings(c: &Counterfactual) -> Vec<String> {
    let mut endings = match &c.outcome {
        Ok(t) => endings_of(t),
        Err(e) => return vec![format!("the walk fails: {e}")],
    };
    if let (Some(v), Some(first)) = (c.loop_verdict, endings.first_mut()) {
        let verdict = match v {
            LoopVerdict::StillLoops => "it still loops",
            LoopVerdict::Disappears => "the loop disappears",
        };
        *first = format!("{verdict}: {first}");
    }
    endings
}

fn counterfactual_line(c: &Counterfactual) -> String {
    format!("{}: {}", c.change, counterfactual_endings(c).join("; "))
}

/// A decision's line in words.
fn said(s: &Said) -> String {
    match s {
        Said::Text(t) => t.clone(),
        Said::Event(e) => words::event(e),
        Said::Dropped(r) => format!("dropped: {}", words::reason(r)),
    }
}

#[derive(Serialize)]
struct JsonDocument<'a> {
    schema: &'static str,
    title: &'a str,
    paths: Vec<JsonPath<'a>>,
    counterfactuals: Vec<JsonCounterfactual<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    fixes: Vec<super::explain_fix::JsonFix<'a>>,
}

#[derive(Serialize)]
struct JsonPath<'a> {
    weight: f64,
    ending: serde_json::Value,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cycle: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    closed_by: Vec<String>,
    decisions: Vec<JsonDecision<'a>>,
}

#[derive(Serialize)]
struct JsonDecision<'a> {
    pod: &'a str,
    layer: &'static str,
    what: String,
    #[serde(skip_serializing_if = "str::is_empty")]
    source: &'a str,
    why: Vec<String>,
}

#[derive(Serialize)]
struct JsonCounterfactual<'a> {
    change: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    assumed: &'a [String],
    kinds: &'a [&'static str],
    #[serde(skip_serializing_if = "Option::is_none")]
    loop_verdict: Option<LoopVerdict>,
    endings: Vec<String>,
}

/// The `meshpath.explain/v1` document (docs/explain.md).
pub fn json(r: &Report) -> Result<String, serde_json::Error> {
    let mut paths = Vec::new();
    for (i, p) in r.paths.iter().enumerate() {
        let w = path_words(r, i);
        let ending = match r.trace.paths.get(i) {
            Some(tp) => super::trace::ending_json(&r.trace, tp)?,
            None => serde_json::Value::Null,
        };
        paths.push(JsonPath {
            weight: p.weight,
            ending,
            cycle: w.cycle,
            closed_by: w.closed_by,
            decisions: p
                .decisions
                .iter()
                .map(|d| JsonDecision {
                    pod: &d.pod,
                    layer: d.layer,
                    what: said(&d.what),
                    source: &d.source,
                    why: d.why.iter().map(said).collect(),
                })
                .collect(),
        });
    }
    let counterfactuals = r
        .counterfactuals
        .iter()
        .map(|c| JsonCounterfactual {
            change: &c.change,
            assumed: &c.assumed,
            kinds: &c.kinds,
            loop_verdict: c.loop_verdict,
            endings: counterfactual_endings(c),
        })
        .collect();
    let fixes = r.fixes.iter().map(super::explain_fix::json).collect();
    let doc = JsonDocument { schema: SCHEMA, title: &r.title, paths, counterfactuals, fixes };
    let mut s = serde_json::to_string_pretty(&doc)?;
    s.push('\n');
    Ok(s)
}

pub fn text(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", r.title);
    for (i, p) in r.paths.iter().enumerate() {
        let w = path_words(r, i);
        let _ = writeln!(out, "\n{}", ending_line(r, i, &w));
        if !w.cycle.is_empty() {
            let _ = writeln!(out, "\nThe loop, step by step:");
            for c in &w.cycle {
                let _ = writeln!(out, "  {c}");
            }
            let _ = writeln!(out, "Closed by:");
            for c in &w.closed_by {
                let _ = writeln!(out, "  - {c}");
            }
        }
        let _ = writeln!(out, "\nWhy:");
        for d in &p.decisions {
            text_decision(&mut out, d);
        }
    }
    if !r.counterfactuals.is_empty() {
        let _ = writeln!(out, "\nWhat if (each re-simulated):");
        for c in &r.counterfactuals {
            let _ = writeln!(out, "  - {}", counterfactual_line(c));
            for a in &c.assumed {
                let _ = writeln!(out, "      assumed: {a}");
            }
        }
    }
    if !r.fixes.is_empty() {
        let _ = writeln!(out, "\nFixes (each re-simulated):");
        for f in &r.fixes {
            let _ = writeln!(out, "  - {}", fix::line(f));
            for e in &f.edits {
                let _ = writeln!(out, "      changes: {}", fix::edit(e));
            }
        }
    }
    out
}

fn text_decision(out: &mut String, d: &Decision) {
    let src = if d.source.is_empty() { String::new() } else { format!("  [{}]", d.source) };
    let _ = writeln!(out, "  {} {}: {}{src}", d.pod, d.layer, said(&d.what));
    for w in &d.why {
        let _ = writeln!(out, "      {}", said(w));
    }
}

pub fn markdown(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}", md(&r.title));
    for (i, p) in r.paths.iter().enumerate() {
        let w = path_words(r, i);
        let _ = writeln!(out, "\n## {}", md(&ending_line(r, i, &w)));
        if !w.cycle.is_empty() {
            let _ = writeln!(out, "\nThe loop, step by step:\n");
            for c in &w.cycle {
                let _ = writeln!(out, "- {}", md(c));
            }
            let _ = writeln!(out, "\nClosed by:\n");
            for c in &w.closed_by {
                let _ = writeln!(out, "- {}", md(c));
            }
        }
        let _ = writeln!(out, "\n### Why\n");
        for d in &p.decisions {
            let src = if d.source.is_empty() { String::new() } else { format!(" (`{}`)", d.source) };
            let _ = writeln!(out, "- **{}** {}: {}{src}", md(&d.pod), d.layer, md(&said(&d.what)));
            for w in &d.why {
                let w = said(w);
                let depth = w.len() - w.trim_start().len();
                let indent = if depth > 0 { "    " } else { "" };
                let _ = writeln!(out, "  {indent}- {}", md(w.trim_start()));
            }
        }
    }
    if !r.counterfactuals.is_empty() {
        let _ = writeln!(out, "\n## What if (each re-simulated)\n");
        for c in &r.counterfactuals {
            let _ = writeln!(out, "- {}", md(&counterfactual_line(c)));
            for a in &c.assumed {
                let _ = writeln!(out, "  - assumed: {}", md(a));
            }
        }
    }
    if !r.fixes.is_empty() {
        let _ = writeln!(out, "\n## Fixes (each re-simulated)\n");
        for f in &r.fixes {
            let _ = writeln!(out, "- {}", md(&fix::line(f)));
            for e in &f.edits {
                let _ = writeln!(out, "  - changes: {}", md(&fix::edit(e)));
            }
        }
    }
    out
}

/// Escapes what Markdown would otherwise read as markup (text in backticks is kept).
fn md(s: &str) -> String {
    let mut out = String::new();
    let mut code = false;
    for c in s.chars() {
        if c == '`' {
            code = !code;
        }
        if !code && matches!(c, '|' | '*' | '_' | '<' | '>' | '[' | ']' | '#') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Text with `code` spans as `<code>`.
fn html_text(s: &str) -> String {
    let mut out = String::new();
    for (i, part) in s.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{}</code>", markup_escape(part));
        } else {
            out.push_str(&markup_escape(part));
        }
    }
    out
}

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#212121;background:#fff}\
header{padding:12px 20px;border-bottom:1px solid #ddd}h1{font-size:20px;margin:0}\
main{display:flex;align-items:flex-start;gap:16px;padding:12px 20px}\
#graph{flex:0 0 46%;overflow:auto;max-height:95vh;border:1px solid #ddd;padding:6px}\
#graph svg{max-width:100%;height:auto}#report{flex:1 1 54%;min-width:0;overflow-wrap:anywhere}\
h2{font-size:16px;margin:14px 0 6px}h3{font-size:14px;margin:10px 0 4px}\
.d{margin:4px 0 8px}.d .w{margin:2px 0 0 18px;font-size:13px;color:#424242}\
.src{color:#757575;font-size:12px}.layer{display:inline-block;min-width:64px;font-size:12px;color:#555}\
code{background:#f5f5f5;padding:0 2px}ol,ul{margin:4px 0 4px 18px;padding:0}li{font-size:13px}";

pub fn html(r: &Report) -> String {
    let mut out = String::new();
    let title = markup_escape(&r.title);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>meshpath explain: {title}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<header><h1>{title}</h1></header>\n<main>\n<section id=\"graph\">\n"
    );
    match super::explain_graph::svg(&r.trace) {
        Some(svg) => out.push_str(&svg),
        None => out.push_str("<p>(no graph)</p>\n"),
    }
    out.push_str("</section>\n<section id=\"report\">\n");
    for (i, p) in r.paths.iter().enumerate() {
        let w = path_words(r, i);
        let _ = writeln!(out, "<h2>{}</h2>", html_text(&ending_line(r, i, &w)));
        if !w.cycle.is_empty() {
            out.push_str("<h3>The loop, step by step</h3>\n<ul>\n");
            for c in &w.cycle {
                let _ = writeln!(out, "<li>{}</li>", html_text(c));
            }
            out.push_str("</ul>\n<h3>Closed by</h3>\n<ul>\n");
            for c in &w.closed_by {
                let _ = writeln!(out, "<li>{}</li>", html_text(c));
            }
            out.push_str("</ul>\n");
        }
        out.push_str("<h3>Why</h3>\n");
        for d in &p.decisions {
            let src = if d.source.is_empty() {
                String::new()
            } else {
                format!(" <span class=\"src\">{}</span>", markup_escape(&d.source))
            };
            let _ = write!(
                out,
                "<div class=\"d\"><span class=\"layer\">{} {}</span> {}{src}",
                markup_escape(&d.pod),
                d.layer,
                html_text(&said(&d.what))
            );
            for w in &d.why {
                let _ = write!(out, "<div class=\"w\">{}</div>", html_text(&said(w)));
            }
            out.push_str("</div>\n");
        }
    }
    if !r.counterfactuals.is_empty() {
        out.push_str("<h2>What if (each re-simulated)</h2>\n<ul>\n");
        for c in &r.counterfactuals {
            let _ = write!(out, "<li>{}", html_text(&counterfactual_line(c)));
            for a in &c.assumed {
                let _ = write!(out, "<br><em>assumed:</em> {}", html_text(a));
            }
            out.push_str("</li>\n");
        }
        out.push_str("</ul>\n");
    }
    if !r.fixes.is_empty() {
        out.push_str("<h2>Fixes (each re-simulated)</h2>\n<ul>\n");
        for f in &r.fixes {
            let _ = write!(out, "<li>{}", html_text(&fix::line(f)));
            for e in &f.edits {
                let _ = write!(out, "<br><em>changes:</em> {}", html_text(&fix::edit(e)));
            }
            out.push_str("</li>\n");
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</section>\n</main>\n</body>\n</html>\n");
    out
}
