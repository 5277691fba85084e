//! One table while it is read: its chains with their index by name, chain declarations
//! (`:CHAIN POLICY [p:b]`), and the checks made at `COMMIT` (every jump names a chain of the
//! table).

use std::sync::Arc;

use rayon::prelude::*;

use super::error::{ParseError, Problem};
use super::lexer::tokenize;
use super::{Block, Lines};
use crate::netfilter::model::*;
use crate::util::fasthash::FastMap;

/// A table between its `*table` line and `COMMIT`.
pub(super) struct TableBuilder {
    pub name: TableName,
    pub line: u32,
    pub chains: Vec<Chain>,
    /// Chain index by name; jump targets share these names.
    pub index: FastMap<Arc<str>, usize>,
    /// The chain of the previous rule line.
    pub last_chain: Option<usize>,
    /// Whether some jump must be checked at `COMMIT`: one that named no user chain of the
    /// table when it was read, or any once a chain was deleted.
    pub check_jumps: bool,
}

impl TableBuilder {
    pub fn new(name: TableName, line: u32) -> Self {
        let mut t = TableBuilder {
            name,
            line,
            chains: Vec::new(),
            index: FastMap::default(),
            last_chain: None,
            check_jumps: false,
        };
        // Built-in chains exist even when a restore-style file does not declare them.
        for c in name.builtin_chains() {
            t.add_chain(c, Some(Policy::Accept), 0);
        }
        t
    }

    pub fn add_chain(&mut self, name: &str, policy: Option<Policy>, line: u32) -> usize {
        match self.index.get(name) {
            Some(&i) => self.redeclare(i, policy, line),
            None => self
                .insert(Chain { name: name.to_string(), policy, line, rules: Vec::new() }, Arc::from(name)),
        }
    }

    /// A chain declared again: a policy replaces the earlier one, the first line is kept.
    fn redeclare(&mut self, i: usize, policy: Option<Policy>, line: u32) -> usize {
        if policy.is_some() {
            self.chains[i].policy = policy;
        }
        if self.chains[i].line == 0 {
            self.chains[i].line = line;
        }
        i
    }

    fn insert(&mut self, chain: Chain, name: Arc<str>) -> usize {
        self.chains.push(chain);
        self.index.insert(name, self.chains.len() - 1);
        self.chains.len() - 1
    }

    /// A `:CHAIN POLICY [p:b]` line (`line` is the whole line, indentation included).
    pub fn declare(&mut self, line: &str, line_no: u32) -> Result<(), Problem> {
        let (name, policy) = declaration(self.name, line)?;
        self.add_chain(name, policy, line_no);
        Ok(())
    }

    /// Reads the block of `:CHAIN` lines at the cursor when it has at least `min_lines` lines
    /// (a big table declares tens of thousands of chains): each declaration is read and its
    /// names are made on all cores, then the chains are entered in file order. A shorter
    /// block is left to the caller, who learns where it ends.
    pub fn declare_block(
        &mut self,
        file: &str,
        lines: &mut Lines<'_>,
        min_lines: usize,
    ) -> Result<Block, ParseError> {
        let mut probe = lines.clone();
        let mut block = Vec::new();
        loop {
            let here = probe.clone();
            match probe.next() {
                Some((line_no, raw)) if raw.starts_with(':') => {
                    block.push((line_no, raw.strip_suffix('\r').unwrap_or(raw)))
                }
                _ => {
                    probe = here;
                    break;
                }
            }
        }
        if block.len() < min_lines {
            return Ok(Block::Short { end: probe.pos() });
        }
        let table = self.name;
        let made: Vec<Result<(Chain, Arc<str>), ParseError>> = block
            .par_iter()
            .map(|&(line_no, line)| {
                let (name, policy) =
                    declaration(table, line).map_err(|p| ParseError::at(file, line_no, line, p))?;
                Ok((
                    Chain { name: name.to_string(), policy, line: line_no, rules: Vec::new() },
                    Arc::from(name),
                ))
            })
            .collect();
        self.chains.reserve(made.len());
        self.index.reserve(made.len());
        for m in made {
            let (chain, name) = m?;
            match self.index.entry(name) {
                std::collections::hash_map::Entry::Occupied(e) => {
                    let i = *e.get();
                    self.redeclare(i, chain.policy, chain.line);
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(self.chains.len());
                    self.chains.push(chain);
                }
            }
        }
        *lines = probe;
        Ok(Block::Read)
    }

