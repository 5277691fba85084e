//! `meshpath replay`: every flow of a capture walked through a pod (docs/replay.md).

use std::io::BufReader;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use miette::{miette, IntoDiagnostic, Result, WrapErr};

use meshpath::capture::{stitch_redirects, Capture, FlowTable};
use meshpath::engine::{Destination, Mesh, Start};
use meshpath::render::replay as render;
use meshpath::replay::{replay_keeping, Replay, Row};

use super::args::{after_help, Format, Formats, MeshArgs, OutputArgs, OUTPUT};
use super::resolve::{self, PodOptions};
use super::{diagnose, output};

const REPLAY_FORMATS: Formats = Formats(&[
    Format::Text,
    Format::Json,
    Format::Csv,
    Format::Dot,
    Format::Mermaid,
    Format::Markdown,
    Format::Html,
]);

#[derive(Debug, Args)]
#[command(after_help = after_help(
    "the flows were walked and reported",
    None,
    "meshpath replay pcaps/outbound-http.pcap --pod productpage \\\n  \
     --iptables scenarios/istio-1.25-redirect.v4.iptables-save \\\n  \
     --envoy tests/fixtures/mesh/productpage.istio-1.25.config_dump.json \\\n  \
     --pod-ip 10.244.0.5 --listen tcp:0.0.0.0:9080",
))]
#[command(
    override_usage = "meshpath replay CAPTURE --iptables FILE [--ip6tables FILE] --pod-ip IP [--envoy FILE] [OPTIONS]\n       meshpath replay CAPTURE --scenario FILE [--pod NAME] [OPTIONS]"
)]
pub struct ReplayArgs {
    /// The capture (pcap or pcapng; the format is read from its magic number).
    #[arg(value_name = "CAPTURE")]
    capture: PathBuf,
    #[command(flatten)]
    mesh: MeshArgs,
    /// text (a table of flows, a summary, the faults), json (meshpath.replay/v1) or csv. With
    /// --flow N: text, json (the flow and its paths), csv, dot or mermaid; with --flow N
    /// --explain: text, markdown or html.
    #[arg(long, value_name = "FORMAT", value_parser = REPLAY_FORMATS, default_value = "text", help_heading = OUTPUT)]
    format: Format,
    /// Report flow N (its number in the table) instead of the table: its full trace.
    #[arg(long, value_name = "N", help_heading = OUTPUT)]
    flow: Option<usize>,
    /// With --flow N: `meshpath explain`'s report for the flow instead of its trace.
    #[arg(long, requires = "flow", help_heading = OUTPUT)]
    explain: bool,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn run(a: ReplayArgs) -> Result<ExitCode> {
    let allowed: &[Format] = match (a.flow, a.explain) {
        (None, _) => &[Format::Text, Format::Json, Format::Csv],
        (Some(_), false) => &[Format::Text, Format::Json, Format::Csv, Format::Dot, Format::Mermaid],
        (Some(_), true) => &[Format::Text, Format::Markdown, Format::Html],
    };
    if !allowed.contains(&a.format) {
        let names: Vec<&str> = allowed.iter().map(|f| f.name()).collect();
        let what = match (a.flow, a.explain) {
            (None, _) => "the table of flows",
            (Some(_), false) => "--flow N",
            (Some(_), true) => "--flow N --explain",
        };
        return Err(miette!("--format {}: {what} is written as {}", a.format.name(), names.join(", ")));
    }
    let (mut mesh, pod) = resolve::mesh(&a.mesh, &PodOptions::default())?;
    let local: Vec<std::net::IpAddr> = mesh
        .pods
        .get(pod)
        .and_then(|p| p.netns.interface("eth0"))
        .map(|i| i.addrs.iter().map(|a| a.addr()).collect())
        .unwrap_or_default();
    let redirect_ports = mesh.pods.get(pod).map(|p| p.istio).unwrap_or_default().redirect_ports();
    meshpath::util::read::check_regular(&a.capture)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot read {}", a.capture.display()))?;
    let file = std::fs::File::open(&a.capture)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot read {}", a.capture.display()))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut cap = Capture::open(BufReader::with_capacity(1 << 20, file))
        .map_err(|e| miette!("{}: {e}", a.capture.display()))?;
    let bar = progress(len);
    let mut table = FlowTable::new();
    let mut done = false;
    while !done {
        // Sets the bar's position every few thousand packets: one update per packet would
        // cost more than decoding it (docs/replay.md, "Progress").
        for _ in 0..PROGRESS_EVERY {
            let Some(p) = cap.next_packet() else {
                done = true;
                break;
            };
            table.add(&p);
        }
        bar.set_position(cap.bytes_read());
    }
    bar.set_message(format!("walking {} flows", table.flows().len()));
    // The flows only from here on: the lookup index is dropped.
    let mut flows = table.into_flows();
    stitch_redirects(&mut flows, &local, &redirect_ports);
    let result = replay_keeping(&mut mesh, pod, &flows, a.flow);
    bar.finish_and_clear();
    let out = match a.flow {
        Some(n) => flow(&a, &mut mesh, &result, n)?,
        None => match a.format {
            Format::Json => {
                output::emit_pieces(&a.output, true, |out| {
                    let mut pieces = output::LinePieces::new(out);
                    render::write_json(&result, cap.faults(), &mut pieces)?;
                    pieces.finish()
                })?;
                return Ok(ExitCode::SUCCESS);
            }
            Format::Csv => {
                // CSV has rows only: the note goes to standard error.
                if let Some(note) = render::not_this_pod_note(&result.not_this_pod) {
                    eprintln!("{}", meshpath::util::escape::escape_control_keep_lines(&note));
                }
                // The rows are written as they are made (docs/reliability.md, "Memory per flow").
                output::emit_pieces(&a.output, false, |out| render::write_csv(&result, out))?;
                return Ok(ExitCode::SUCCESS);
            }
            _ => {
                output::emit_pieces(&a.output, false, |out| render::write_text(&result, cap.faults(), out))?;
                return Ok(ExitCode::SUCCESS);
            }
        },
    };
    output::emit(&a.output, &out)?;
    Ok(ExitCode::SUCCESS)
}

/// Flow `n` in the format asked: its trace, its row and paths as JSON, its CSV line, a drawing
/// of its paths, or `explain`'s report.
fn flow(a: &ReplayArgs, mesh: &mut Mesh, result: &Replay<'_>, n: usize) -> Result<String> {
    let row = result.row(n).ok_or_else(|| {
        miette!(
            "--flow {n}: the capture has {} (0 to {})",
            meshpath::render::plural(result.len(), "flow"),
            result.len().saturating_sub(1)
        )
    })?;
    let row = &row;
    let kept = result.kept.as_ref().filter(|k| k.flow == n && row.leg_of.is_none());
    let trace = kept.map(|k| &k.trace);
    let start = kept.map(|k| &k.start);
    let title = render::flow_title(n, row);
    Ok(match (a.format, trace) {
        (Format::Json, t) => render::flow_json(row, t).map_err(output::json_error)?,
        (Format::Csv, _) => render::csv_rows(std::slice::from_ref(row)),
        (_, None) => render::untraced_flow(n, row, &result.not_this_pod),
        (Format::Dot, Some(t)) => meshpath::render::trace::dot(t),
        (Format::Mermaid, Some(t)) => meshpath::render::trace::mermaid(t),
        (f, Some(t)) => match (a.explain, start) {
            (true, Some(start)) => explain_flow(mesh, start, row, title, f)?,
            _ => format!("{title}\n{}", meshpath::render::trace::text(t)),
        },
    })
}

/// `explain`'s report for a flow's start. A name the capture's DNS answers gave the server
/// (the start goes to that name) is put back into the name table for the walk.
fn explain_flow(mesh: &mut Mesh, start: &Start, row: &Row, title: String, format: Format) -> Result<String> {
    if let (Destination::Host { name, .. }, Ok(server)) = (&start.dst, row.server.parse::<SocketAddr>()) {
        mesh.names.entry(name.to_ascii_lowercase()).or_insert_with(|| vec![server.ip()]);
    }
    let mut report = meshpath::explain::explain(mesh, start).map_err(|e| diagnose::engine(e, mesh))?;
    report.title = title;
    Ok(match format {
        Format::Markdown => meshpath::render::explain::markdown(&report),
        Format::Html => meshpath::render::explain::html(&report),
        _ => meshpath::render::explain::text(&report),
    })
}

/// Packets read between two updates of the progress bar.
const PROGRESS_EVERY: usize = 4096;

/// Captures smaller than this read too fast to need a progress bar.
const PROGRESS_MIN_BYTES: u64 = 16 << 20;

/// A progress bar by bytes of the capture on standard error; hidden when standard error is not
/// a terminal (indicatif's own check) or the file is small.
fn progress(len: u64) -> ProgressBar {
    if len < PROGRESS_MIN_BYTES {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr_with_hz(10));
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} reading {binary_bytes}/{binary_total_bytes} {wide_bar} {percent}% {elapsed} {msg}",
    ) {
        bar.set_style(style);
    }
    bar
}
