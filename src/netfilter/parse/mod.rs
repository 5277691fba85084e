//! Reading rule sets: kernel-canonical `iptables-save`/`ip6tables-save` output, restore-style
//! input as Istio's generator writes it (`* nat`, `-N`, `-I CHAIN N`), and either embedded in
//! an `istio-init` container log.
//!
//! Structure follows `iptables-restore`: a `*table` line opens a table (replacing any earlier
//! block of the same table, as restore without `--noflush` does), `:CHAIN POLICY [p:b]`
//! declares chains, `-A`/`-I`/`-N`/`-P`/`-F`/`-X` edit them, `COMMIT` closes the table.
//! Outside a table, lines that are not part of a rule set are log text: they are skipped and
//! counted in [`Parsed::notes`].

mod error;
mod file;
mod lexer;
mod rule;
mod run;
mod table;
mod value;

use std::sync::Arc;

/// A 32-bit number as iptables and `ip rule` write marks: decimal or `0x` hex.
pub use crate::util::num::parse_u32 as number;
pub use error::{ParseError, Problem};
pub use file::{read_rules, ReadError};
/// An ICMP type as iptables names it (`echo-request`, `8`, `3/3`) to `(type, code)`.
pub use value::icmp_type;

use crate::netfilter::model::*;
use lexer::{tokenize, Token};
use rule::RuleParser;
use table::TableBuilder;

/// How to read a rule file.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParseOptions {
    /// Keep unsupported match modules and targets as "unknown" instead of failing.
    pub lenient: bool,
    /// The address family; `None` infers it from the addresses in the file (IPv4 by default).
    pub family: Option<Family>,
}

/// Something worth telling the user that is not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub line: u32,
    pub message: String,
}

/// A parsed rule file.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub ruleset: Ruleset,
    pub notes: Vec<Note>,
    /// Rules kept with unknown parts (lenient mode): line and what was unknown.
    pub unknown: Vec<Note>,
}

/// A cursor over the lines of a text, as `text.split('\n')` gives them, numbered from 1.
#[derive(Clone)]
struct Lines<'a> {
    text: &'a str,
    /// Byte offset of the next line.
    pos: usize,
    /// Number of the next line.
    line: u32,
    done: bool,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        Lines { text, pos: 0, line: 1, done: false }
    }

    fn text(&self) -> &'a str {
        self.text
    }

    /// Byte offset of the next line.
    fn pos(&self) -> usize {
        self.pos
    }

    /// Number of the next line.
    fn line(&self) -> u32 {
        self.line
    }

    /// Goes to the line starting at byte `pos`, numbered `line`.
    fn seek(&mut self, pos: usize, line: u32) {
        self.pos = pos;
        self.line = line;
        // After a last line without a newline there is nothing; after a newline, one empty line.
        self.done =
            pos > self.text.len() || (pos == self.text.len() && pos > 0 && !self.text.ends_with('\n'));
    }
}

