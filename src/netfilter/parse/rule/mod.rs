//! One rule's options (everything after `-A CHAIN`) into matches and a target.
//!
//! iptables parses with getopt over the options of every loaded module: an option belongs to
//! the most recent `-m` that knows it, the implicit protocol match after `-p tcp|udp|sctp`, or,
//! after `-j`, to the target. We follow that, and name the option and module we do not model.
//! The options of match modules are read in `matches`, those of targets in `targets`.

mod matches;
mod targets;

use std::sync::Arc;

use super::error::Problem;
use super::lexer::Token;
use super::value::{self as v, ValueResult};
use crate::netfilter::model::*;
use crate::util::fasthash::FastMap;
use matches::{module_name, Module};
use targets::PendingTarget;

/// A parsed rule body, plus the unknown parts kept in lenient mode.
#[derive(Debug)]
pub struct RuleBody {
    pub matches: Vec<Match>,
    pub target: Target,
    /// Human-readable notes about what was kept as unknown (lenient mode).
    pub unknown: Vec<String>,
    /// For a jump or goto: the index of the chain it names, if the table had it when the rule
    /// was read.
    pub jump_to: Option<usize>,
}

const SUPPORTED_MATCHES: &str = "tcp, udp, sctp, multiport, owner, mark, connmark, conntrack, state, \
comment, addrtype, statistic, icmp, icmp6, socket, set, recent";
const SUPPORTED_TARGETS: &str = "ACCEPT, DROP, REJECT, RETURN, a user chain, REDIRECT, DNAT, SNAT, \
MASQUERADE, MARK, CONNMARK, TPROXY, CT, LOG, NFLOG, TRACE";

