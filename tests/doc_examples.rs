//! Every example in the repository's Markdown (README.md, docs/, scenarios/, pcaps/, ...) runs
//! as written from a fresh clone and prints what it shows.
//!
//! The convention for a runnable example: a fenced block (any info string but `json`, `yaml`,
//! `rust`) whose first line starts with `$ meshpath`:
//!
//! * a line starting with `$ ` is a command; a trailing `\` continues it on the next line. The
//!   words are split as a POSIX shell would for plain words and '…' / "…" quotes; pipes,
//!   redirections and substitutions are not allowed. The first word is `meshpath`, run as the
//!   binary of this build from the repository root, with `NO_COLOR=1`;
//! * the lines after it, up to the next `$ ` line or the end of the block, are its output:
//!   standard output (then standard error when the exit status is not 0). A line that is just
//!   `...` (indentation allowed) stands for any number of lines; `...` inside a line stands for
//!   any text on that line. A last line `[exit N]` says the exit status is N (default 0), and
//!   an example that exits 0 must print nothing on standard error;
//! * every relative file name on a `meshpath` line of any block must exist in the repository.
//!
//! `MESHPATH_UPDATE_DOCS=1 cargo test --test doc_examples` rewrites the shown output of every
//! example that no longer matches, in place: the lines around each `...` are refreshed from the
//! real output and the elisions are kept, so a wording change is one command and a review of
//! the diff.

use std::path::{Path, PathBuf};
use std::process::Command;

/// One runnable example: where it is, what it runs, what it shows.
struct Example {
    file: PathBuf,
    /// 0-based line of the `$ ` line in the file.
    line: usize,
    words: Vec<String>,
    /// 0-based line range of the shown output in the file (the `[exit N]` line included).
    shown_lines: std::ops::Range<usize>,
    shown: Vec<String>,
    exit: i32,
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every Markdown file of the repository but the build directory, sorted.
fn markdown_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                if !name.starts_with('.') && name != "target" {
                    walk(&p, out);
                }
            } else if name.ends_with(".md") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(root(), &mut out);
    out.sort();
    out
}

/// A fenced block: its info string, the 0-based line of its first body line, its body lines
/// with the fence's indentation removed.
struct Block {
    info: String,
    first: usize,
    body: Vec<String>,
}

fn blocks(text: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let indent = line.len() - line.trim_start().len();
        let Some(info) = line.trim_start().strip_prefix("```") else {
            i += 1;
            continue;
        };
        let mut body = Vec::new();
        let mut j = i + 1;
        while j < lines.len() && !lines[j].trim_start().starts_with("```") {
            let l = lines[j];
            let cut = l.len() - l.trim_start().len();
            body.push(l[cut.min(indent)..].to_string());
            j += 1;
        }
        out.push(Block { info: info.trim().to_string(), first: i + 1, body });
        i = j + 1;
    }
    out
}

