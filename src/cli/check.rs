//! `meshpath check PATH...`: runs every probe of every scenario file (docs/scenarios.md).
//!
//! Exit codes: 0 every probe passed (or had no expectations); 1 a probe failed; 2 a scenario
//! file could not be read (reported, the others still checked) or a path does not exist.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use miette::{miette, Result};
use serde::Serialize;

use meshpath::render::trace as render;
use meshpath::render::{markup_escape, plural};
use meshpath::scenario::run::{self, Change, ProbeOutcome, Verdict};
use meshpath::scenario::{self, update, Scenario};

pub const SCHEMA: &str = "meshpath.check/v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Scenario files, or directories searched recursively for *.scenario.yaml / *.scenario.yml.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Also write a JUnit XML report (one testsuite per scenario file, one testcase per probe).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Rewrite the expectations of probes that fail or have none from the current behaviour,
    /// printing every change (passing probes are never touched).
    #[arg(long)]
    update: bool,
    #[arg(long, value_enum, default_value = "text")]
    format: CheckFormat,
}

/// One scenario file's result: its outcomes, or why it could not be loaded.
struct FileResult {
    path: PathBuf,
    name: String,
    outcomes: Vec<ProbeOutcome>,
    error: Option<String>,
    /// Probes whose expectations `--update` rewrote.
    updated: Vec<String>,
    description: Option<String>,
}

pub fn run(a: CheckArgs) -> Result<ExitCode> {
    let mut bad = 0usize;
    let mut files = Vec::new();
    for p in &a.paths {
        if p.is_dir() {
            let before = files.len();
            walk(p, &mut files).map_err(|e| miette!("cannot read {}: {e}", p.display()))?;
            if files.len() == before {
                // A CI job pointed at the wrong directory must not pass silently.
                eprintln!("{:?}", miette!("{}: no *.scenario.yaml or *.scenario.yml files", p.display()));
                bad += 1;
            }
        } else if p.exists() {
            files.push(p.clone());
        } else {
            eprintln!("{:?}", miette!("{}: no such file or directory", p.display()));
            bad += 1;
        }
    }
    files.sort_by(|x, y| x.as_os_str().as_encoded_bytes().cmp(y.as_os_str().as_encoded_bytes()));
    files.dedup();
    let mut results = Vec::new();
    let mut out = String::new();
    let mut updated = 0usize;
    for f in &files {
        let sc = match scenario::load(f) {
            Ok(sc) => sc,
            Err(e) => {
                eprintln!("{:?}", e.report());
                bad += 1;
                results.push(FileResult {
                    path: f.clone(),
                    name: f.display().to_string(),
                    outcomes: Vec::new(),
                    error: Some(e.to_string()),
                    updated: Vec::new(),
                    description: None,
                });
                continue;
            }
        };
        let outcomes = run::run(&sc, &meshpath::render::words::ending_reason);
        let mut changes = Vec::new();
        if a.update {
            match apply_update(&sc, &outcomes) {
                Ok(c) => changes = c,
                Err(e) => {
                    eprintln!("{e:?}");
                    bad += 1;
                }
            }
            updated += changes.len();
        }
        if a.format == CheckFormat::Text {
            text_lines(&mut out, f, sc.description.as_deref(), &outcomes, &changes);
        }
        let updated = changes.iter().map(|c| c.probe.clone()).collect();
        results.push(FileResult {
            path: f.clone(),
            name: sc.name.clone(),
            outcomes,
            error: None,
            updated,
            description: sc.description.clone(),
        });
    }
    let count = |v: Verdict| results.iter().flat_map(|r| &r.outcomes).filter(|o| o.verdict == v).count();
    let (passed, failed, none) = (count(Verdict::Pass), count(Verdict::Fail), count(Verdict::NoExpectations));
    let total = passed + failed + none;
    match a.format {
        CheckFormat::Text => {
            let _ = write!(
                out,
                "{}: {passed} passed, {failed} failed, {none} without expectations ({})",
                plural(total, "probe"),
                plural(files.len(), "scenario file")
            );
            if a.update {
                let _ = write!(out, "; {} updated", plural(updated, "expectation"));
            }
            out.push('\n');
            if bad > 0 {
                let what = if bad == 1 { "scenario file or path" } else { "scenario files or paths" };
                let _ = writeln!(out, "{bad} {what} could not be read");
            }
            super::output::print(out)?;
        }
        CheckFormat::Json => super::output::print(json(&results, bad).map_err(super::output::json_error)?)?,
    }
    if let Some(j) = &a.junit {
        std::fs::write(j, junit(&results)).map_err(|e| miette!("cannot write {}: {e}", j.display()))?;
    }
    let failed_after = if a.update {
        // Updated probes now pass; what is left failing is a walk that could not be rewritten.
        results
            .iter()
            .flat_map(|r| &r.outcomes)
            .filter(|o| o.verdict == Verdict::Fail && o.trace.is_none())
            .count()
    } else {
        failed
    };
    Ok(if bad > 0 {
        ExitCode::from(2)
    } else if failed_after > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Scenario files under `dir`, recursively.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    entries.sort();
    for p in entries {
        // Symbolic links to directories are not followed (no cycles); linked files are read.
        if std::fs::symlink_metadata(&p)?.is_dir() {
            walk(&p, out)?;
        } else if scenario::is_scenario_file(&p) {
            out.push(p);
        }
    }
    Ok(())
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

fn apply_update(sc: &Scenario, outcomes: &[ProbeOutcome]) -> Result<Vec<Change>> {
    let (text, changes) =
        run::update(sc, outcomes).map_err(|e| miette!("{}: cannot update: {e}", sc.path.display()))?;
    if !changes.is_empty() {
        std::fs::write(&sc.path, &text).map_err(|e| miette!("cannot write {}: {e}", sc.path.display()))?;
    }
    Ok(changes)
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
    paths: Option<render::Paths<'a>>,
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

fn json(results: &[FileResult], bad: usize) -> serde_json::Result<String> {
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
                        updated: r.updated.contains(&o.name),
                        paths: (o.verdict == Verdict::Fail)
                            .then_some(())
                            .and(o.trace.as_ref())
                            .map(render::Paths),
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

/// JUnit XML: deterministic (no timestamps, times fixed at 0).
fn junit(results: &[FileResult]) -> String {
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
