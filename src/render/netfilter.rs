//! `meshpath netfilter trace` and `check` output: a traceroute-like text form and the
//! versioned JSON document (`docs/netfilter-trace.md`).

use std::fmt::Write as _;

use serde::Serialize;

use super::words;
use crate::netfilter::eval::{Branch, Event, NoteKind, Outcome, Probe, Step, StepKind, Trace, UnknownKind};
use crate::netfilter::model::Ruleset;
use crate::netfilter::parse::Note as ParseNote;

/// The JSON schema name and version of a netfilter trace.
pub const TRACE_SCHEMA: &str = "meshpath.netfilter-trace/v1";

/// A single path has its `steps` and `result` at the top level; a packet split by
/// `statistic` rules has `branches` instead.
#[derive(Debug, Serialize)]
struct TraceDocument<'a> {
    schema: &'static str,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    only: Option<BranchView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    branches: Option<Vec<BranchView<'a>>>,
}

#[derive(Debug, Serialize)]
struct BranchView<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    probability: Option<f64>,
    steps: &'a [Step],
    notes: Vec<NoteView<'a>>,
    result: OutcomeView<'a>,
    #[serde(skip_serializing_if = "<[u32]>::is_empty")]
    unknown: &'a [u32],
}

#[derive(Debug, Serialize)]
struct NoteView<'a> {
    before_step: usize,
    hook: Option<crate::netfilter::eval::Hook>,
    what: crate::netfilter::eval::NoteKind,
    text: String,
    #[serde(flatten)]
    event: EventView<'a>,
}

/// A note's event, flattened into the note. `unknown`'s own `what` (match or target) is
/// written `unknown` here, since the note's `what` is the note's kind.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum EventView<'a> {
    Unknown { event: &'static str, unknown: UnknownKind, name: &'a str, line: u32 },
    Other(&'a Event),
}

fn event_view(e: &Event) -> EventView<'_> {
    match e {
        Event::Unknown { what, name, line } => {
            EventView::Unknown { event: "unknown", unknown: *what, name, line: *line }
        }
        other => EventView::Other(other),
    }
}

#[derive(Debug, Serialize)]
struct OutcomeView<'a> {
    disposition: crate::netfilter::eval::Disposition,
    #[serde(rename = "in", skip_serializing_if = "Option::is_none")]
    in_iface: Option<&'a str>,
    #[serde(rename = "out", skip_serializing_if = "Option::is_none")]
    out_iface: Option<&'a str>,
    src: String,
    dst: String,
    orig_dst: String,
    mark: String,
    ctmark: String,
    zone: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    socket: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    drop: Option<&'a crate::netfilter::eval::Reason>,
}

fn branch_view(b: &Branch, probability: bool) -> BranchView<'_> {
    let r = &b.result;
    BranchView {
        probability: probability.then_some(b.probability),
        steps: &b.steps,
        notes: b
            .notes
            .iter()
            .map(|n| NoteView {
                before_step: n.before_step,
                hook: n.hook,
                what: n.kind(),
                text: words::event(&n.event),
                event: event_view(&n.event),
            })
            .collect(),
        result: OutcomeView {
            disposition: r.disposition,
            in_iface: r.in_iface.as_deref(),
            out_iface: r.out_iface.as_deref(),
            src: r.src.to_string(),
            dst: r.dst.to_string(),
            orig_dst: r.orig_dst.to_string(),
            mark: format!("{:#x}", r.mark),
            ctmark: format!("{:#x}", r.ctmark),
            zone: r.zone,
            socket: r.socket.as_ref().map(|s| s.endpoint()),
            reason: r.reason.as_ref().map(words::reason),
            drop: r.reason.as_ref(),
        },
        unknown: &b.unknown,
    }
}

/// The `meshpath.netfilter-trace/v1` document of a trace.
pub fn trace_json(trace: &Trace) -> Result<String, serde_json::Error> {
    let doc = match trace.branches.as_slice() {
        [only] => {
            TraceDocument { schema: TRACE_SCHEMA, only: Some(branch_view(only, false)), branches: None }
        }
        many => TraceDocument {
            schema: TRACE_SCHEMA,
            only: None,
            branches: Some(many.iter().map(|b| branch_view(b, true)).collect()),
        },
    };
    let mut s = serde_json::to_string_pretty(&doc)?;
    s.push('\n');
    Ok(s)
}

