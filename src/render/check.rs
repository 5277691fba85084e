//! `meshpath check` output: PASS/FAIL/NONE lines with failures explained, the versioned JSON
//! document (`meshpath.check/v1`, docs/scenarios.md) and JUnit XML.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::render::trace as render;
use crate::render::{markup_escape, plural};
use crate::scenario::run::{Change, CheckReport, FileReport, ProbeOutcome, Verdict};
use crate::scenario::update;

/// The JSON schema identifier of `check --format json`.
pub const SCHEMA: &str = "meshpath.check/v1";

/// One line per probe of every readable file (failures with what differed and the trace),
/// then the summary.
pub fn text(r: &CheckReport) -> String {
    let mut out = String::new();
    for f in r.files.iter().filter(|f| f.error.is_none()) {
        text_lines(&mut out, &f.path, f.description.as_deref(), &f.outcomes, &f.changes);
    }
    let (passed, failed, none) =
        (r.count(Verdict::Pass), r.count(Verdict::Fail), r.count(Verdict::NoExpectations));
    let total = passed + failed + none;
    let _ = write!(
        out,
        "{}: {passed} passed, {failed} failed, {none} without expectations ({})",
        plural(total, "probe"),
        plural(r.files.len(), "scenario file")
    );
    if r.update {
        let updated: usize = r.files.iter().map(|f| f.changes.len()).sum();
        let _ = write!(out, "; {} updated", plural(updated, "expectation"));
    }
    out.push('\n');
    if r.unreadable > 0 {
        let what = if r.unreadable == 1 { "scenario file or path" } else { "scenario files or paths" };
        let _ = writeln!(out, "{} {what} could not be read", r.unreadable);
    }
    out
}

fn text_lines(
    out: &mut String,
    file: &Path,
    description: Option<&str>,
    outcomes: &[ProbeOutcome],
    changes: &[Change],
) {
    let f = file.display();
    for o in outcomes {
        if let Some(c) = changes.iter().find(|c| c.probe == o.name) {
            change_lines(out, file, c);
            continue;
        }
        match o.verdict {
            Verdict::Pass => {
                let _ = writeln!(out, "PASS {f}: {}", o.name);
            }
            Verdict::NoExpectations => {
                let _ = writeln!(out, "NONE {f}: {} (no expectations)", o.name);
            }
            Verdict::Fail => {
                let _ = writeln!(out, "FAIL {f}: {}", o.name);
                if let Some(d) = description.map(str::trim).filter(|d| !d.is_empty()) {
                    let _ = writeln!(out, "    scenario:");
                    for line in d.lines() {
                        let _ = writeln!(out, "      {line}");
                    }
                }
                out.push_str(&failure_detail(o, "    "));
            }
        }
    }
}

fn change_lines(out: &mut String, file: &Path, c: &Change) {
    let _ = writeln!(
        out,
        "UPDATE {}: {}: expectations rewritten from the current behaviour",
        file.display(),
        c.probe
    );
    match &c.old {
        None => {
            let _ = writeln!(out, "    old: (none)");
        }
        Some(old) => {
            let _ = writeln!(out, "    old:");
            out.push_str(&update::render(old, 6));
        }
    }
    let _ = writeln!(out, "    new:");
    out.push_str(&update::render(&c.new, 6));
}

/// The mismatches, then the trace, each line indented.
fn failure_detail(o: &ProbeOutcome, pad: &str) -> String {
    let mut s = String::new();
    for m in &o.mismatches {
        let _ = writeln!(s, "{pad}{m}");
    }
    if let Some(t) = &o.trace {
        let _ = writeln!(s, "{pad}trace:");
        for line in render::text(t).lines() {
            if line.is_empty() {
                s.push('\n');
            } else {
                let _ = writeln!(s, "{pad}  {line}");
            }
        }
    }
    s
}

#[derive(Serialize)]
struct JsonDoc<'a> {
    schema: &'static str,
    files: Vec<JsonFile<'a>>,
    summary: JsonSummary,
}

#[derive(Serialize)]
struct JsonFile<'a> {
    file: String,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    probes: Vec<JsonProbe<'a>>,
}

