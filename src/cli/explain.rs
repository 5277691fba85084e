//! `meshpath explain`: the same inputs as `trace`; a report that says why the connection goes
//! the way it does, with re-simulated counterfactuals.

use std::path::{Path as FsPath, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use miette::{miette, IntoDiagnostic, Result, WrapErr};

use meshpath::engine::{Mesh, Start};
use meshpath::explain;
use meshpath::render::explain as render;

use super::trace::ProbeArgs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExplainFormat {
    Text,
    Markdown,
    Html,
    /// The `meshpath.explain/v1` document (docs/explain.md).
    Json,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    probe: ProbeArgs,
    #[arg(long, value_enum, default_value = "text")]
    format: ExplainFormat,
    /// Write the report to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub fn run(a: ExplainArgs) -> Result<ExitCode> {
    let (mesh, start, probe) = a.probe.resolve()?;
    let title = probe.unwrap_or_else(|| render::title(&mesh, &start));
    report(&mesh, &start, &title, a.format, a.output.as_deref())
}

/// Explains `start` in `mesh` under `title` and writes the report (standard output when
/// `output` is `None`). A scenario probe comes in here with its name as the title.
fn report(
    mesh: &Mesh,
    start: &Start,
    title: &str,
    format: ExplainFormat,
    output: Option<&FsPath>,
) -> Result<ExitCode> {
    let mut r = explain::explain(mesh, start).map_err(|e| miette!("{e}"))?;
    r.title = title.to_string();
    let out = match format {
        ExplainFormat::Text => render::text(&r),
        ExplainFormat::Markdown => render::markdown(&r),
        ExplainFormat::Html => render::html(&r),
        ExplainFormat::Json => render::json(&r).into_diagnostic()?,
    };
    match output {
        Some(path) => std::fs::write(path, out)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot write {}", path.display()))?,
        None => super::output::print(out)?,
    }
    Ok(ExitCode::SUCCESS)
}