pub struct RuleParser<'t, 'a> {
    /// The table's chains, so jump targets share the chain's name instead of a copy.
    chains: &'t FastMap<Arc<str>, usize>,
    toks: &'t [Token<'a>],
    pos: usize,
    family: Family,
    lenient: bool,
    /// The matches read so far, in a buffer reused from rule to rule; the rule gets an exact copy.
    matches: &'t mut Vec<Match>,
    /// The protocol given with `-p`, for the implicit tcp/udp/sctp match.
    proto: Option<Protocol>,
    module: Option<Module>,
    target: Option<(Target, usize)>,
    pending_target: Option<PendingTarget>,
    unknown: Vec<String>,
    jump_to: Option<usize>,
}
impl<'t, 'a> RuleParser<'t, 'a> {
    /// A parser for the options `toks`; `matches` is a buffer the caller keeps between rules
    /// (its contents are replaced).
    pub fn new(
        toks: &'t [Token<'a>],
        matches: &'t mut Vec<Match>,
        chains: &'t FastMap<Arc<str>, usize>,
        family: Family,
        lenient: bool,
    ) -> Self {
        matches.clear();
        RuleParser {
            chains,
            toks,
            pos: 0,
            family,
            lenient,
            matches,
            proto: None,
            module: None,
            target: None,
            pending_target: None,
            unknown: Vec::new(),
            jump_to: None,
        }
    }

    fn err(&self, idx: usize, msg: impl Into<String>) -> Problem {
        let t = &self.toks[idx.min(self.toks.len().saturating_sub(1))];
        Problem::new(t.col, t.len, msg)
    }

    fn end_problem(&self, msg: impl Into<String>) -> Problem {
        match self.toks.last() {
            Some(t) => Problem::new(t.col + t.len, 1, msg),
            None => Problem::new(0, 1, msg),
        }
    }

    /// The value after option token `opt_idx`; `! ` before the value (old syntax) is folded in.
    fn value(&mut self, opt_idx: usize, neg: &mut bool) -> Result<(usize, &'t str), Problem> {
        if self.pos < self.toks.len() && self.toks[self.pos].as_str() == "!" {
            if *neg {
                return Err(self.err(self.pos, "`!` given twice"));
            }
            *neg = true;
            self.pos += 1;
        }
        match self.toks.get(self.pos) {
            Some(t) => {
                self.pos += 1;
                Ok((self.pos - 1, t.text.as_ref()))
            }
            None => Err(self.err(opt_idx, format!("`{}` needs a value", self.toks[opt_idx].as_str()))),
        }
    }

    fn conv<T>(&self, idx: usize, r: ValueResult<T>) -> Result<T, Problem> {
        r.map_err(|m| self.err(idx, m))
    }

    pub fn parse(mut self) -> Result<RuleBody, Problem> {
        while self.pos < self.toks.len() {
            let idx = self.pos;
            let mut neg = false;
            if self.toks[idx].as_str() == "!" {
                neg = true;
                self.pos += 1;
                if self.pos >= self.toks.len() {
                    return Err(self.err(idx, "`!` at the end of the rule negates nothing"));
                }
            }
            let oi = self.pos;
            let opt = self.toks[oi].as_str();
            self.pos += 1;
            match opt {
                "-s" | "--source" | "--src" | "-d" | "--destination" | "--dst" => {
                    let (vi, val) = self.value(oi, &mut neg)?;
                    let net = self.conv(vi, v::address(val, self.family))?;
                    let n = Neg { negated: neg, value: net };
                    self.matches.push(if opt.starts_with("-s") || opt == "--source" || opt == "--src" {
                        Match::Source(n)
                    } else {
                        Match::Destination(n)
                    });
                }
                "-i" | "--in-interface" | "-o" | "--out-interface" => {
                    let (_, val) = self.value(oi, &mut neg)?;
                    let (name, wildcard) = match val.strip_suffix('+') {
                        Some(n) => (n.to_string(), true),
                        None => (val.to_string(), false),
                    };
                    let n = Neg { negated: neg, value: IfaceName { name, wildcard } };
                    self.matches.push(if opt == "-i" || opt == "--in-interface" {
                        Match::InInterface(n)
                    } else {
                        Match::OutInterface(n)
                    });
                }
                "-p" | "--protocol" => {
                    let (vi, val) = self.value(oi, &mut neg)?;
                    let p = self.conv(vi, v::protocol(val))?;
                    if !neg {
                        self.proto = Some(p);
                    }
                    self.matches.push(Match::Protocol(Neg { negated: neg, value: p }));
                }
                "-f" | "--fragment" => self.matches.push(Match::Fragment { negated: neg }),
                "-m" | "--match" => {
                    if neg {
                        return Err(self.err(idx, "`!` cannot negate `-m`"));
                    }
                    self.finish_module()?;
                    let (vi, name) = self.value(oi, &mut neg)?;
                    self.module = Some(self.start_module(vi, name)?);
                }
                "-j" | "--jump" | "-g" | "--goto" => {
                    if neg {
                        return Err(self.err(idx, "`!` cannot negate a target"));
                    }
                    if self.target.is_some() || self.pending_target.is_some() {
                        return Err(self.err(oi, "a rule has one target; this is a second `-j`/`-g`"));
                    }
                    self.finish_module()?;
                    let (vi, name) = self.value(oi, &mut neg)?;
                    let goto = opt == "-g" || opt == "--goto";
                    self.start_target(vi, name, goto)?;
                }
                "-c" | "--set-counters" => {
                    self.value(oi, &mut neg)?;
                    self.value(oi, &mut neg)?;
                }
                _ if opt.starts_with('-') => self.option(oi, opt, neg)?,
                _ => {
                    return Err(self
                        .err(oi, format!("unexpected `{opt}`: expected an option such as -s, -p, -m or -j"))
                        .help("a value may need quotes if it contains spaces"))
                }
            }
        }
        self.finish_module()?;
        let target = match (self.target.take(), self.pending_target.take()) {
            (Some((t, _)), _) => t,
            (None, Some(p)) => self.finish_target(p)?,
            (None, None) => Target::None,
        };
        // Allocated at its final size: a large rule set holds hundreds of thousands of these.
        let matches = super::take_exact(self.matches);
        Ok(RuleBody { matches, target, unknown: self.unknown, jump_to: self.jump_to })
    }

    /// An option that belongs to a module or the target.
    fn option(&mut self, oi: usize, opt: &str, neg: bool) -> Result<(), Problem> {
        if self.pending_target.is_some() {
            return self.target_option(oi, opt, neg);
        }
        if self.target.is_some() {
            let name = self.target.as_ref().map(|(t, _)| t.name().to_string()).unwrap_or_default();
            return Err(self.err(oi, format!("target {name} takes no option `{opt}`")));
        }
        if let Some(mut m) = self.module.take() {
            let handled = self.module_option(&mut m, oi, opt, neg);
            self.module = Some(m);
            if handled? {
                return Ok(());
            }
        }
        // The implicit protocol match: `-p tcp --dport 80` without `-m tcp`.
        if let Some(proto @ (Protocol::Tcp | Protocol::Udp | Protocol::Sctp)) = self.proto {
            if matches!(
                opt,
                "--dport" | "--sport" | "--destination-port" | "--source-port" | "--tcp-flags" | "--syn"
            ) {
                self.finish_module()?;
                let mut m = Module::Ports { proto, sport: None, dport: None, flags: None };
                let handled = self.module_option(&mut m, oi, opt, neg)?;
                self.module = Some(m);
                if handled {
                    return Ok(());
                }
            }
        }
        let owner = match &self.module {
            Some(m) => format!(" (the current match is {})", module_name(m)),
            None => String::new(),
        };
        Err(self
            .err(oi, format!("unknown option `{opt}`{owner}"))
            .help(format!("supported match modules: {SUPPORTED_MATCHES}; targets: {SUPPORTED_TARGETS}")))
    }
}
