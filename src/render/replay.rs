//! `meshpath replay` output: the table of flows with its summary and faults, the CSV, the
//! versioned JSON document (`meshpath.replay/v1`, docs/replay.md), and one flow's header.

use std::fmt::Write as _;

use serde::Serialize;

use super::plural;
use crate::capture::Fault;
use crate::engine::MeshTrace;
use crate::replay::{NotThisPod, Replay, Row, SummaryLine, NOT_THIS_POD};

/// The JSON schema identifier of `replay --format json`.
pub const SCHEMA: &str = "meshpath.replay/v1";
/// The JSON schema identifier of `replay --flow N --format json`.
pub const FLOW_SCHEMA: &str = "meshpath.replay-flow/v1";

/// The line that introduces one flow's trace or report.
pub fn flow_title(n: usize, row: &Row) -> String {
    format!("flow {n}: {} {} -> {} ({})", row.proto, row.client, row.server, row.side.as_str())
}

/// What `--flow N` says of a flow that has no trace of its own.
pub fn untraced_flow(n: usize, row: &Row, other: &NotThisPod) -> String {
    match row.leg_of {
        Some(o) => format!("flow {n} is the redirected leg of flow {o}; see --flow {o}\n"),
        None if row.ending == NOT_THIS_POD => format!(
            "flow {n}: not traced: {} -> {} involves none of pod {}'s addresses ({})\n",
            row.client,
            row.server,
            other.pod,
            list(&other.pod_addresses)
        ),
        None => format!("flow {n}: not traced: {}\n", row.detail.as_deref().unwrap_or(&row.ending)),
    }
}

fn list<T: ToString>(items: &[T]) -> String {
    items.iter().map(T::to_string).collect::<Vec<_>>().join(", ")
}

/// What flows that involve none of the pod's addresses mean, and which addresses the capture
/// holds instead; `None` when every flow involves the pod.
pub fn not_this_pod_note(n: &NotThisPod) -> Option<String> {
    if n.flows == 0 {
        return None;
    }
    let busiest: Vec<String> =
        n.busiest.iter().map(|a| format!("{} ({})", a.address, plural(a.flows as usize, "flow"))).collect();
    Some(format!(
        "note: {} {} none of pod {}'s addresses ({}), so {} not walked: either the capture comes \
         from another host or the pod's addresses (--pod-ip) are wrong. The capture's busiest \
         addresses: {}",
        plural(n.flows as usize, "flow"),
        if n.flows == 1 { "involves" } else { "involve" },
        n.pod,
        list(&n.pod_addresses),
        if n.flows == 1 { "it is" } else { "they are" },
        busiest.join(", ")
    ))
}

#[derive(Serialize)]
struct FlowDocument<'a> {
    schema: &'static str,
    flow: &'a Row,
    #[serde(skip_serializing_if = "Option::is_none")]
    paths: Option<serde_json::Value>,
}

/// `--flow N --format json`: the flow's row (as in `flows` of the replay document) and its
/// paths (as in the `meshpath trace --format json` document; absent when the flow was not
/// traced).
pub fn flow_json(row: &Row, trace: Option<&MeshTrace>) -> Result<String, serde_json::Error> {
    let paths = match trace {
        None => None,
        Some(t) => {
            let doc: serde_json::Value = serde_json::from_str(&super::trace::json(t)?)?;
            doc.get("paths").cloned()
        }
    };
    let doc = FlowDocument { schema: FLOW_SCHEMA, flow: row, paths };
    let mut s = serde_json::to_string_pretty(&doc)?;
    s.push('\n');
    Ok(s)
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

/// Output is handed to the writer in pieces of about this many bytes, whole lines each.
const PIECE: usize = 64 * 1024;

/// Collects lines and hands them to `out` in pieces of whole lines.
struct Pieces<'o, E> {
    buf: String,
    out: &'o mut dyn FnMut(&str) -> Result<(), E>,
}

