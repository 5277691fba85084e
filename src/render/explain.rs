//! `meshpath explain` output: plain text (the default), Markdown, and one self-contained HTML
//! page (inline CSS, the graph as inline SVG beside the steps; no script, no external URL).

use std::fmt::Write as _;

use super::markup_escape;
use crate::explain::{Counterfactual, Decision, PathReport, Report};

fn ending_line(r: &Report, i: usize, p: &PathReport) -> String {
    if r.paths.len() > 1 {
        format!("Path {} of {} (weight {:.4}): {}", i + 1, r.paths.len(), p.weight, p.ending)
    } else {
        format!("Ending: {}", p.ending)
    }
}

fn counterfactual_line(c: &Counterfactual) -> String {
    match c.endings.as_slice() {
        [one] => format!("{}: {one}", c.change),
        many => format!("{}: {}", c.change, many.join("; ")),
    }
}

pub fn text(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", r.title);
    for (i, p) in r.paths.iter().enumerate() {
        let _ = writeln!(out, "\n{}", ending_line(r, i, p));
        if !p.cycle.is_empty() {
            let _ = writeln!(out, "\nThe loop, step by step:");
            for c in &p.cycle {
                let _ = writeln!(out, "  {c}");
            }
            let _ = writeln!(out, "Closed by:");
            for c in &p.closed_by {
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
    out
}

fn text_decision(out: &mut String, d: &Decision) {
    let src = if d.source.is_empty() { String::new() } else { format!("  [{}]", d.source) };
    let _ = writeln!(out, "  {} {}: {}{src}", d.pod, d.layer, d.what);
    for w in &d.why {
        let _ = writeln!(out, "      {w}");
    }
}

pub fn markdown(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}", md(&r.title));
    for (i, p) in r.paths.iter().enumerate() {
        let _ = writeln!(out, "\n## {}", md(&ending_line(r, i, p)));
        if !p.cycle.is_empty() {
            let _ = writeln!(out, "\nThe loop, step by step:\n");
            for c in &p.cycle {
                let _ = writeln!(out, "- {}", md(c));
            }
            let _ = writeln!(out, "\nClosed by:\n");
            for c in &p.closed_by {
                let _ = writeln!(out, "- {}", md(c));
            }
        }
        let _ = writeln!(out, "\n### Why\n");
        for d in &p.decisions {
            let src = if d.source.is_empty() { String::new() } else { format!(" (`{}`)", d.source) };
            let _ = writeln!(out, "- **{}** {}: {}{src}", md(&d.pod), d.layer, md(&d.what));
            for w in &d.why {
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
        let _ = writeln!(out, "<h2>{}</h2>", html_text(&ending_line(r, i, p)));
        if !p.cycle.is_empty() {
            out.push_str("<h3>The loop, step by step</h3>\n<ul>\n");
            for c in &p.cycle {
                let _ = writeln!(out, "<li>{}</li>", html_text(c));
            }
            out.push_str("</ul>\n<h3>Closed by</h3>\n<ul>\n");
            for c in &p.closed_by {
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
                html_text(&d.what)
            );
            for w in &d.why {
                let _ = write!(out, "<div class=\"w\">{}</div>", html_text(w));
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
    out.push_str("</section>\n</main>\n</body>\n</html>\n");
    out
}