/// Text: one numbered line per step or decision, the rule as written, and the ending.
pub fn trace_text(trace: &Trace, probe: &Probe, ruleset: &Ruleset, source: &str) -> String {
    let lines: Vec<&str> = source.split('\n').collect();
    let mut out = String::new();
    let who = match probe.entry {
        crate::netfilter::eval::Entry::Output => {
            format!("sent by uid {} gid {}", probe.uid, probe.gid)
        }
        crate::netfilter::eval::Entry::Prerouting => format!("arriving on {}", probe.in_iface),
    };
    let _ = writeln!(
        out,
        "{} {} -> {} {who}, mark {:#x}",
        proto(probe),
        crate::netfilter::eval::endpoint_of(probe.src, probe.sport),
        crate::netfilter::eval::endpoint_of(probe.dst, probe.dport),
        probe.mark
    );
    let many = trace.branches.len() > 1;
    for (bi, b) in trace.branches.iter().enumerate() {
        if many {
            let _ = writeln!(
                out,
                "\nbranch {} of {} (probability {:.4}):",
                bi + 1,
                trace.branches.len(),
                b.probability
            );
        }
        branch_text(&mut out, b, probe, ruleset, &lines);
    }
    out
}

fn proto(p: &Probe) -> &'static str {
    use crate::netfilter::model::Protocol::*;
    match p.proto {
        Tcp => "tcp",
        Udp => "udp",
        Icmp => "icmp",
        Icmpv6 => "icmpv6",
        Sctp => "sctp",
        All | Number(_) => "ip",
    }
}

fn branch_text(out: &mut String, b: &Branch, probe: &Probe, ruleset: &Ruleset, lines: &[&str]) {
    let r = &b.result;
    let refused = refusal(r, probe);
    // A refusal is the result: the socket lookup's own note at the end is not repeated.
    let shown = match b.notes.split_last() {
        Some((last, rest))
            if refused.is_some() && last.kind() == NoteKind::Socket && last.before_step >= b.steps.len() =>
        {
            rest
        }
        _ => b.notes.as_slice(),
    };
    let mut n = 0;
    let mut notes = shown.iter().peekable();
    for (i, step) in b.steps.iter().enumerate() {
        while let Some(note) = notes.next_if(|x| x.before_step <= i) {
            n += 1;
            let _ = writeln!(out, "{n:>3}  {}", words::event(&note.event));
        }
        n += 1;
        let _ = writeln!(out, "{n:>3}  {}", step_text(step, ruleset, lines));
    }
    for note in notes {
        n += 1;
        let _ = writeln!(out, "{n:>3}  {}", words::event(&note.event));
    }
    let ending = match r.disposition {
        crate::netfilter::eval::Disposition::Local if refused.is_some() => refused.unwrap_or_default(),
        crate::netfilter::eval::Disposition::Local => format!(
            "delivered locally via {} to {}{}",
            r.in_iface.as_deref().unwrap_or("?"),
            r.dst,
            r.socket.as_ref().map(|s| format!(" (socket {})", s.endpoint())).unwrap_or_default()
        ),
        crate::netfilter::eval::Disposition::Out => {
            format!("leaves through {} to {}", r.out_iface.as_deref().unwrap_or("?"), r.dst)
        }
        crate::netfilter::eval::Disposition::Forwarded => {
            format!("forwarded out of {} to {}", r.out_iface.as_deref().unwrap_or("?"), r.dst)
        }
        crate::netfilter::eval::Disposition::Dropped => {
            format!("dropped: {}", r.reason.as_ref().map(words::reason).unwrap_or_default())
        }
    };
    let orig =
        if r.orig_dst != r.dst { format!(", original destination {}", r.orig_dst) } else { String::new() };
    let _ = writeln!(out, "result: {ending}{orig}; source {}, mark {:#x}", r.src, r.mark);
    if !b.unknown.is_empty() {
        let l: Vec<String> = b.unknown.iter().map(|l| l.to_string()).collect();
        let _ = writeln!(
            out,
            "warning: {} on {} {} not fully modelled; this path assumes {} continue{}",
            if l.len() == 1 { "the rule" } else { "rules" },
            if l.len() == 1 { "line" } else { "lines" },
            l.join(", "),
            if l.len() == 1 { "it" } else { "they" },
            if l.len() == 1 { "s" } else { "" }
        );
    }
}