/// Splits a command line into words: plain words, '…' and "…" (with \" \\ \$ escapes), and
/// backslash escapes; shell syntax that would need a shell is an error.
fn words(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err("unterminated '".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') if matches!(chars.peek(), Some('"' | '\\' | '$')) => {
                            cur.extend(chars.next());
                        }
                        Some('$' | '`') => return Err("substitution inside \"...\"".into()),
                        Some(c) => cur.push(c),
                        None => return Err("unterminated \"".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.extend(chars.next());
            }
            '|' | '>' | '<' | ';' | '&' | '$' | '`' | '(' | ')' => {
                return Err(format!("`{c}` needs a shell; examples run meshpath alone"));
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

fn is_exit_line(line: &str) -> Option<i32> {
    line.trim().strip_prefix("[exit ")?.strip_suffix(']')?.parse().ok()
}

fn examples(file: &Path, text: &str) -> Vec<Example> {
    let mut out = Vec::new();
    for b in blocks(text) {
        if matches!(b.info.as_str(), "json" | "yaml" | "rust")
            || !b.body.first().is_some_and(|l| l.starts_with("$ meshpath"))
        {
            continue;
        }
        let mut i = 0;
        while i < b.body.len() {
            let start = i;
            let mut cmd = b.body[i].trim_start_matches("$ ").to_string();
            while cmd.ends_with('\\') && i + 1 < b.body.len() {
                cmd.pop();
                i += 1;
                cmd.push(' ');
                cmd.push_str(b.body[i].trim());
            }
            i += 1;
            let out_start = i;
            while i < b.body.len() && !b.body[i].starts_with("$ ") {
                i += 1;
            }
            let mut shown: Vec<String> =
                b.body[out_start..i].iter().map(|l| l.trim_end().to_string()).collect();
            while shown.last().is_some_and(|l| l.is_empty()) {
                shown.pop();
            }
            let exit = shown.last().and_then(|l| is_exit_line(l)).unwrap_or(0);
            if shown.last().is_some_and(|l| is_exit_line(l).is_some()) {
                shown.pop();
            }
            let place = format!("{}:{}", file.display(), b.first + start + 1);
            let words = words(&cmd).unwrap_or_else(|e| panic!("{place}: {e}"));
            assert_eq!(words.first().map(String::as_str), Some("meshpath"), "{place}");
            out.push(Example {
                file: file.to_path_buf(),
                line: b.first + start,
                words,
                shown_lines: (b.first + out_start)..(b.first + i),
                shown,
                exit,
            });
        }
    }
    out
}

/// Whether actual line `a` is what shown line `s` says (`...` inside `s` stands for any text).
fn line_matches(s: &str, a: &str) -> bool {
    let a = a.trim_end();
    if !s.contains("...") {
        return s == a;
    }
    let parts: Vec<&str> = s.split("...").collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !a.starts_with(first) || a.len() < first.len() + last.len() || !a.ends_with(last) {
        return false;
    }
    let mut rest = &a[first.len()..a.len() - last.len()];
    for p in &parts[1..parts.len() - 1] {
        match rest.find(p) {
            Some(at) => rest = &rest[at + p.len()..],
            None => return false,
        }
    }
    true
}

fn is_elision(s: &str) -> bool {
    s.trim() == "..."
}

/// Whether the shown lines match the actual lines, `...` lines standing for any number.
fn output_matches(shown: &[String], actual: &[String]) -> bool {
    // ok[i][j]: shown[i..] matches actual[j..].
    let (n, m) = (shown.len(), actual.len());
    let mut ok = vec![vec![false; m + 1]; n + 1];
    ok[n][m] = true;
    for i in (0..n).rev() {
        for j in (0..=m).rev() {
            ok[i][j] = if is_elision(&shown[i]) {
                ok[i + 1][j] || (j < m && ok[i][j + 1])
            } else {
                j < m && line_matches(&shown[i], &actual[j]) && ok[i + 1][j + 1]
            };
        }
    }
    ok[0][0]
}

/// The shown output refreshed from `actual`, keeping each `...` line: the part before the first
/// one is the start of the output, the part after the last one its end, and each part between
/// goes where most of its lines match. A shown line with `...` inside is kept where it still
/// matches.
fn refreshed(shown: &[String], actual: &[String]) -> Vec<String> {
    let parts: Vec<&[String]> = shown.split(|l| is_elision(l)).collect();
    let elisions: Vec<&String> = shown.iter().filter(|l| is_elision(l)).collect();
    let fixed: usize = parts.iter().map(|p| p.len()).sum();
    if elisions.is_empty() || fixed > actual.len() {
        return actual.to_vec();
    }
    let take = |part: &[String], at: usize| -> Vec<String> {
        part.iter()
            .zip(&actual[at..at + part.len()])
            .map(|(s, a)| if line_matches(s, a) { s.clone() } else { a.clone() })
            .collect()
    };
    let last = parts.len() - 1;
    let mut out = take(parts[0], 0);
    let mut from = parts[0].len();
    let end = actual.len() - parts[last].len();
    for (k, part) in parts.iter().enumerate().skip(1) {
        out.push(elisions[k - 1].clone());
        if k == last {
            out.extend(take(part, end));
            break;
        }
        let room: usize = parts[k + 1..].iter().map(|p| p.len()).sum();
        let limit = actual.len() - room - part.len();
        // Lines that match count first, then how much of each line is unchanged at its start.
        let score = |at: usize| {
            let pairs = part.iter().zip(&actual[at..]);
            let same = pairs.clone().filter(|(s, a)| line_matches(s, a)).count();
            let prefix: usize =
                pairs.map(|(s, a)| s.chars().zip(a.chars()).take_while(|(x, y)| x == y).count()).sum();
            (same, prefix)
        };
        let at =
            (from..=limit.max(from)).max_by_key(|&at| (score(at), std::cmp::Reverse(at))).unwrap_or(from);
        out.extend(take(part, at));
        from = at + part.len();
    }
    out
}

struct Run {
    exit: i32,
    lines: Vec<String>,
    stderr: String,
}

fn run(ex: &Example) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_meshpath"))
        .args(&ex.words[1..])
        .current_dir(root())
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .output()
        .unwrap_or_else(|e| panic!("{}:{}: cannot run meshpath: {e}", ex.file.display(), ex.line + 1));
    let exit = out.status.code().unwrap_or(-1);
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if exit != 0 {
        text.push_str(&stderr);
    }
    let mut lines: Vec<String> = text.lines().map(|l| l.trim_end().to_string()).collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    Run { exit, lines, stderr }
}

/// Rewrites the shown output of `ex` in `text` (a file's lines) as `new` with exit `exit`.
fn rewrite(lines: &mut Vec<String>, ex: &Example, new: &[String], exit: i32) {
    let indent =
        lines.get(ex.line).map(|l| l[..l.len() - l.trim_start().len()].to_string()).unwrap_or_default();
    let mut block: Vec<String> =
        new.iter().map(|l| if l.is_empty() { String::new() } else { format!("{indent}{l}") }).collect();
    if exit != 0 {
        block.push(format!("{indent}[exit {exit}]"));
    }
    // Keep a blank line that separated this example's output from the next command.
    let old = &lines[ex.shown_lines.clone()];
    let trailing_blank = old.iter().rev().take_while(|l| l.trim().is_empty()).count();
    block.extend(std::iter::repeat_n(String::new(), trailing_blank));
    lines.splice(ex.shown_lines.clone(), block);
}

#[test]
fn every_example_prints_what_it_shows() {
    let update = std::env::var("MESHPATH_UPDATE_DOCS").is_ok_and(|v| v == "1");
    let mut problems = Vec::new();
    let mut count = 0;
    for file in markdown_files() {
        let text = std::fs::read_to_string(&file).expect("readable");
        let exs = examples(file.strip_prefix(root()).unwrap_or(&file), &text);
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        let mut changed = false;
        // From the end, so that rewriting one example keeps the line numbers of the others.
        for ex in exs.iter().rev() {
            count += 1;
            let got = run(ex);
            let place = format!("{}:{}: $ {}", ex.file.display(), ex.line + 1, ex.words.join(" "));
            let same = got.exit == ex.exit && output_matches(&ex.shown, &got.lines);
            if got.exit == 0 && !got.stderr.is_empty() {
                problems.push(format!("{place}\n  prints on standard error:\n{}", got.stderr));
            }
            if same {
                continue;
            }
            if update {
                rewrite(&mut lines, ex, &refreshed(&ex.shown, &got.lines), got.exit);
                changed = true;
                println!("updated {place}");
                continue;
            }
            problems.push(format!(
                "{place}\n  shows (exit {}):\n{}\n  prints (exit {}):\n{}",
                ex.exit,
                ex.shown.join("\n"),
                got.exit,
                got.lines.join("\n")
            ));
        }
        if changed {
            let mut new = lines.join("\n");
            if text.ends_with('\n') {
                new.push('\n');
            }
            std::fs::write(root().join(&file), new).expect("writable");
        }
    }
    assert!(count >= 10, "found only {count} examples: is the convention still `$ meshpath`?");
    assert!(
        problems.is_empty(),
        "{} of {count} examples differ (MESHPATH_UPDATE_DOCS=1 refreshes the shown output):\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

/// A word of a `meshpath` line that names a file of the repository (relative, with a `/` or a
/// file extension), as opposed to a flag, an address, a URL path or a placeholder.
fn file_word(w: &str) -> Option<&str> {
    let w = w.rsplit_once('=').filter(|(k, _)| k.starts_with("--")).map_or(w, |(_, v)| v);
    let plain = !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c));
    let extension = [".yaml", ".yml", ".json", ".pcap", ".pcapng", ".iptables-save", ".txt", ".log", ".html"]
        .iter()
        .any(|e| w.ends_with(e));
    let placeholder = w.chars().any(|c| c.is_ascii_uppercase()) && !w.contains('/');
    let address = w.parse::<ipnet::IpNet>().is_ok() || w.parse::<std::net::IpAddr>().is_ok();
    (plain
        && !w.starts_with('/')
        && !w.starts_with('-')
        && (w.contains('/') || extension)
        && !placeholder
        && !address
        && !w.starts_with("target/"))
    .then_some(w)
}

#[test]
fn every_file_an_example_names_is_in_the_repository() {
    let mut missing = Vec::new();
    for file in markdown_files() {
        let text = std::fs::read_to_string(&file).expect("readable");
        for b in blocks(&text) {
            if matches!(b.info.as_str(), "json" | "yaml" | "rust") {
                continue;
            }
            for (k, line) in b.body.iter().enumerate() {
                let l = line.trim_start().trim_start_matches("$ ");
                let runs_meshpath = l.starts_with("meshpath ") || l.contains("target/release/meshpath ");
                let continued = k > 0 && b.body[k - 1].trim_end().ends_with('\\');
                if !(runs_meshpath || continued && b.body[..k].iter().any(|p| p.contains("meshpath "))) {
                    continue;
                }
                for w in l.split_whitespace().filter_map(file_word) {
                    if !root().join(w).exists() {
                        let rel = file.strip_prefix(root()).unwrap_or(&file);
                        missing.push(format!("{}:{}: {w}", rel.display(), b.first + k + 1));
                    }
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "examples name files that are not in the repository:\n{}",
        missing.join("\n")
    );
}

#[cfg(test)]
mod convention {
    use super::*;

    fn v(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn elisions_match_lines_and_text() {
        let actual = v(&["a", "b 1 c", "d", "e", "f"]);
        assert!(output_matches(&v(&["a", "...", "f"]), &actual));
        assert!(output_matches(&v(&["a", "b ... c", "...", "f"]), &actual));
        assert!(output_matches(&v(&["...", "a", "b 1 c", "d", "e", "f", "..."]), &actual));
        assert!(!output_matches(&v(&["a", "f"]), &actual));
        assert!(!output_matches(&v(&["a", "...", "x"]), &actual));
        // The text around `...` is literal, spaces included.
        assert!(line_matches("b ... c", "b 1 2 c") && line_matches("b ... c", "b  c"));
        assert!(!line_matches("b ... c", "b c") && !line_matches("b ... c", "a 1 c"));
    }

    #[test]
    fn refreshing_keeps_the_elisions() {
        let actual = v(&["head", "x", "y", "middle", "z", "tail 2"]);
        let shown = v(&["head", "  ...", "middle!", "...", "tail 1"]);
        assert_eq!(refreshed(&shown, &actual), v(&["head", "  ...", "middle", "...", "tail 2"]));
        assert_eq!(refreshed(&v(&["old"]), &actual), actual);
    }

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(
            words(r#"meshpath a 'b c' "d \"e\"" f\ g"#).unwrap(),
            v(&["meshpath", "a", "b c", "d \"e\"", "f g"])
        );
        assert!(words("meshpath a | head").is_err());
        assert!(words("meshpath a > x").is_err());
    }
}
