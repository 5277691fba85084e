//! A rule set prepared for evaluation: jump targets resolved to chain indices, built-in
//! chains found per hook, jump loops refused (as the kernel refuses to load them).

use std::sync::Arc;

use super::Hook;
use crate::netfilter::model::*;

/// One table ready to run.
#[derive(Debug, Clone)]
pub(super) struct CompiledTable {
    pub table: usize,
    pub name: TableName,
    /// Per chain, per rule: the chain a jump/goto goes to.
    pub jumps: Vec<Vec<Option<usize>>>,
    /// The built-in chain for each hook, when the table has it and it exists in the kernel.
    pub hooks: [Option<usize>; 5],
    /// Chain names, shared by every step that names them.
    pub chain_names: Vec<Arc<str>>,
    /// Per chain, per rule: the target's name as written (`None` for no target).
    pub target_names: Vec<Vec<Option<Arc<str>>>>,
}

/// A rule set ready for [`super::trace`].
#[derive(Debug, Clone)]
pub struct Program {
    pub ruleset: Ruleset,
    /// The rules file's name (`ruleset.source`), shared by the steps that cite it.
    pub file: Arc<str>,
    pub(super) tables: Vec<CompiledTable>,
    /// Whether any rule makes the kernel load conntrack in this namespace (nf_conntrack is loaded on demand by the rules that need it:
    /// without such a rule, nat chains are never traversed).
    pub conntrack: bool,
    /// The TPROXY marks used by the rules, for Istio's default policy routing.
    pub tproxy_marks: Vec<MarkMask>,
    pub tproxy_ports: Vec<(Option<std::net::IpAddr>, u16)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    #[error(
        "{file}:{line}: jumping to chain {chain} forms a loop ({path}); the kernel refuses such a rule set"
    )]
    Loop { file: String, line: u32, chain: String, path: String },
}

impl Program {
    pub fn new(ruleset: Ruleset) -> Result<Program, CompileError> {
        let mut tables = Vec::new();
        let mut conntrack = false;
        let mut tproxy_marks = Vec::new();
        let mut tproxy_ports = Vec::new();
        for (ti, t) in ruleset.tables.iter().enumerate() {
            let index: crate::util::fasthash::FastMap<&str, usize> =
                t.chains.iter().enumerate().map(|(i, c)| (c.name.as_str(), i)).collect();
            let jumps: Vec<Vec<Option<usize>>> = t
                .chains
                .iter()
                .map(|c| {
                    c.rules
                        .iter()
                        .map(|r| match &r.target {
                            Target::Jump(n) | Target::Goto(n) => index.get(&**n).copied(),
                            _ => None,
                        })
                        .collect()
                })
                .collect();
            let mut hooks = [None; 5];
            for h in Hook::ALL {
                if let Some(&ci) = index.get(h.as_str()) {
                    let c = &t.chains[ci];
                    // iptables-nft registers a built-in chain only once it is declared or used.
                    if c.policy.is_some() && (c.line != 0 || !c.rules.is_empty()) {
                        hooks[h as usize] = Some(ci);
                    }
                }
            }
            for c in &t.chains {
                for r in &c.rules {
                    conntrack |=
                        matches!(
                            r.target,
                            Target::Redirect { .. }
                                | Target::Dnat { .. }
                                | Target::Snat { .. }
                                | Target::Masquerade { .. }
                                | Target::Connmark(_)
                                | Target::Ct { .. }
                        ) || r.matches.iter().any(|m| matches!(m, Match::CtState(_) | Match::Connmark(_)));
                    if let Target::Tproxy { on_port, on_ip, mark } = &r.target {
                        // A zero mask marks nothing; a `fwmark 0/0` rule would match every packet.
                        if let Some(m) = mark.filter(|m| m.mask != 0) {
                            if !tproxy_marks.contains(&m) {
                                tproxy_marks.push(m);
                            }
                        }
                        if !tproxy_ports.contains(&(*on_ip, *on_port)) {
                            tproxy_ports.push((*on_ip, *on_port));
                        }
                    }
                }
            }
            check_loops(&ruleset.source, t, &jumps)?;
            let chain_names: Vec<Arc<str>> = t.chains.iter().map(|c| Arc::from(c.name.as_str())).collect();
            // Per rule, the target's name as written; a jump shares its chain's name.
            let target_names = t
                .chains
                .iter()
                .zip(&jumps)
                .map(|(c, to)| {
                    c.rules
                        .iter()
                        .zip(to)
                        .map(|(r, to)| match (&r.target, to) {
                            (Target::None, _) => None,
                            (_, Some(i)) => Some(chain_names[*i].clone()),
                            (t, None) => Some(Arc::from(t.name())),
                        })
                        .collect()
                })
                .collect();
            tables.push(CompiledTable { table: ti, name: t.name, jumps, hooks, chain_names, target_names });
        }
        let file = Arc::from(ruleset.source.as_str());
        Ok(Program { ruleset, file, tables, conntrack, tproxy_marks, tproxy_ports })
    }

    pub(super) fn table(&self, name: TableName) -> Option<&CompiledTable> {
        self.tables.iter().find(|t| t.name == name)
    }
}

/// Depth-first search over jumps; a back edge is a loop.
fn check_loops(file: &str, t: &Table, jumps: &[Vec<Option<usize>>]) -> Result<(), CompileError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut mark = vec![Mark::New; t.chains.len()];
    for start in 0..t.chains.len() {
        if mark[start] != Mark::New {
            continue;
        }
        // (chain, next rule index to explore)
        let mut stack = vec![(start, 0usize)];
        mark[start] = Mark::Active;
        while let Some(top) = stack.last_mut() {
            let (c, ri) = *top;
            if ri >= jumps[c].len() {
                mark[c] = Mark::Done;
                stack.pop();
                continue;
            }
            top.1 += 1;
            let Some(next) = jumps[c][ri] else { continue };
            match mark[next] {
                Mark::Active => {
                    let path: Vec<&str> = stack
                        .iter()
                        .map(|&(c, _)| t.chains[c].name.as_str())
                        .chain([t.chains[next].name.as_str()])
                        .collect();
                    return Err(CompileError::Loop {
                        file: file.to_string(),
                        line: t.chains[c].rules[ri].line,
                        chain: t.chains[next].name.clone(),
                        path: path.join(" -> "),
                    });
                }
                Mark::New => {
                    mark[next] = Mark::Active;
                    stack.push((next, 0));
                }
                Mark::Done => {}
            }
        }
    }
    Ok(())
}
