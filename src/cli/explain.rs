//! `meshpath explain`: the same inputs as `trace`; a report that says why the connection goes
//! the way it does, with re-simulated counterfactuals.

use std::process::ExitCode;

use clap::Args;
use miette::Result;

use meshpath::explain;
use meshpath::render::explain as render;

use super::args::{after_help, Format, Formats, OutputArgs, OUTPUT};
use super::trace::ProbeArgs;
use super::{diagnose, output};

const EXPLAIN_FORMATS: Formats = Formats(&[Format::Text, Format::Markdown, Format::Html, Format::Json]);

#[derive(Debug, Args)]
#[command(after_help = after_help(
    "the report was written",
    None,
    "meshpath explain --scenario scenarios/3-app-on-pod-ip/pod-ip-endpoint.scenario.yaml \\\n  \
     --probe \"reviews calls productpage, Envoy loops into 15001\"",
))]
#[command(
    override_usage = "meshpath explain --iptables FILE [--ip6tables FILE] --pod-ip IP [--envoy FILE] [OPTIONS] --dst DST\n       meshpath explain --scenario FILE [--pod NAME] [OPTIONS] --dst DST\n       meshpath explain --scenario FILE --probe NAME [--format FORMAT] [--output FILE]"
)]
pub struct ExplainArgs {
    #[command(flatten)]
    probe: ProbeArgs,
    /// text, markdown, html (one self-contained page with the paths drawn as SVG), or json
    /// (meshpath.explain/v1, docs/explain.md).
    #[arg(long, value_name = "FORMAT", value_parser = EXPLAIN_FORMATS, default_value = "text", help_heading = OUTPUT)]
    format: Format,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn run(a: ExplainArgs) -> Result<ExitCode> {
    let (mesh, start, probe) = a.probe.resolve()?;
    let title = probe.unwrap_or_else(|| render::title(&mesh, &start));
    let mut r = explain::explain(&mesh, &start).map_err(|e| diagnose::engine(e, &mesh))?;
    r.title = title;
    let out = match a.format {
        Format::Markdown => render::markdown(&r),
        Format::Html => render::html(&r),
        Format::Json => render::json(&r).map_err(output::json_error)?,
        _ => render::text(&r),
    };
    output::emit(&a.output, &out)?;
    Ok(ExitCode::SUCCESS)
}