#[derive(Serialize)]
struct JsonProbe<'a> {
    name: &'a str,
    status: &'static str,
    mismatches: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    /// `--update` rewrote this probe's expectations.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    updated: bool,
    /// The trace's paths, for failures only (as in `meshpath.trace/v2`).
    #[serde(skip_serializing_if = "Option::is_none")]
    paths: Option<super::trace::Paths<'a>>,
}

#[derive(Serialize)]
struct JsonSummary {
    probes: usize,
    passed: usize,
    failed: usize,
    without_expectations: usize,
    files: usize,
    unreadable: usize,
}

/// The `meshpath.check/v1` document.
pub fn json(r: &CheckReport) -> Result<String, serde_json::Error> {
    let (results, bad) = (&r.files, r.unreadable);
    let mut s = JsonSummary {
        probes: 0,
        passed: 0,
        failed: 0,
        without_expectations: 0,
        files: results.len(),
        unreadable: bad,
    };
    let files = results
        .iter()
        .map(|r| JsonFile {
            file: r.path.display().to_string(),
            name: &r.name,
            description: r.description.as_deref(),
            error: r.error.as_deref(),
            probes: r
                .outcomes
                .iter()
                .map(|o| {
                    s.probes += 1;
                    match o.verdict {
                        Verdict::Pass => s.passed += 1,
                        Verdict::Fail => s.failed += 1,
                        Verdict::NoExpectations => s.without_expectations += 1,
                    }
                    JsonProbe {
                        name: &o.name,
                        status: o.verdict.as_str(),
                        mismatches: &o.mismatches,
                        error: o.error.as_deref(),
                        updated: r.changes.iter().any(|c| c.probe == o.name),
                        paths: (o.verdict == Verdict::Fail)
                            .then_some(())
                            .and(o.trace.as_ref())
                            .map(super::trace::Paths),
                    }
                })
                .collect(),
        })
        .collect();
    let doc = JsonDoc { schema: SCHEMA, files, summary: s };
    let mut out = serde_json::to_string_pretty(&doc)?;
    out.push('\n');
    Ok(out)
}

/// JUnit XML: one testsuite per scenario file, one testcase per probe; deterministic (no
/// timestamps, times fixed at 0).
pub fn junit(report: &CheckReport) -> String {
    let results: &[FileReport] = &report.files;
    let mut body = String::new();
    let (mut tests, mut failures, mut errors, mut skipped) = (0, 0, 0, 0);
    for r in results {
        let file = markup_escape(&r.path.display().to_string());
        let n = r.outcomes.len();
        let f = r.outcomes.iter().filter(|o| o.verdict == Verdict::Fail).count();
        let sk = r.outcomes.iter().filter(|o| o.verdict == Verdict::NoExpectations).count();
        let e = usize::from(r.error.is_some());
        tests += n + e;
        failures += f;
        errors += e;
        skipped += sk;
        let _ = writeln!(
            body,
            "  <testsuite name=\"{file}\" tests=\"{}\" failures=\"{f}\" errors=\"{e}\" skipped=\"{sk}\" time=\"0\">",
            n + e
        );
        if let Some(err) = &r.error {
            let _ = writeln!(
                body,
                "    <testcase classname=\"{file}\" name=\"(scenario file)\" time=\"0\">\n      <error message=\"{}\">{}</error>\n    </testcase>",
                markup_escape(err.lines().next().unwrap_or("")),
                markup_escape(err)
            );
        }
        for o in &r.outcomes {
            let _ = write!(
                body,
                "    <testcase classname=\"{file}\" name=\"{}\" time=\"0\"",
                markup_escape(&o.name)
            );
            match o.verdict {
                Verdict::Pass => body.push_str("/>\n"),
                Verdict::NoExpectations => {
                    body.push_str(">\n      <skipped message=\"no expectations\"/>\n    </testcase>\n")
                }
                Verdict::Fail => {
                    let _ = writeln!(
                        body,
                        ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                        markup_escape(&o.mismatches.join("; ")),
                        markup_escape(&failure_detail(o, ""))
                    );
                }
            }
        }
        body.push_str("  </testsuite>\n");
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"meshpath check\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"0\">\n{body}</testsuites>\n"
    )
}
