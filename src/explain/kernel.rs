//! A kernel hop explained: each rule that decided something (with the earlier rules of its
//! chain that did not match, and the match that failed in each), then where the packet went.

use super::rules::{describe, line_text};
use super::{Decision, Said};
use crate::engine::{EngineError, Mesh};
use crate::netfilter::eval::{self, Disposition, NoteKind, Probe, StepKind, Verdict};
use crate::netfilter::model::Protocol;

/// The most non-matching rules listed under one decision.
const MAX_MISSES: usize = 8;

pub(super) fn decisions(
    mesh: &Mesh,
    pi: usize,
    probe: &Probe,
    branch: usize,
) -> Result<Vec<Decision>, EngineError> {
    let Some(pod) = mesh.pods.get(pi) else { return Ok(Vec::new()) };
    let v6 = probe.dst.is_ipv6();
    let Some(prog) = pod.program(v6) else { return Ok(Vec::new()) };
    let t = eval::trace_misses(prog, &pod.netns, probe)?;
    let Some(b) = t.branches.get(branch) else { return Ok(Vec::new()) };
    let file = &prog.ruleset.source;
    let packet = packet_words(probe);
    let mut out = Vec::new();
    for (i, s) in b.steps.iter().enumerate() {
        let misses: Vec<&eval::Miss> = b
            .misses
            .iter()
            .filter(|m| m.before_step == i && m.hook == s.hook && m.table == s.table && m.chain == s.chain)
            .collect();
        let (what, mut why) = match s.kind {
            StepKind::Rule if s.verdict != Verdict::Continue => {
                let target = s.target.as_deref().unwrap_or("");
                let verb = match s.verdict {
                    Verdict::Jump => format!("jumps to {target}"),
                    Verdict::Goto => format!("goes to {target}"),
                    Verdict::Return => "returns".to_string(),
                    Verdict::Accept if target.is_empty() || target == "ACCEPT" => "accepts".to_string(),
                    Verdict::Accept => format!("accepts with {target}"),
                    Verdict::Drop => format!("drops ({target})"),
                    Verdict::Continue => "continues".to_string(),
                };
                let n = s.rule.unwrap_or(0);
                let mut why = Vec::new();
                if let Some(text) = s.line.and_then(|l| line_text(pod, v6, l)) {
                    why.push(format!("rule: `{}`", text.trim()));
                }
                why.push(format!("it matches {packet}"));
                (format!("{} {} {} #{n} {verb}", s.hook.as_str(), s.table, s.chain), why)
            }
            StepKind::Return if !misses.is_empty() => (
                format!(
                    "{} {} {}: no rule matches, back to the calling chain",
                    s.hook.as_str(),
                    s.table,
                    s.chain
                ),
                Vec::new(),
            ),
            StepKind::Policy if !misses.is_empty() || s.verdict == Verdict::Drop => (
                format!(
                    "{} {} {}: no rule decides, policy {}",
                    s.hook.as_str(),
                    s.table,
                    s.chain,
                    if s.verdict == Verdict::Drop { "DROP" } else { "ACCEPT" }
                ),
                Vec::new(),
            ),
            _ => continue,
        };
        if !misses.is_empty() {
            why.push(format!("earlier rules of {} that did not match:", s.chain));
            for m in misses.iter().take(MAX_MISSES) {
                why.push(format!("  {}", miss_words(prog, pod, v6, m)));
            }
            if misses.len() > MAX_MISSES {
                why.push(format!("  ... and {} more", misses.len() - MAX_MISSES));
            }
        }
        let source = s.line.map(|l| format!("{file}:{l}")).unwrap_or_default();
        let why = why.into_iter().map(Said::Text).collect();
        out.push(Decision { pod: pod.name.clone(), layer: "netfilter", what: Said::Text(what), source, why });
    }
    let r = &b.result;
    let what = match r.disposition {
        Disposition::Local => match &r.socket {
            Some(sock) => Said::Text(format!(
                "the kernel delivers it to {} on {} (original destination {})",
                sock.owner.as_str(),
                sock.endpoint_addr(),
                r.orig_dst
            )),
            None => Said::Text(format!("nothing listens on {}: the connection is refused", r.dst)),
        },
        Disposition::Out | Disposition::Forwarded => Said::Text(format!("the packet leaves for {}", r.dst)),
        Disposition::Dropped => match &r.reason {
            Some(reason) => Said::Dropped(reason.clone()),
            None => Said::Text("dropped".into()),
        },
    };
    let why = b
        .notes
        .iter()
        .filter(|n| {
            matches!(n.kind(), NoteKind::Nat | NoteKind::Route | NoteKind::Socket | NoteKind::Loopback)
        })
        .map(|n| Said::Event(n.event.clone()))
        .collect();
    out.push(Decision { pod: pod.name.clone(), layer: "kernel", what, source: String::new(), why });
    Ok(out)
}

fn packet_words(p: &Probe) -> String {
    let proto = match p.proto {
        Protocol::Udp => "udp",
        Protocol::Icmp => "icmp",
        Protocol::Icmpv6 => "icmpv6",
        _ => "tcp",
    };
    let src = eval::endpoint_of(p.src, p.sport);
    let dst = eval::endpoint_of(p.dst, p.dport);
    match p.entry {
        eval::Entry::Output => format!("{proto} {src} -> {dst} sent by uid {}", p.uid),
        eval::Entry::Prerouting => format!("{proto} {src} -> {dst} arriving on {}", p.in_iface),
    }
}

fn miss_words(prog: &eval::Program, pod: &crate::engine::Pod, v6: bool, m: &eval::Miss) -> String {
    let rule = prog
        .ruleset
        .table(m.table)
        .and_then(|t| t.chain(&m.chain))
        .and_then(|c| c.rules.get(m.rule.wrapping_sub(1)));
    let failed = rule.and_then(|r| r.matches.get(m.failed_match)).map(describe).unwrap_or_default();
    let text = line_text(pod, v6, m.line).map(|t| format!(" `{}`", t.trim())).unwrap_or_default();
    format!("#{} (line {}){text}: `{failed}` does not hold", m.rule, m.line)
}
