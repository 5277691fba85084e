//! Long runs of `-A` lines (a big iptables-save table: a node's kube-proxy rules are hundreds
//! of thousands of them), parsed on all cores.
//!
//! The text from the run's first line on is cut into pieces at line starts. A first pass over
//! the pieces (in parallel, eight bytes at a time) counts their lines, for line numbers, and
//! finds where the run ends: the first line that does not start with `-A `. Then each piece up
//! to there is parsed on its own, line by line straight from the text, and the results are
//! appended in file order, so rules, notes and the first error are the same as reading line
//! by line. Reading goes on as usual from the line that ended the run.

use rayon::prelude::*;

use super::error::{ParseError, Problem};
use super::lexer::{self, tokenize, Token};
use super::rule::RuleParser;
use super::table::{jump_known_good, TableBuilder};
use super::{take_exact, Block, Lines, Note, Tuning};
use crate::netfilter::model::*;

/// The rules of consecutive lines of one chain.
struct Segment {
    chain: usize,
    rules: Vec<Rule>,
}

/// One piece's rules, the unknown parts of its rules (lenient mode), and whether a jump of
/// them is to be checked at `COMMIT`.
struct PieceRules {
    segments: Vec<Segment>,
    notes: Vec<Note>,
    check_jumps: bool,
}

/// Reads the run of `-A` lines at the cursor when it has at least `tuning.min_run` lines,
/// and moves the cursor past it; a shorter run is left to the caller, who learns where it ends.
pub(super) fn parse_long_run(
    file: &str,
    lines: &mut Lines<'_>,
    table: &mut TableBuilder,
    family: Family,
    lenient: bool,
    unknown: &mut Vec<Note>,
    tuning: Tuning,
) -> Result<Block, ParseError> {
    let mut probe = lines.clone();
    for _ in 0..tuning.min_run {
        let here = probe.pos();
        match probe.next() {
            Some((_, raw)) if raw.starts_with("-A ") => {}
            _ => return Ok(Block::Short { end: here }),
        }
    }
    let text = lines.text();
    let start = lines.pos();
    // Pieces up to the end of the run, the number of each piece's first line, and where the
    // run ends (byte offset, line number). Looked for in growing batches of pieces, so a run
    // far shorter than the rest of the file does not cost a scan of all of it.
    let mut pieces = Vec::new();
    let mut first_line = Vec::new();
    let mut n = lines.line();
    let mut from = start;
    let mut batch = 16 * tuning.piece_bytes;
    let end = loop {
        let until = next_line_start(text.as_bytes(), from + batch, text.len());
        let cut_here = cut(text, from, until, tuning.piece_bytes);
        let scans: Vec<(u32, Option<usize>)> =
            cut_here.par_iter().map(|&(a, b)| scan_run(text.as_bytes(), a, b)).collect();
        let mut end = None;
        for (&(a, b), (count, stop)) in cut_here.iter().zip(scans) {
            pieces.push((a, stop.unwrap_or(b)));
            first_line.push(n);
            n += count;
            if let Some(stop) = stop {
                end = Some(stop);
                break;
            }
        }
        match end {
            Some(e) => break e,
            None if until == text.len() => break text.len(),
            None => {
                from = until;
                batch *= 2;
            }
        }
    };
    let index = &table.index;
    let table_name = table.name;
    let parsed: Vec<Result<PieceRules, ParseError>> = pieces
        .par_iter()
        .zip(&first_line)
        .map_init(
            || (Vec::with_capacity(32), Vec::with_capacity(8), Vec::new()),
            |(toks, matches, rules), (&(a, b), &line_no)| {
                let piece = Piece { file, text, index, table: table_name, family, lenient };
                piece.parse(a, b, line_no, toks, matches, rules)
            },
        )
        .collect();
    for r in parsed {
        let piece = r?;
        unknown.extend(piece.notes);
        table.check_jumps |= piece.check_jumps;
        for mut s in piece.segments {
            let rules = &mut table.chains[s.chain].rules;
            if rules.is_empty() {
                *rules = s.rules;
            } else {
                rules.append(&mut s.rules);
            }
        }
    }
    table.last_chain = None;
    lines.seek(end, n);
    Ok(Block::Read)
}

/// Cuts `start..end` into pieces of about `size` bytes that begin at line starts.
fn cut(text: &str, start: usize, end: usize, size: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::with_capacity((end - start) / size + 1);
    let mut a = start;
    while a < end {
        let b = next_line_start(text.as_bytes(), a + size, end);
        out.push((a, b));
        a = b;
    }
    out
}