    /// Notes a rule read into the table (see [`jump_known_good`]).
    pub fn note_jump(&mut self, target: &Target, jump_to: Option<usize>) {
        self.check_jumps |= !jump_known_good(self.name, target, jump_to);
    }

    /// Checks that every jump and goto names a chain of its table, then builds the table.
    pub fn finish(self, file: &str, text: &str) -> Result<Table, ParseError> {
        if !self.check_jumps {
            return Ok(Table { name: self.name, line: self.line, chains: self.chains });
        }
        let t = &self;
        let bad = t.chains.par_iter().find_map_first(|c| {
            c.rules.iter().find_map(|r| {
                let (Target::Jump(name) | Target::Goto(name)) = &r.target else { return None };
                if !t.index.contains_key(&**name) {
                    Some((
                        r.line,
                        format!("`{name}` is neither a target we know nor a chain of table {}", t.name),
                    ))
                } else if t.name.builtin_chains().contains(&&**name) {
                    Some((r.line, format!("cannot jump to built-in chain `{name}`")))
                } else {
                    None
                }
            })
        });
        if let Some((line, message)) = bad {
            // Only on error: find the line and the target's token again for the diagnostic.
            let line_text = text.split('\n').nth(line as usize - 1).unwrap_or("").trim_end_matches('\r');
            let mut toks = Vec::new();
            let _ = tokenize(line_text, &mut toks);
            let (col, len) = toks
                .windows(2)
                .rev()
                .find(|w| matches!(w[0].as_str(), "-j" | "--jump" | "-g" | "--goto"))
                .map_or((0, line_text.len()), |w| (w[1].col, w[1].len));
            return Err(ParseError::at(
                file,
                line,
                line_text,
                Problem::new(col, len.max(1), message)
                    .help("declare the chain in this table, or check the spelling of the target"),
            ));
        }
        Ok(Table { name: self.name, line: self.line, chains: self.chains })
    }
}

/// Whether a rule's jump or goto (if it has one) is good as read: it named a user chain of
/// table `table` (index `jump_to`), which stays so unless a chain is deleted.
pub(super) fn jump_known_good(table: TableName, target: &Target, jump_to: Option<usize>) -> bool {
    match target {
        // The built-in chains are the first of a table.
        Target::Jump(_) | Target::Goto(_) => jump_to.is_some_and(|i| i >= table.builtin_chains().len()),
        _ => true,
    }
}

/// The first two whitespace-separated words of `s` (empty when missing), as
/// `split_whitespace` gives them; byte by byte while the text is ASCII.
fn first_two_words(s: &str) -> (&str, &str) {
    let bytes = s.as_bytes();
    // `char::is_whitespace` on ASCII: space, tab, newline, vertical tab, form feed, return.
    let space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let mut words = [""; 2];
    let mut i = 0;
    for w in &mut words {
        while i < bytes.len() && space(bytes[i]) {
            i += 1;
        }
        let start = i;
        while i < bytes.len() && !space(bytes[i]) && bytes[i].is_ascii() {
            i += 1;
        }
        if i < bytes.len() && !bytes[i].is_ascii() {
            let mut parts = s.split_whitespace();
            return (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        }
        *w = &s[start..i];
    }
    (words[0], words[1])
}

/// The chain name and policy of a `:CHAIN POLICY [p:b]` line of table `table`.
pub(super) fn declaration(table: TableName, line: &str) -> Result<(&str, Option<Policy>), Problem> {
    let trimmed = line.trim_start();
    let indent = line.len() - trimmed.len();
    let decl = trimmed.strip_prefix(':').unwrap_or(trimmed);
    let (name, policy) = first_two_words(decl);
    if name.is_empty() {
        return Err(Problem::new(indent, 1, "chain declaration without a name"));
    }
    let is_builtin = table.builtin_chains().contains(&name);
    match (policy, is_builtin) {
        ("-", false) => Ok((name, None)),
        ("ACCEPT", true) => Ok((name, Some(Policy::Accept))),
        ("DROP", true) => Ok((name, Some(Policy::Drop))),
        ("-", true) => Err(Problem::new(
            indent,
            trimmed.len(),
            format!("built-in chain {name} needs a policy (ACCEPT or DROP)"),
        )),
        (p, false) if p == "ACCEPT" || p == "DROP" => Err(Problem::new(
            indent,
            trimmed.len(),
            format!("`{name}` is not a built-in chain of table {table}, so it cannot have a policy"),
        )),
        (p, _) => Err(Problem::new(indent, trimmed.len(), format!("unknown policy `{p}`"))
            .help("expected ACCEPT, DROP or - (user chain)")),
    }
}
