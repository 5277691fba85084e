//! `meshpath netfilter trace` and `check` output: a traceroute-like text form and the
//! versioned JSON document (`docs/netfilter-trace.md`).

use std::fmt::Write as _;

use serde::Serialize;

use crate::netfilter::eval::{Branch, Note, NoteKind, Outcome, Probe, Step, StepKind, Trace, Verdict};
use crate::netfilter::model::Ruleset;
use crate::netfilter::parse::Note as ParseNote;

/// The JSON schema name and version of a netfilter trace.
pub const TRACE_SCHEMA: &str = "meshpath.netfilter-trace/v1";

/// A single path has its `steps` and `result` at the top level; a packet split by
/// `statistic` rules has `branches` instead.
#[derive(Debug, Serialize)]
pub struct TraceDocument<'a> {
    pub schema: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<&'a [Step]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<&'a [Note]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<&'a Outcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown: Option<&'a [u32]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branches: Option<&'a [Branch]>,
}

pub fn trace_json(trace: &Trace) -> serde_json::Result<String> {
    let doc = match trace.branches.as_slice() {
        [only] => TraceDocument {
            schema: TRACE_SCHEMA,
            steps: Some(&only.steps),
            notes: Some(&only.notes),
            result: Some(&only.result),
            unknown: (!only.unknown.is_empty()).then_some(only.unknown.as_slice()),
            branches: None,
        },
        many => TraceDocument {
            schema: TRACE_SCHEMA,
            steps: None,
            notes: None,
            result: None,
            unknown: None,
            branches: Some(many),
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
            if refused.is_some() && last.what == NoteKind::Socket && last.before_step >= b.steps.len() =>
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
            let _ = writeln!(out, "{n:>3}  {}", note.text);
        }
        n += 1;
        let _ = writeln!(out, "{n:>3}  {}", step_text(step, ruleset, lines));
    }
    for note in notes {
        n += 1;
        let _ = writeln!(out, "{n:>3}  {}", note.text);
    }
    let ending = match r.disposition {
        crate::netfilter::eval::Disposition::Local if refused.is_some() => refused.unwrap_or_default(),
        crate::netfilter::eval::Disposition::Local => format!(
            "delivered locally via {} to {}{}",
            r.in_iface.as_deref().unwrap_or("?"),
            r.dst,
            r.socket.as_ref().map(|s| format!(" (socket {s})")).unwrap_or_default()
        ),
        crate::netfilter::eval::Disposition::Out => {
            format!("leaves through {} to {}", r.out_iface.as_deref().unwrap_or("?"), r.dst)
        }
        crate::netfilter::eval::Disposition::Forwarded => {
            format!("forwarded out of {} to {}", r.out_iface.as_deref().unwrap_or("?"), r.dst)
        }
        crate::netfilter::eval::Disposition::Dropped => {
            format!("dropped: {}", r.reason.as_deref().unwrap_or(""))
        }
    };
    let orig =
        if r.orig_dst != r.dst { format!(", original destination {}", r.orig_dst) } else { String::new() };
    let _ = writeln!(out, "result: {ending}{orig}; source {}, mark {}", r.src, r.mark);
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
    let verdict = match s.verdict {
        Verdict::Continue => "continue",
        Verdict::Jump => "jump",
        Verdict::Goto => "goto",
        Verdict::Return => "return",
        Verdict::Accept => "accept",
        Verdict::Drop => "drop",
    };
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
