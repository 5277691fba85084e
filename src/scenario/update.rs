//! `check --update`: writing a probe's `expect` block into the scenario file's text. Only the
//! lines of the old `expect` (or, when there was none, nothing) change; every other byte of
//! the file, comments included, stays as it was.

use std::fmt::Write as _;

use super::model::{Expect, HopExpect};

/// Why a probe's expectations could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct UpdateError {
    pub line: usize,
    pub message: String,
}

/// One probe to rewrite: the 1-based line and column of its `name` value, and what to write.
pub struct Edit<'a> {
    pub name_line: usize,
    pub name_col: usize,
    pub expect: &'a Expect,
}

/// The file with each edited probe's `expect` replaced (or added after its last key).
pub fn rewrite(text: &str, edits: &[Edit<'_>]) -> Result<String, UpdateError> {
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    let mut plans = Vec::new();
    for e in edits {
        plans.push(plan(&lines, e)?);
    }
    // Bottom to top, so earlier line numbers stay valid.
    plans.sort_by_key(|p| std::cmp::Reverse(p.0));
    for (start, end, new) in plans {
        if start > 0 && start == lines.len() {
            if let Some(last) = lines.last_mut() {
                if !last.ends_with('\n') {
                    last.push('\n');
                }
            }
        }
        lines.splice(start..end, new);
    }
    Ok(lines.concat())
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_filler(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

/// Lines `start..end` to replace with the new `expect` lines.
fn plan(lines: &[String], e: &Edit<'_>) -> Result<(usize, usize, Vec<String>), UpdateError> {
    let err = |line: usize, m: &str| UpdateError { line, message: m.to_string() };
    let l = e
        .name_line
        .checked_sub(1)
        .filter(|&l| l < lines.len())
        .ok_or_else(|| err(e.name_line, "no such line"))?;
    let line = &lines[l];
    // The `name:` key: the text before the value, without `: ` and an item dash.
    let col: usize =
        line.char_indices().nth(e.name_col.saturating_sub(1)).map(|(i, _)| i).unwrap_or(line.len());
    let before = line.get(..col).unwrap_or("");
    let key_part = before.trim_end().strip_suffix(':').ok_or_else(|| {
        err(
            e.name_line,
            "the probe is not written in block style (`- name: ...` on its own line); rewrite it so",
        )
    })?;
    let key_col = key_part.len() - key_part.trim_start_matches([' ', '-']).len();
    if key_part.get(key_col..).map(str::trim) != Some("name") {
        return Err(err(
            e.name_line,
            "the probe is not written in block style; rewrite it as `- name: ...` lines",
        ));
    }
    // The item's first line: where `- ` sits just before column key_col.
    let mut first = l;
    while !lines[first].get(..key_col).unwrap_or("").trim_end().ends_with('-') {
        if first == 0 {
            return Err(err(e.name_line, "cannot find the start of the probe"));
        }
        first -= 1;
    }
    // The item's lines: until a non-filler line indented less than key_col.
    let mut last = first;
    let mut i = first + 1;
    while i < lines.len() {
        let ln = &lines[i];
        if ln.trim().is_empty() {
            i += 1;
            continue;
        }
        if indent_of(ln) < key_col {
            break;
        }
        if !is_filler(ln) {
            last = i;
        }
        i += 1;
    }
    // An existing `expect:` key at key_col.
    let key_at = |ln: &str| -> Option<String> {
        let body = ln.get(key_col..)?;
        let head = ln.get(..key_col)?;
        if !(head.trim().is_empty() || head.trim_end().ends_with('-')) || body.starts_with(' ') {
            return None;
        }
        let (k, _) = body.split_once(':')?;
        Some(k.trim().to_string())
    };
    let pad = " ".repeat(key_col);
    let mut new = vec![format!("{pad}expect:\n")];
    new.extend(render(e.expect, key_col + 2).lines().map(|s| format!("{s}\n")));
    for j in first..=last {
        if key_at(&lines[j]).as_deref() == Some("expect") {
            if lines[j].get(..key_col).is_some_and(|h| h.contains('-')) {
                return Err(err(j + 1, "`expect` is the probe's first key; move `name:` first"));
            }
            // Its value: until the next key at key_col (or the item's end), minus trailing filler.
            let mut end = j;
            for (k, ln) in lines.iter().enumerate().take(last + 1).skip(j + 1) {
                if !is_filler(ln) && indent_of(ln) <= key_col {
                    break;
                }
                if !is_filler(ln) {
                    end = k;
                }
            }
            return Ok((j, end + 1, new));
        }
    }
    Ok((last + 1, last + 1, new))
}

/// `x` as a YAML block mapping, each line indented by `indent` spaces.
pub fn render(x: &Expect, indent: usize) -> String {
    let mut out = String::new();
    fields(&mut out, x, indent, None);
    out
}

fn fields(out: &mut String, x: &Expect, indent: usize, dash: Option<usize>) {
    let start_len = out.len();
    let mut first = true;
    let mut line = |out: &mut String, text: String| {
        let pad = match (dash, first) {
            (Some(d), true) => format!("{}- ", " ".repeat(d)),
            _ => " ".repeat(indent),
        };
        first = false;
        let _ = writeln!(out, "{pad}{text}");
    };
    if let Some(w) = &x.weight {
        line(out, format!("weight: {}", w.value));
    }
    if let Some(k) = x.ending {
        line(out, format!("ending: {}", k.as_str()));
    }
    for (k, v) in [
        ("pod", &x.pod),
        ("socket", &x.socket),
        ("process", &x.process),
        ("dst", &x.dst),
        ("cluster", &x.cluster),
    ] {
        if let Some(v) = v {
            line(out, format!("{k}: {}", scalar(v)));
        }
    }
    if let Some(s) = x.status {
        line(out, format!("status: {s}"));
    }
    for (k, v) in [("flag", &x.flag), ("host", &x.host), ("reason", &x.reason)] {
        if let Some(v) = v {
            line(out, format!("{k}: {}", scalar(v)));
        }
    }
    if let Some(c) = &x.closed_by {
        line(out, format!("closed_by: [{}]", c.iter().map(|s| quoted(s)).collect::<Vec<_>>().join(", ")));
    }
    if let Some(hops) = &x.envoy {
        if hops.is_empty() {
            line(out, "envoy: []".into());
        } else {
            line(out, "envoy:".into());
            for h in hops {
                hop(out, h, indent + 2);
            }
        }
    }
    if let Some(paths) = &x.paths {
        line(out, "paths:".into());
        for p in &paths.value {
            fields(out, p, indent + 4, Some(indent + 2));
        }
    }
    if out.len() == start_len {
        line(out, "{}".into());
    }
}

fn hop(out: &mut String, h: &HopExpect, indent: usize) {
    let mut first = true;
    for (k, v) in [
        ("pod", &h.pod),
        ("listener", &h.listener),
        ("filter_chain", &h.filter_chain),
        ("route_config", &h.route_config),
        ("virtual_host", &h.virtual_host),
        ("route", &h.route),
        ("cluster", &h.cluster),
        ("endpoint", &h.endpoint),
        ("source_address", &h.source_address),
    ] {
        let Some(v) = v else { continue };
        let pad = if first { format!("{}- ", " ".repeat(indent)) } else { " ".repeat(indent + 2) };
        first = false;
        let _ = writeln!(out, "{pad}{k}: {}", scalar(v));
    }
    if first {
        let _ = writeln!(out, "{}- {{}}", " ".repeat(indent));
    }
}

/// A string as a plain YAML scalar when it reads back as the same string, else double-quoted.
pub fn scalar(s: &str) -> String {
    let safe_first =
        s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/'));
    let safe_rest = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '/' | '|' | '@' | '+' | '-'));
    let reserved = matches!(
        s.to_ascii_lowercase().as_str(),
        "null" | "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "~"
    );
    let numeric = s.parse::<f64>().is_ok() || s.chars().all(|c| c.is_ascii_digit() || c == ':' || c == '_');
    if safe_first && safe_rest && !reserved && !numeric && !s.ends_with(':') {
        s.to_string()
    } else {
        quoted(s)
    }
}

fn quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests;