impl<E> Pieces<'_, E> {
    fn line(&mut self, l: &str) -> Result<(), E> {
        self.buf.push_str(l);
        self.buf.push('\n');
        if self.buf.len() >= PIECE {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), E> {
        if !self.buf.is_empty() {
            (self.out)(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }
}

/// The table: one row per flow, then the summary by ending and cluster, then the faults.
pub fn text(r: &Replay<'_>, faults: &[Fault]) -> String {
    let mut s = String::new();
    let _ = write_text(r, faults, &mut |piece: &str| -> Result<(), std::convert::Infallible> {
        s.push_str(piece);
        Ok(())
    });
    s
}

/// [`text`], handed to `out` in pieces of whole lines: the rows are made twice (once for the
/// column widths), never all held at once.
pub fn write_text<E>(
    r: &Replay<'_>,
    faults: &[Fault],
    out: &mut dyn FnMut(&str) -> Result<(), E>,
) -> Result<(), E> {
    let mut width = COLUMNS.map(str::len);
    let mut disagree = 0usize;
    for row in r.rows() {
        disagree += usize::from(row.disagrees.is_some());
        for (w, c) in width.iter_mut().zip(cells(&row)) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(width).enumerate() {
            if i > 0 {
                l.push_str("  ");
            }
            let _ = write!(l, "{c:<w$}");
        }
        l.truncate(l.trim_end().len());
        l
    };
    let mut p = Pieces { buf: String::new(), out };
    p.line(&line(&COLUMNS.map(str::to_string)))?;
    for row in r.rows() {
        p.line(&line(&cells(&row)))?;
    }
    let mut tail = String::from("\nsummary\n");
    for s in &r.summary {
        let _ = writeln!(tail, "  {:>6}  {}  {}", s.flows, s.ending, s.cluster.as_deref().unwrap_or("-"));
    }
    let _ = write!(
        tail,
        "\n{}, {}, {disagree} {} with the capture",
        plural(r.len(), "flow"),
        plural(r.traces, "trace"),
        if disagree == 1 { "disagrees" } else { "disagree" }
    );
    if r.not_this_pod.flows > 0 {
        let _ = write!(tail, ", {} not this pod", r.not_this_pod.flows);
    }
    tail.push('\n');
    if let Some(note) = not_this_pod_note(&r.not_this_pod) {
        let _ = writeln!(tail, "\n{note}");
    }
    if !faults.is_empty() {
        tail.push_str("\nfaults\n");
        for f in faults {
            let _ = writeln!(tail, "  {f}");
        }
    }
    p.buf.push_str(&tail);
    p.flush()
}

/// The rows of a replay as a JSON array, made one at a time.
struct Rows<'r, 'a>(&'r Replay<'a>);

impl Serialize for Rows<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.rows())
    }
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
    flows: Rows<'a, 'a>,
    summary: &'a [SummaryLine],
    faults: Vec<FaultJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    not_this_pod: Option<&'a NotThisPod>,
}

/// The `meshpath.replay/v1` document.
pub fn json(r: &Replay<'_>, faults: &[Fault]) -> Result<String, serde_json::Error> {
    let mut out = Vec::new();
    write_json(r, faults, &mut out).map_err(serde_json::Error::io)?;
    String::from_utf8(out).map_err(|e| serde_json::Error::io(std::io::Error::other(e)))
}

/// [`json`], written to `out` as it is made.
pub fn write_json(r: &Replay<'_>, faults: &[Fault], mut out: impl std::io::Write) -> std::io::Result<()> {
    let doc = Document {
        schema: SCHEMA,
        flows: Rows(r),
        summary: &r.summary,
        faults: faults
            .iter()
            .map(|f| FaultJson { index: f.index, kind: f.kind.name(), detail: &f.detail })
            .collect(),
        not_this_pod: (r.not_this_pod.flows > 0).then_some(&r.not_this_pod),
    };
    serde_json::to_writer_pretty(&mut out, &doc)?;
    out.write_all(b"\n")
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

const CSV_HEADER: &str = "index,time,proto,client,server,side,name,name_from,ending,detail,listener,cluster,endpoint,paths,packets,bytes,leg_of,upstream_of,disagrees";

/// One CSV line per flow after a header.
pub fn csv(r: &Replay<'_>) -> String {
    let mut s = String::new();
    let _ = write_csv(r, &mut |piece: &str| -> Result<(), std::convert::Infallible> {
        s.push_str(piece);
        Ok(())
    });
    s
}

/// [`csv`], handed to `out` in pieces of whole lines.
pub fn write_csv<E>(r: &Replay<'_>, out: &mut dyn FnMut(&str) -> Result<(), E>) -> Result<(), E> {
    let mut p = Pieces { buf: String::new(), out };
    p.line(CSV_HEADER)?;
    for row in r.rows() {
        p.line(&csv_line(&row))?;
    }
    p.flush()
}

/// The CSV header and a line per row.
pub fn csv_rows(rows: &[Row]) -> String {
    let mut out = format!("{CSV_HEADER}\n");
    for x in rows {
        out.push_str(&csv_line(x));
        out.push('\n');
    }
    out
}

/// One row's CSV line (without its newline).
fn csv_line(x: &Row) -> String {
    {
        let o = |v: &Option<String>| csv_field(v.as_deref().unwrap_or(""));
        let fields = [
            x.index.to_string(),
            format!("{:.6}", x.time),
            x.proto.to_string(),
            csv_field(&x.client),
            csv_field(&x.server),
            x.side.as_str().to_string(),
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
        fields.join(",")
    }
}