/// How a TCP or UDP packet delivered locally ends when no known socket listens on its
/// destination: the kernel refuses it (RFC 9293 §3.10.7.1: a segment for a CLOSED port gets a
/// RST; RFC 1122 §4.1.3.1: UDP answers port unreachable).
fn refusal(r: &Outcome, probe: &Probe) -> Option<String> {
    use crate::netfilter::model::Protocol;
    if r.disposition != crate::netfilter::eval::Disposition::Local || r.socket.is_some() {
        return None;
    }
    let answer = match probe.proto {
        Protocol::Tcp => "the kernel answers RST, connection refused",
        Protocol::Udp => "the kernel answers ICMP port unreachable",
        _ => return None,
    };
    Some(format!(
        "refused: no known socket listens on {} {} (arrived via {}; {answer})",
        proto(probe),
        r.dst,
        r.in_iface.as_deref().unwrap_or("?")
    ))
}

fn step_text(s: &Step, ruleset: &Ruleset, lines: &[&str]) -> String {
    let verdict = words::verdict(s.verdict);
    let head = format!("{:<11} {:<8}", s.hook.as_str(), s.table.as_str());
    match s.kind {
        StepKind::Rule => {
            let target = s.target.as_deref().map(|t| format!(" {t}")).unwrap_or_default();
            let text = s.line.and_then(|l| lines.get(l as usize - 1)).map(|t| t.trim()).unwrap_or("");
            format!(
                "{head} {} #{} {verdict}{target}    {}:{}  {text}",
                s.chain,
                s.rule.unwrap_or(0),
                ruleset.source,
                s.line.unwrap_or(0)
            )
        }
        StepKind::Return => format!("{head} {} end of chain, return", s.chain),
        StepKind::Policy => format!("{head} {} policy {verdict}", s.chain),
    }
}

/// `netfilter check`: what was read, per table, and anything worth a second look.
pub fn check_text(rs: &Ruleset, notes: &[ParseNote], unknown: &[ParseNote]) -> String {
    let mut out = String::new();
    let chains: usize = rs.tables.iter().map(|t| t.chains.len()).sum();
    let fam = match rs.family {
        crate::netfilter::model::Family::V4 => "IPv4",
        crate::netfilter::model::Family::V6 => "IPv6",
    };
    let _ = writeln!(
        out,
        "{}: {fam}, {}, {}, {}",
        rs.source,
        super::plural(rs.tables.len(), "table"),
        super::plural(chains, "chain"),
        super::plural(rs.rule_count(), "rule")
    );
    for t in &rs.tables {
        let builtin = t.chains.iter().filter(|c| c.policy.is_some()).count();
        let rules: usize = t.chains.iter().map(|c| c.rules.len()).sum();
        let policies: Vec<String> = t
            .chains
            .iter()
            .filter(|c| c.policy == Some(crate::netfilter::model::Policy::Drop))
            .map(|c| format!("{} DROP", c.name))
            .collect();
        let pol =
            if policies.is_empty() { String::new() } else { format!("; policies: {}", policies.join(", ")) };
        let _ = writeln!(
            out,
            "  {:<8} {builtin} built-in + {}, {}{pol}",
            t.name.as_str(),
            super::plural(t.chains.len() - builtin, "user chain"),
            super::plural(rules, "rule")
        );
    }
    for n in notes {
        let _ = writeln!(out, "  note: line {}: {}", n.line, n.message);
    }
    for u in unknown {
        let _ = writeln!(out, "  unsupported, kept as unknown: line {}: {}", u.line, u.message);
    }
    out
}
