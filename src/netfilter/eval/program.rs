//! A rule set prepared for evaluation: jump targets resolved to chain indices, built-in
//! chains found per hook, jump loops refused (as the kernel refuses to load them).

use std::sync::Arc;

use rayon::prelude::*;

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
            let chain_names: Vec<Arc<str>> = t.chains.iter().map(|c| Arc::from(c.name.as_str())).collect();
            let fixed = FixedNames::new();
            let prepare = |c: &Chain| prepare_chain(c, &index, &chain_names, &fixed);
            // A node's rule set has hundreds of thousands of rules: its chains are prepared on
            // all cores. A pod's few dozen are not worth a thread.
            let prepared: Vec<PreparedChain> = if t.chains.len() >= PARALLEL_CHAINS {
                t.chains.par_iter().map(prepare).collect()
            } else {
                t.chains.iter().map(prepare).collect()
            };
            let mut jumps = Vec::with_capacity(prepared.len());
            let mut target_names = Vec::with_capacity(prepared.len());
            for p in prepared {
                conntrack |= p.conntrack;
                for (mark, port) in p.tproxy {
                    if let Some(m) = mark {
                        if !tproxy_marks.contains(&m) {
                            tproxy_marks.push(m);
                        }
                    }
                    if !tproxy_ports.contains(&port) {
                        tproxy_ports.push(port);
                    }
                }
                jumps.push(p.jumps);
                target_names.push(p.target_names);
            }
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
            check_loops(&ruleset.source, t, &jumps)?;
            tables.push(CompiledTable { table: ti, name: t.name, jumps, hooks, chain_names, target_names });
        }
        let file = Arc::from(ruleset.source.as_str());
        Ok(Program { ruleset, file, tables, conntrack, tproxy_marks, tproxy_ports })
    }

    pub(super) fn table(&self, name: TableName) -> Option<&CompiledTable> {
        self.tables.iter().find(|t| t.name == name)
    }
}

/// A TPROXY rule's address (if any) and port.
type TproxyPort = (Option<std::net::IpAddr>, u16);

/// From this many chains on, a table's chains are prepared in parallel.
const PARALLEL_CHAINS: usize = 4096;

/// One chain's rules, prepared: where each jumps, each target's name, what the kernel loads for them.
struct PreparedChain {
    jumps: Vec<Option<usize>>,
    target_names: Vec<Option<Arc<str>>>,
    conntrack: bool,
    /// Per TPROXY rule: its mark (when it marks anything) and its address and port.
    tproxy: Vec<(Option<MarkMask>, TproxyPort)>,
}

fn prepare_chain(
    c: &Chain,
    index: &crate::util::fasthash::FastMap<&str, usize>,
    chain_names: &[Arc<str>],
    fixed: &FixedNames,
) -> PreparedChain {
    let mut p = PreparedChain {
        jumps: Vec::with_capacity(c.rules.len()),
        target_names: Vec::with_capacity(c.rules.len()),
        conntrack: false,
        tproxy: Vec::new(),
    };
    for r in &c.rules {
        let to = match &r.target {
            Target::Jump(n) | Target::Goto(n) => index.get(&**n).copied(),
            _ => None,
        };
        p.jumps.push(to);
        // Per rule, the target's name as written; a jump shares its chain's name.
        p.target_names.push(match (&r.target, to) {
            (Target::None, _) => None,
            (_, Some(i)) => Some(chain_names[i].clone()),
            (t, None) => Some(fixed.get(t).unwrap_or_else(|| Arc::from(t.name()))),
        });
        // nf_conntrack is loaded by the rules that need it.
        p.conntrack |= matches!(
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
            p.tproxy.push((mark.filter(|m| m.mask != 0), (*on_ip, *on_port)));
        }
    }
    p
}

/// The names of the built-in targets, allocated once per table and shared by every rule.
struct FixedNames {
    names: Vec<Arc<str>>,
}

impl FixedNames {
    const ALL: [&'static str; 15] = [
        "ACCEPT",
        "DROP",
        "RETURN",
        "REJECT",
        "REDIRECT",
        "DNAT",
        "SNAT",
        "MASQUERADE",
        "MARK",
        "CONNMARK",
        "TPROXY",
        "CT",
        "LOG",
        "NFLOG",
        "TRACE",
    ];

    fn new() -> FixedNames {
        FixedNames { names: Self::ALL.iter().map(|n| Arc::from(*n)).collect() }
    }

    /// The shared name of a built-in target; `None` for a jump or an unknown target.
    fn get(&self, t: &Target) -> Option<Arc<str>> {
        let i = match t {
            Target::Accept => 0,
            Target::Drop => 1,
            Target::Return => 2,
            Target::Reject { .. } => 3,
            Target::Redirect { .. } => 4,
            Target::Dnat { .. } => 5,
            Target::Snat { .. } => 6,
            Target::Masquerade { .. } => 7,
            Target::Mark(_) => 8,
            Target::Connmark(_) => 9,
            Target::Tproxy { .. } => 10,
            Target::Ct { .. } => 11,
            Target::Log { .. } => 12,
            Target::Nflog { .. } => 13,
            Target::Trace => 14,
            Target::None | Target::Jump(_) | Target::Goto(_) | Target::Unknown { .. } => return None,
        };
        Some(self.names[i].clone())
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
