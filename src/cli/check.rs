//! `meshpath check PATH...`: runs every probe of every scenario file (docs/scenarios.md).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use miette::{miette, Result};

use meshpath::diagnostic::FileDiagnostic;
use meshpath::render::check as render;
use meshpath::scenario::run::{self, Change, CheckReport, FileReport, ProbeOutcome};
use meshpath::scenario::{self, Scenario};

use super::args::{after_help, Format, Formats, OutputArgs, OUTPUT};
use super::output;

const CHECK_FORMATS: Formats = Formats(&[Format::Text, Format::Json]);

#[derive(Debug, Args)]
#[command(after_help = after_help(
    "every probe passed (or had no expectations)",
    Some("a probe failed"),
    "meshpath check scenarios/",
))]
pub struct CheckArgs {
    /// Scenario files, or directories searched recursively for *.scenario.yaml / *.scenario.yml.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Also write a JUnit XML report (one testsuite per scenario file, one testcase per probe).
    #[arg(long, value_name = "FILE", help_heading = OUTPUT)]
    junit: Option<PathBuf>,
    /// Rewrite the expectations of probes that fail or have none from the current behaviour,
    /// printing every change (passing probes are never touched).
    #[arg(long)]
    update: bool,
    /// text (PASS, FAIL or NONE per probe, then a summary) or json (meshpath.check/v1,
    /// docs/scenarios.md).
    #[arg(long, value_name = "FORMAT", value_parser = CHECK_FORMATS, default_value = "text", help_heading = OUTPUT)]
    format: Format,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn run(a: CheckArgs) -> Result<ExitCode> {
    let mut report = CheckReport { update: a.update, ..CheckReport::default() };
    let mut files = Vec::new();
    for p in &a.paths {
        if p.is_dir() {
            let before = files.len();
            walk(p, &mut files).map_err(|e| miette!("cannot read {}: {e}", p.display()))?;
            if files.len() == before {
                // A CI job pointed at the wrong directory must not pass silently.
                eprintln!("{:?}", miette!("{}: no *.scenario.yaml or *.scenario.yml files", p.display()));
                report.unreadable += 1;
            }
        } else if p.exists() {
            files.push(p.clone());
        } else {
            eprintln!("{:?}", miette!("{}: no such file or directory", p.display()));
            report.unreadable += 1;
        }
    }
    files.sort_by(|x, y| x.as_os_str().as_encoded_bytes().cmp(y.as_os_str().as_encoded_bytes()));
    files.dedup();
    for f in &files {
        let sc = match scenario::load(f) {
            Ok(sc) => sc,
            Err(e) => {
                eprintln!("{:?}", e.report());
                report.unreadable += 1;
                report.files.push(FileReport {
                    path: f.clone(),
                    name: f.display().to_string(),
                    description: None,
                    outcomes: Vec::new(),
                    error: Some(e.to_string()),
                    changes: Vec::new(),
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
                    report.unreadable += 1;
                }
            }
        }
        report.files.push(FileReport {
            path: f.clone(),
            name: sc.name.clone(),
            description: sc.description.clone(),
            outcomes,
            error: None,
            changes,
        });
    }
    let out = match a.format {
        Format::Json => render::json(&report).map_err(output::json_error)?,
        _ => render::text(&report),
    };
    output::emit(&a.output, &out)?;
    if let Some(j) = &a.junit {
        std::fs::write(j, render::junit(&report))
            .map_err(|e| miette!("cannot write {}: {e}", j.display()))?;
    }
    Ok(if report.unreadable > 0 {
        ExitCode::from(2)
    } else if report.failing() > 0 {
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

/// Rewrites the file's failing expectations; a problem is located in the scenario file.
fn apply_update(sc: &Scenario, outcomes: &[ProbeOutcome]) -> Result<Vec<Change>> {
    let (text, changes) = run::update(sc, outcomes).map_err(|e| {
        let file = sc.path.display().to_string();
        miette::Report::new(FileDiagnostic::at_line(
            &file,
            &sc.text,
            e.line,
            format!("cannot update: {}", e.message),
        ))
    })?;
    if !changes.is_empty() {
        std::fs::write(&sc.path, &text).map_err(|e| miette!("cannot write {}: {e}", sc.path.display()))?;
    }
    Ok(changes)
}