/// The start of the first line that begins after byte `at`, or `end` if none does before it.
fn next_line_start(bytes: &[u8], at: usize, end: usize) -> usize {
    match bytes.get(at..end).and_then(|b| b.iter().position(|&c| c == b'\n')) {
        Some(k) => at + k + 1,
        None => end,
    }
}

/// The lines of `a..b` (which starts a line of the run): how many end in the piece before
/// the run does, and the offset of the first line that does not start with `-A `, if one
/// starts in the piece. Eight bytes at a time.
fn scan_run(bytes: &[u8], a: usize, b: usize) -> (u32, Option<usize>) {
    let mut count = 0;
    let mut newline = |j: usize| {
        count += 1;
        (!bytes[j + 1..].starts_with(b"-A ")).then_some(j + 1)
    };
    let mut i = a;
    while i + 8 <= b {
        let mut m = lexer::newlines(lexer::word(bytes, i));
        while m != 0 {
            if let Some(end) = newline(i + (m.trailing_zeros() / 8) as usize) {
                return (count, Some(end));
            }
            m &= m - 1;
        }
        i += 8;
    }
    for (j, &c) in bytes.iter().enumerate().take(b).skip(i) {
        if c == b'\n' {
            if let Some(end) = newline(j) {
                return (count, Some(end));
            }
        }
    }
    (count, None)
}

/// What parsing one piece needs to know.
struct Piece<'t> {
    file: &'t str,
    text: &'t str,
    index: &'t crate::util::fasthash::FastMap<std::sync::Arc<str>, usize>,
    table: TableName,
    family: Family,
    lenient: bool,
}

impl<'t> Piece<'t> {
    /// Parses the `-A` lines in `a..b` (the first is line `line_no`), with buffers the
    /// caller keeps from piece to piece.
    fn parse(
        &self,
        a: usize,
        b: usize,
        mut line_no: u32,
        toks: &mut Vec<Token<'t>>,
        matches: &mut Vec<Match>,
        rules: &mut Vec<Rule>,
    ) -> Result<PieceRules, ParseError> {
        let mut out = PieceRules { segments: Vec::new(), notes: Vec::new(), check_jumps: false };
        rules.clear();
        // The chain of the rules gathered in `rules`, and its name as written.
        let mut current: Option<(usize, &'t str)> = None;
        let mut pos = a;
        while pos < b {
            let rest = &self.text[pos..b];
            let len = match tokenize(rest, toks) {
                Ok(len) => len,
                Err(p) => return Err(self.at(rest, line_no, p)),
            };
            let raw = &rest[..len];
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            let at = |p: Problem| ParseError::at(self.file, line_no, line, p);
            let Some(chain_tok) = toks.get(1) else {
                return Err(at(Problem::new(0, 2, "`-A` needs a chain name")));
            };
            let name = chain_tok.as_str();
            if !matches!(current, Some((_, last)) if last == name) {
                let Some(&ci) = self.index.get(name) else {
                    return Err(at(Problem::new(
                        chain_tok.col,
                        chain_tok.len,
                        format!("chain `{name}` does not exist in table {}", self.table),
                    )
                    .help("declare it first with `:NAME - [0:0]` or `-N NAME`")));
                };
                if let Some((last, _)) = current.filter(|&(last, _)| last != ci) {
                    out.segments.push(Segment { chain: last, rules: take_exact(rules) });
                }
                // The name as written on the line, to compare the next lines with.
                let written = line.get(chain_tok.col..chain_tok.col + chain_tok.len).unwrap_or("");
                current = Some((ci, written));
            }
            let body = RuleParser::new(&toks[2..], matches, self.index, self.family, self.lenient)
                .parse()
                .map_err(at)?;
            if !body.unknown.is_empty() {
                out.notes.push(Note { line: line_no, message: body.unknown.join(", ") });
            }
            out.check_jumps |= !jump_known_good(self.table, &body.target, body.jump_to);
            rules.push(Rule { line: line_no, matches: body.matches, target: body.target });
            pos += len + 1;
            line_no += 1;
        }
        if let Some((ci, _)) = current {
            if !rules.is_empty() {
                out.segments.push(Segment { chain: ci, rules: take_exact(rules) });
            }
        }
        Ok(out)
    }

    fn at(&self, rest: &str, line_no: u32, p: Problem) -> ParseError {
        let raw = rest.split('\n').next().unwrap_or("");
        ParseError::at(self.file, line_no, raw.strip_suffix('\r').unwrap_or(raw), p)
    }
}