impl<'a> Iterator for Lines<'a> {
    /// The line's number and text (a `\r` before the newline included).
    type Item = (u32, &'a str);

    fn next(&mut self) -> Option<(u32, &'a str)> {
        if self.done {
            return None;
        }
        let n = self.line;
        self.line += 1;
        let rest = &self.text[self.pos..];
        match lexer::find_newline(rest.as_bytes(), 0) {
            Some(k) => {
                self.pos += k + 1;
                Some((n, &rest[..k]))
            }
            None => {
                self.pos = self.text.len();
                self.done = true;
                Some((n, rest))
            }
        }
    }
}

/// What a look at a block of alike lines (`-A ...`, `:CHAIN ...`) at the cursor found.
enum Block {
    /// A long block, read at once; the cursor is past it.
    Read,
    /// A short block, to be read line by line; it ends at this byte offset.
    Short { end: usize },
}

/// Parses one rule file. `file` names it in diagnostics and trace sources.
pub fn parse(file: &str, text: &str, opts: ParseOptions) -> Result<Parsed, ParseError> {
    // A UTF-8 byte order mark (an editor on Windows writes one) is not part of the first line,
    // as config dumps and scenario files already read it.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let parsed = parse_with(file, text, opts, Tuning::DEFAULT);
    match parsed {
        // The family was inferred from the first address; when another address disagrees, the
        // file's majority says which family it is, so the error lands on the odd line out.
        Err(e) if opts.family.is_none() && e.message.contains(FAMILY_MISMATCH) => {
            let majority = majority_family(text);
            if majority == infer_family(text) {
                return Err(e);
            }
            parse_with(file, text, ParseOptions { family: Some(majority), ..opts }, Tuning::DEFAULT)
        }
        other => other,
    }
}

/// When blocks of lines are read in parallel (the result is the same either way).
#[derive(Debug, Clone, Copy)]
struct Tuning {
    /// Runs of at least this many `-A` lines.
    min_run: usize,
    /// Blocks of at least this many `:CHAIN` lines.
    min_decls: usize,
    /// About this many bytes of a run make one piece of work.
    piece_bytes: usize,
}

impl Tuning {
    const DEFAULT: Tuning = Tuning { min_run: 4096, min_decls: 4096, piece_bytes: 64 * 1024 };
}

fn parse_with(file: &str, text: &str, opts: ParseOptions, tuning: Tuning) -> Result<Parsed, ParseError> {
    let family = opts.family.unwrap_or_else(|| infer_family(text));
    let mut tables: Vec<Table> = Vec::new();
    let mut notes = Vec::new();
    let mut unknown = Vec::new();
    let mut current: Option<TableBuilder> = None;
    let mut toks: Vec<Token> = Vec::with_capacity(32);
    let mut matches: Vec<Match> = Vec::with_capacity(8);
    let mut skipped_log_lines = 0u32;
    let mut first_skipped = 0u32;
    let mut stray_rules = 0u32;
    // Where the last short block of `-A` (or `:CHAIN`) lines ends: up to there, line by line.
    let mut short_run_end = 0;
    let mut short_decls_end = 0;

    let mut lines = Lines::new(text);
    loop {
        let here = lines.clone();
        let Some((line_no, raw)) = lines.next() else { break };
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let at = |p: Problem| ParseError::at(file, line_no, line, p);
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        // Long blocks (a big iptables-save table) are read on all cores.
        if let Some(table) = current.as_mut() {
            if raw.starts_with("-A ") && here.pos() >= short_run_end {
                let mut block = here.clone();
                match run::parse_long_run(
                    file,
                    &mut block,
                    table,
                    family,
                    opts.lenient,
                    &mut unknown,
                    tuning,
                )? {
                    Block::Read => {
                        lines = block;
                        continue;
                    }
                    Block::Short { end } => short_run_end = end,
                }
            }
            if raw.starts_with(':') && here.pos() >= short_decls_end {
                let mut block = here.clone();
                match table.declare_block(file, &mut block, tuning.min_decls)? {
                    Block::Read => {
                        lines = block;
                        continue;
                    }
                    Block::Short { end } => short_decls_end = end,
                }
            }
        }
        if let Some(rest) = trimmed.strip_prefix('*') {
            let name_str = rest.trim();
            let Some(name) = TableName::parse(name_str) else {
                if current.is_none() && !looks_like_table(name_str) {
                    skipped(&mut skipped_log_lines, &mut first_skipped, line_no);
                    continue;
                }
                return Err(at(Problem::new(indent, trimmed.len(), format!("unknown table `{name_str}`"))
                    .help("tables are raw, mangle, nat, filter and security")));
            };
            if let Some(open) = &current {
                return Err(at(Problem::new(
                    indent,
                    trimmed.len(),
                    format!(
                        "table `{}` opened on line {} has no COMMIT before this table",
                        open.name, open.line
                    ),
                )));
            }
            current = Some(TableBuilder::new(name, line_no));
            continue;
        }
        let Some(table) = current.as_mut() else {
            if trimmed.starts_with("-A ") || trimmed.starts_with("-I ") || trimmed.starts_with("-N ") {
                stray_rules += 1;
                if stray_rules == 1 {
                    notes.push(Note {
                        line: line_no,
                        message: "rule lines outside a `*table` block were skipped (log text?)".into(),
                    });
                }
            } else {
                skipped(&mut skipped_log_lines, &mut first_skipped, line_no);
            }
            continue;
        };
        if trimmed == "COMMIT" {
            let Some(done) = current.take() else { continue };
            let table = done.finish(file, text)?;
            if let Some(pos) = tables.iter().position(|t| t.name == table.name) {
                notes.push(Note {
                    line: table.line,
                    message: format!(
                        "table `{}` appears again; this block replaces the one on line {}",
                        table.name, tables[pos].line
                    ),
                });
                tables[pos] = table;
            } else {
                tables.push(table);
            }
            continue;
        }
        if trimmed.starts_with(':') {
            table.declare(line, line_no).map_err(at)?;
            continue;
        }
        // A rule or chain command.
        if let Some(body) = trimmed.strip_prefix('[') {
            // `[packets:bytes] -A ...` (iptables-save -c).
            if body.find(']').is_none() {
                return Err(at(Problem::new(indent, 1, "unterminated counters `[packets:bytes]`")));
            }
        }
        tokenize(line, &mut toks).map_err(at)?;
        let mut start = 0;
        if toks.first().is_some_and(|t| t.as_str().starts_with('[')) {
            start = 1;
        }
        let Some(cmd) = toks.get(start) else { continue };
        let chain_tok = toks.get(start + 1);
        let need_chain =
            |what: &str| at(Problem::new(cmd.col, cmd.len, format!("`{}` needs a chain name", what)));
        match cmd.as_str() {
            "-A" | "--append" | "-I" | "--insert" => {
                let chain_tok = chain_tok.ok_or_else(|| need_chain(cmd.as_str()))?;
                // iptables-save groups a chain's rules, so the previous rule's chain usually matches.
                let cached = table
                    .last_chain
                    .filter(|&i| table.chains.get(i).is_some_and(|c| c.name == chain_tok.as_str()));
                let Some(ci) = cached.or_else(|| table.index.get(chain_tok.as_str()).copied()) else {
                    return Err(at(Problem::new(
                        chain_tok.col,
                        chain_tok.len,
                        format!("chain `{}` does not exist in table {}", chain_tok.as_str(), table.name),
                    )
                    .help("declare it first with `:NAME - [0:0]` or `-N NAME`")));
                };
                let mut rest = start + 2;
                let mut insert_at = None;
                if cmd.as_str() == "-I" || cmd.as_str() == "--insert" {
                    insert_at = Some(0);
                    if let Some(n) = toks.get(rest).and_then(|t| t.as_str().parse::<usize>().ok()) {
                        let len = table.chains[ci].rules.len();
                        if n == 0 || n > len + 1 {
                            let t = &toks[rest];
                            return Err(at(Problem::new(
                                t.col,
                                t.len,
                                format!(
                                    "cannot insert at position {n}: chain {} has {len} rules",
                                    chain_tok.as_str()
                                ),
                            )));
                        }
                        insert_at = Some(n - 1);
                        rest += 1;
                    }
                }
                table.last_chain = Some(ci);
                let body = RuleParser::new(&toks[rest..], &mut matches, &table.index, family, opts.lenient)
                    .parse()
                    .map_err(at)?;
                if !body.unknown.is_empty() {
                    unknown.push(Note { line: line_no, message: body.unknown.join(", ") });
                }
                table.note_jump(&body.target, body.jump_to);
                let rule = Rule { line: line_no, matches: body.matches, target: body.target };
                let rules = &mut table.chains[ci].rules;
                match insert_at {
                    Some(p) => rules.insert(p, rule),
                    None => rules.push(rule),
                }
            }
            "-N" | "--new-chain" | "--new" => {
                let t = chain_tok.ok_or_else(|| need_chain("-N"))?;
                if table.index.contains_key(t.as_str()) && table.chains[table.index[t.as_str()]].line != 0 {
                    return Err(at(Problem::new(
                        t.col,
                        t.len,
                        format!("chain `{}` already exists", t.as_str()),
                    )));
                }
                table.add_chain(t.as_str(), None, line_no);
            }
            "-P" | "--policy" => {
                let t = chain_tok.ok_or_else(|| need_chain("-P"))?;
                let p = toks.get(start + 2).map(|t| t.as_str());
                let policy = match p {
                    Some("ACCEPT") => Policy::Accept,
                    Some("DROP") => Policy::Drop,
                    _ => return Err(at(Problem::new(t.col, t.len, "`-P CHAIN` needs ACCEPT or DROP"))),
                };
                if !table.name.builtin_chains().contains(&t.as_str()) {
                    return Err(at(Problem::new(
                        t.col,
                        t.len,
                        format!("only built-in chains have a policy; `{}` is not one", t.as_str()),
                    )));
                }
                table.add_chain(t.as_str(), Some(policy), line_no);
            }
            "-F" | "--flush" => match chain_tok {
                Some(t) => match table.index.get(t.as_str()) {
                    Some(&ci) => table.chains[ci].rules.clear(),
                    None => {
                        return Err(at(Problem::new(
                            t.col,
                            t.len,
                            format!("chain `{}` does not exist", t.as_str()),
                        )))
                    }
                },
                None => table.chains.iter_mut().for_each(|c| c.rules.clear()),
            },
            "-X" | "--delete-chain" => {
                let names: Vec<String> = match chain_tok {
                    Some(t) => vec![t.as_str().to_string()],
                    None => {
                        table.chains.iter().filter(|c| c.policy.is_none()).map(|c| c.name.clone()).collect()
                    }
                };
                for n in names {
                    if table.name.builtin_chains().contains(&n.as_str()) {
                        let t = chain_tok.unwrap_or(cmd);
                        return Err(at(Problem::new(t.col, t.len, "built-in chains cannot be deleted")));
                    }
                    table.chains.retain(|c| c.name != n);
                    table.last_chain = None;
                    table.check_jumps = true;
                }
                table.index =
                    table.chains.iter().enumerate().map(|(i, c)| (Arc::from(c.name.as_str()), i)).collect();
            }
            other => {
                return Err(at(Problem::new(
                    cmd.col,
                    cmd.len,
                    format!("unexpected `{other}` in table {}", table.name),
                )
                .help("expected `:CHAIN POLICY`, `-A CHAIN ...`, `-I`, `-N`, `-P` or COMMIT")));
            }
        }
    }
    if let Some(open) = current {
        let last = text.lines().count() as u32;
        let tail = text.lines().last().unwrap_or("");
        return Err(ParseError::at(
            file,
            last.max(1),
            tail,
            Problem::new(
                tail.len(),
                1,
                format!("table `{}` opened on line {} is never committed", open.name, open.line),
            )
            .help("add a COMMIT line at the end of the table"),
        ));
    }
    if skipped_log_lines > 0 {
        notes.insert(
            0,
            Note {
                line: first_skipped,
                message: format!("{skipped_log_lines} line(s) outside any table were skipped as log text"),
            },
        );
    }
    if tables.is_empty() {
        let line = if stray_rules > 0 {
            notes.iter().find(|n| n.message.starts_with("rule lines")).map_or(1, |n| n.line)
        } else {
            1
        };
        let text_line = text.split('\n').nth(line as usize - 1).unwrap_or("");
        return Err(ParseError::at(file, line, text_line, Problem::new(0, text_line.len().max(1), if stray_rules > 0 {
            "rules without a `*table` header".to_string()
        } else {
            "no rule set found: expected `*nat`, `*filter`, ... blocks as iptables-save prints them".to_string()
        })
        .help("give the output of `iptables-save` (or `ip6tables-save`) taken in the pod's network namespace")));
    }
    Ok(Parsed { ruleset: Ruleset { family, source: file.to_string(), tables }, notes, unknown })
}

/// The contents of a buffer kept for reuse, moved into a vector of exactly their size.
fn take_exact<T>(buf: &mut Vec<T>) -> Vec<T> {
    let mut v = Vec::with_capacity(buf.len());
    v.append(buf);
    v
}

fn skipped(count: &mut u32, first: &mut u32, line: u32) {
    if *count == 0 {
        *first = line;
    }
    *count += 1;
}

fn looks_like_table(s: &str) -> bool {
    !s.is_empty() && s.len() <= 16 && s.chars().all(|c| c.is_ascii_lowercase())
}

/// What the message of an address of the other family says (value.rs).
const FAMILY_MISMATCH: &str = " address in an IPv";

/// The family most addresses of `-s`, `-d` and `--on-ip` have (IPv4 on a tie).
fn majority_family(text: &str) -> Family {
    let (mut v4, mut v6) = (0usize, 0usize);
    for line in text.lines().filter(|l| l.starts_with("-A") || l.starts_with("-I")) {
        let mut it = line.split_whitespace();
        while let Some(w) = it.next() {
            if matches!(w, "-s" | "-d" | "--on-ip") {
                let Some(v) = it.next() else { break };
                match v.split('/').next().unwrap_or(v).parse::<std::net::IpAddr>() {
                    Ok(std::net::IpAddr::V6(_)) => v6 += 1,
                    Ok(std::net::IpAddr::V4(_)) => v4 += 1,
                    Err(_) => {}
                }
            }
        }
    }
    if v6 > v4 {
        Family::V6
    } else {
        Family::V4
    }
}

/// IPv6 if the first address in a rule is IPv6 (or an ICMPv6 match appears), else IPv4.
fn infer_family(text: &str) -> Family {
    for line in text.lines().filter(|l| l.starts_with("-A") || l.starts_with("-I")) {
        let mut it = line.split_whitespace();
        while let Some(w) = it.next() {
            if matches!(w, "-s" | "-d" | "--on-ip") {
                let Some(v) = it.next() else { break };
                let addr = v.split('/').next().unwrap_or(v);
                match addr.parse::<std::net::IpAddr>() {
                    Ok(std::net::IpAddr::V6(_)) => return Family::V6,
                    Ok(std::net::IpAddr::V4(_)) => return Family::V4,
                    Err(_) => {}
                }
            }
            if matches!(w, "--to-source" | "--to-destination") {
                let Some(v) = it.next() else { break };
                return if v.starts_with('[') || v.matches(':').count() >= 2 {
                    Family::V6
                } else {
                    Family::V4
                };
            }
            if matches!(w, "ipv6-icmp" | "icmpv6" | "icmp6" | "--icmpv6-type") || w.starts_with("icmp6-") {
                return Family::V6;
            }
        }
    }
    Family::V4
}

#[cfg(test)]
mod tests;
