//! `meshpath replay`: every flow of a capture walked through a pod (docs/replay.md).

use std::fmt::Write as _;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use miette::{miette, IntoDiagnostic, Result, WrapErr};
use serde::Serialize;

use meshpath::capture::{stitch_redirects, Capture, Fault, FlowTable, REDIRECT_PORTS};
use std::net::SocketAddr;

use meshpath::engine::{Destination, Mesh, Start};
use meshpath::render::trace as render;
use meshpath::replay::{replay, NotThisPod, Replay, Row, SummaryLine, NOT_THIS_POD};

use super::trace::{build_mesh, PodArgs};

pub const SCHEMA: &str = "meshpath.replay/v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReplayFormat {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The capture (pcap or pcapng; the format is read from its magic number).
    #[arg(value_name = "CAPTURE")]
    capture: PathBuf,
    #[command(flatten)]
    mesh: PodArgs,
    #[arg(long, value_enum, default_value = "table")]
    format: ReplayFormat,
    /// Print flow N's full trace instead of the table.
    #[arg(long, value_name = "N")]
    flow: Option<usize>,
    /// With --flow N: print `meshpath explain`'s report for the flow instead of its trace.
    #[arg(long, requires = "flow")]
    explain: bool,
}

pub fn run(a: ReplayArgs) -> Result<ExitCode> {
    let (mut mesh, pod) = build_mesh(&a.mesh)?;
    let local: Vec<std::net::IpAddr> = mesh
        .pods
        .get(pod)
        .and_then(|p| p.netns.interface("eth0"))
        .map(|i| i.addrs.iter().map(|a| a.addr()).collect())
        .unwrap_or_default();
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
    stitch_redirects(table.flows_mut(), &local, &REDIRECT_PORTS);
    let result = replay(&mut mesh, pod, table.flows());
    bar.finish_and_clear();
    let faults = cap.faults();
    if let Some(n) = a.flow {
        let row = result.rows.get(n).ok_or_else(|| {
            miette!(
                "--flow {n}: the capture has {} (0 to {})",
                meshpath::render::plural(result.rows.len(), "flow"),
                result.rows.len().saturating_sub(1)
            )
        })?;
        match (row.leg_of, row.trace.and_then(|i| result.traces.get(i))) {
            (Some(o), _) => {
                super::output::println(format!(
                    "flow {n} is the redirected leg of flow {o}; see --flow {o}"
                ))?;
            }
            (None, Some(t)) => {
                let title =
                    format!("flow {n}: {} {} -> {} ({})", row.proto, row.client, row.server, row.side);
                match (a.explain, row.trace.and_then(|i| result.starts.get(i))) {
                    (true, Some(start)) => super::output::print(explain_flow(&mut mesh, start, row, title)?)?,
                    _ => {
                        super::output::print(format!("{title}\n{}", render::text(t)))?;
                    }
                }
            }
            (None, None) if row.ending == NOT_THIS_POD => {
                let other = &result.not_this_pod;
                super::output::println(format!(
                    "flow {n}: not traced: {} -> {} involves none of pod {}'s addresses ({})",
                    row.client,
                    row.server,
                    other.pod,
                    list(&other.pod_addresses)
                ))?;
            }
            (None, None) => {
                super::output::println(format!(
                    "flow {n}: not traced: {}",
                    row.detail.as_deref().unwrap_or(&row.ending)
                ))?;
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let out = match a.format {
        ReplayFormat::Table => table_text(&result, faults),
        ReplayFormat::Json => json(&result, faults).map_err(super::output::json_error)?,
        ReplayFormat::Csv => {
            // CSV has rows only: the note goes to standard error.
            if let Some(note) = not_this_pod_note(&result.not_this_pod) {
                eprintln!("{note}");
            }
            csv(&result)
        }
    };
    super::output::print(out)?;
    Ok(ExitCode::SUCCESS)
}

/// `explain`'s text report for a flow's start. A name the capture's DNS answers gave the
/// server (the start goes to that name) is put back into the name table for the walk.
fn explain_flow(mesh: &mut Mesh, start: &Start, row: &Row, title: String) -> Result<String> {
    if let (Destination::Host { name, .. }, Ok(server)) = (&start.dst, row.server.parse::<SocketAddr>()) {
        mesh.names.entry(name.to_ascii_lowercase()).or_insert_with(|| vec![server.ip()]);
    }
    let mut report = meshpath::explain::explain(mesh, start).map_err(|e| miette!("{e}"))?;
    report.title = title;
    Ok(meshpath::render::explain::text(&report))
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

const COLUMNS: [&str; 13] = [
    "#", "time", "proto", "client", "server", "name", "ending", "listener", "cluster", "endpoint", "packets",
    "bytes", "note",
];

fn cells(r: &Row) -> [String; 13] {
    let ending = match &r.detail {
        Some(d) if r.ending != "error" => format!("{} {d}", r.ending),
        _ => r.ending.clone(),
    };
    let mut note = Vec::new();
    if let Some(o) = r.leg_of {
        note.push(format!("leg of #{o}"));
    }
    if let Some(d) = r.upstream_of {
        note.push(format!("Envoy's upstream of #{d}"));
    }
    if let Some(d) = r.name_from {
        note.push(format!("name from DNS #{d}"));
    }
    if r.paths > 1 {
        note.push(format!("{} paths", r.paths));
    }
    if r.ending == "error" {
        note.extend(r.detail.clone());
    }
    if let Some(d) = &r.disagrees {
        note.push(format!("disagrees: {d}"));
    }
    let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    [
        r.index.to_string(),
        format!("{:.6}", r.time),
        r.proto.to_string(),
        r.client.clone(),
        r.server.clone(),
        opt(&r.name),
        ending,
        opt(&r.listener),
        opt(&r.cluster),
        opt(&r.endpoint),
        r.packets.to_string(),
        r.bytes.to_string(),
        note.join("; "),
    ]
}

fn table_text(r: &Replay, faults: &[Fault]) -> String {
    let rows: Vec<[String; 13]> = r.rows.iter().map(cells).collect();
    let mut width = COLUMNS.map(str::len);
    for row in &rows {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[String]| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(width).enumerate() {
            if i > 0 {
                l.push_str("  ");
            }
            let _ = write!(l, "{c:<w$}");
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut out, &COLUMNS.map(str::to_string));
    for row in &rows {
        line(&mut out, row);
    }
    out.push_str("\nsummary\n");
    for s in &r.summary {
        let _ = writeln!(out, "  {:>6}  {}  {}", s.flows, s.ending, s.cluster.as_deref().unwrap_or("-"));
    }
    let disagree = r.rows.iter().filter(|x| x.disagrees.is_some()).count();
    let _ = write!(
        out,
        "\n{}, {}, {disagree} {} with the capture",
        meshpath::render::plural(r.rows.len(), "flow"),
        meshpath::render::plural(r.traces.len(), "trace"),
        if disagree == 1 { "disagrees" } else { "disagree" }
    );
    if r.not_this_pod.flows > 0 {
        let _ = write!(out, ", {} not this pod", r.not_this_pod.flows);
    }
    out.push('\n');
    if let Some(note) = not_this_pod_note(&r.not_this_pod) {
        let _ = writeln!(out, "\n{note}");
    }
    if !faults.is_empty() {
        out.push_str("\nfaults\n");
        for f in faults {
            let _ = writeln!(out, "  {f}");
        }
    }
    out
}

fn list<T: ToString>(items: &[T]) -> String {
    items.iter().map(T::to_string).collect::<Vec<_>>().join(", ")
}

/// What flows that involve none of the pod's addresses mean, and which addresses the capture
/// holds instead; `None` when every flow involves the pod.
fn not_this_pod_note(n: &NotThisPod) -> Option<String> {
    if n.flows == 0 {
        return None;
    }
    let busiest: Vec<String> = n
        .busiest
        .iter()
        .map(|a| format!("{} ({})", a.address, meshpath::render::plural(a.flows as usize, "flow")))
        .collect();
    Some(format!(
        "note: {} {} none of pod {}'s addresses ({}), so {} not walked: either the capture comes \
         from another host or the pod's addresses (--pod-ip) are wrong. The capture's busiest \
         addresses: {}",
        meshpath::render::plural(n.flows as usize, "flow"),
        if n.flows == 1 { "involves" } else { "involve" },
        n.pod,
        list(&n.pod_addresses),
        if n.flows == 1 { "it is" } else { "they are" },
        busiest.join(", ")
    ))
}

#[derive(Serialize)]
struct FaultJson<'a> {
    index: u64,
    kind: &'static str,
    detail: &'a str,
}

#[derive(Serialize)]
struct Document<'a> {
    schema: &'static str,
    flows: &'a [Row],
    summary: &'a [SummaryLine],
    faults: Vec<FaultJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    not_this_pod: Option<&'a NotThisPod>,
}

fn json(r: &Replay, faults: &[Fault]) -> serde_json::Result<String> {
    let doc = Document {
        schema: SCHEMA,
        flows: &r.rows,
        summary: &r.summary,
        faults: faults
            .iter()
            .map(|f| FaultJson { index: f.index, kind: f.kind.name(), detail: &f.detail })
            .collect(),
        not_this_pod: (r.not_this_pod.flows > 0).then_some(&r.not_this_pod),
    };
    let mut s = serde_json::to_string_pretty(&doc)?;
    s.push('\n');
    Ok(s)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv(r: &Replay) -> String {
    let mut out = String::from(
        "index,time,proto,client,server,side,name,name_from,ending,detail,listener,cluster,endpoint,paths,packets,bytes,leg_of,upstream_of,disagrees\n",
    );
    for x in &r.rows {
        let o = |v: &Option<String>| csv_field(v.as_deref().unwrap_or(""));
        let fields = [
            x.index.to_string(),
            format!("{:.6}", x.time),
            x.proto.to_string(),
            csv_field(&x.client),
            csv_field(&x.server),
            x.side.to_string(),
            o(&x.name),
            x.name_from.map(|v| v.to_string()).unwrap_or_default(),
            csv_field(&x.ending),
            o(&x.detail),
            o(&x.listener),
            o(&x.cluster),
            o(&x.endpoint),
            x.paths.to_string(),
            x.packets.to_string(),
            x.bytes.to_string(),
            x.leg_of.map(|v| v.to_string()).unwrap_or_default(),
            x.upstream_of.map(|v| v.to_string()).unwrap_or_default(),
            o(&x.disagrees),
        ];
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}
