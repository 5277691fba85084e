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

/// The table: one row per flow, then the summary by ending and cluster, then the faults.
pub fn text(r: &Replay, faults: &[Fault]) -> String {
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
        plural(r.rows.len(), "flow"),
        plural(r.traces.len(), "trace"),
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

/// The `meshpath.replay/v1` document.
pub fn json(r: &Replay, faults: &[Fault]) -> Result<String, serde_json::Error> {
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

/// One CSV line per flow after a header.
pub fn csv(r: &Replay) -> String {
    csv_rows(&r.rows)
}

/// The CSV header and a line per row.
pub fn csv_rows(rows: &[Row]) -> String {
    let mut out = String::from(
        "index,time,proto,client,server,side,name,name_from,ending,detail,listener,cluster,endpoint,paths,packets,bytes,leg_of,upstream_of,disagrees\n",
    );
    for x in rows {
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
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}
