//! Rule sets in reports: a rule's text, a match in words, and rule sets edited for a
//! counterfactual (a rule removed, an exemption inserted), re-parsed from their text so the
//! edited set is exactly what `iptables-restore` would load.

use crate::engine::Pod;
use crate::netfilter::eval::Program;
use crate::netfilter::model::{Match, Neg};
use crate::netfilter::parse::{parse, ParseOptions};

/// The text of line `line` of the pod's rule file of that family.
pub fn line_text(pod: &Pod, v6: bool, line: u32) -> Option<String> {
    let text = pod.rules_text(v6)?;
    let i = usize::try_from(line).ok()?.checked_sub(1)?;
    text.split('\n').nth(i).map(|l| l.trim_end_matches('\r').to_string())
}

fn neg<T>(n: &Neg<T>) -> &'static str {
    if n.negated {
        "! "
    } else {
        ""
    }
}

/// One match as iptables writes it (short forms).
pub fn describe(m: &Match) -> String {
    match m {
        Match::Source(n) => format!("{}-s {}", neg(n), n.value),
        Match::Destination(n) => format!("{}-d {}", neg(n), n.value),
        Match::InInterface(n) => {
            format!("{}-i {}{}", neg(n), n.value.name, if n.value.wildcard { "+" } else { "" })
        }
        Match::OutInterface(n) => {
            format!("{}-o {}{}", neg(n), n.value.name, if n.value.wildcard { "+" } else { "" })
        }
        Match::Protocol(n) => format!("{}-p {:?}", neg(n), n.value).to_lowercase(),
        Match::Ports { proto, sport, dport, .. } => {
            let mut s = format!("-m {proto:?}").to_lowercase();
            if let Some(p) = sport {
                s.push_str(&format!(" {}--sport {}", neg(p), range(p.value.lo, p.value.hi)));
            }
            if let Some(p) = dport {
                s.push_str(&format!(" {}--dport {}", neg(p), range(p.value.lo, p.value.hi)));
            }
            s
        }
        Match::Multiport { negated, ports, .. } => {
            let list: Vec<String> = ports.iter().map(|p| range(p.lo, p.hi)).collect();
            format!("-m multiport {}--ports {}", if *negated { "! " } else { "" }, list.join(","))
        }
        Match::Owner { uid, gid, socket_exists, .. } => {
            let mut s = "-m owner".to_string();
            if let Some(u) = uid {
                s.push_str(&format!(" {}--uid-owner {}", neg(u), range32(u.value.lo, u.value.hi)));
            }
            if let Some(g) = gid {
                s.push_str(&format!(" {}--gid-owner {}", neg(g), range32(g.value.lo, g.value.hi)));
            }
            if let Some(e) = socket_exists {
                s.push_str(&format!(" {}--socket-exists", neg(e)));
            }
            s
        }
        Match::Mark(n) => format!("-m mark {}--mark {:#x}/{:#x}", neg(n), n.value.value, n.value.mask),
        Match::Connmark(n) => {
            format!("-m connmark {}--mark {:#x}/{:#x}", neg(n), n.value.value, n.value.mask)
        }
        Match::CtState(n) => {
            let s: Vec<String> = n.value.iter().map(|s| format!("{s:?}").to_uppercase()).collect();
            format!("-m conntrack {}--ctstate {}", neg(n), s.join(","))
        }
        Match::AddrType { src, dst, .. } => {
            let mut s = "-m addrtype".to_string();
            if let Some(t) = src {
                s.push_str(&format!(" {}--src-type {}", neg(t), types(&t.value)));
            }
            if let Some(t) = dst {
                s.push_str(&format!(" {}--dst-type {}", neg(t), types(&t.value)));
            }
            s
        }
        Match::Socket { .. } => "-m socket".into(),
        Match::Set { name, negated, .. } => {
            format!("-m set {}--match-set {name}", if *negated { "! " } else { "" })
        }
        Match::Comment(c) => format!("-m comment --comment {c:?}"),
        other => format!("{other:?}"),
    }
}

fn types(list: &[crate::netfilter::model::AddrType]) -> String {
    let v: Vec<String> = list.iter().map(|t| format!("{t:?}").to_uppercase()).collect();
    v.join(",")
}

fn range(lo: u16, hi: u16) -> String {
    if lo == hi {
        lo.to_string()
    } else {
        format!("{lo}:{hi}")
    }
}

fn range32(lo: u32, hi: u32) -> String {
    if lo == hi {
        lo.to_string()
    } else {
        format!("{lo}-{hi}")
    }
}

/// The rule set of `pod` (family `v6`) with its text edited by `edit`, re-parsed; `None` when
/// the pod has no such rule set or the edited text does not load.
pub fn edited(pod: &Pod, v6: bool, edit: impl FnOnce(&mut Vec<String>)) -> Option<(Program, String)> {
    let old = pod.program(v6)?;
    let text = pod.rules_text(v6)?;
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    edit(&mut lines);
    let text = lines.join("\n");
    let opts = ParseOptions { lenient: false, family: Some(old.ruleset.family) };
    let parsed = parse(&old.ruleset.source, &text, opts).ok()?;
    let program = Program::new(parsed.ruleset).ok()?;
    Some((program, text))
}

/// Replaces the pod's rule set of that family.
pub fn replace(pod: &mut Pod, v6: bool, (program, text): (Program, String)) {
    if v6 {
        pod.rules_v6 = Some(program);
        pod.rules_text.1 = Some(text);
    } else {
        pod.rules_v4 = Some(program);
        pod.rules_text.0 = Some(text);
    }
}
