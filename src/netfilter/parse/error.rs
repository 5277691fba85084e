//! Parse errors that point at the exact spot: `file:line:col`, the line itself, a label under
//! the offending token, and what to do about it.

use std::fmt;

use miette::{Diagnostic, LabeledSpan, MietteSpanContents, SourceCode, SourceSpan, SpanContents};

/// A problem within one line: column and length of the offending text, the message, and help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub col: usize,
    pub len: usize,
    pub message: String,
    pub help: Option<String>,
}

impl Problem {
    pub fn new(col: usize, len: usize, message: impl Into<String>) -> Self {
        Problem { col, len, message: message.into(), help: None }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// An error in a rule file, located to the byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{col}: {message}")]
pub struct ParseError {
    pub file: String,
    /// 1-based line number.
    pub line: u32,
    /// 1-based column (in bytes).
    pub col: usize,
    pub message: String,
    pub help: Option<String>,
    /// The whole offending line, for the snippet.
    pub line_text: String,
    len: usize,
}

impl ParseError {
    pub fn at(file: &str, line_no: u32, line_text: &str, problem: Problem) -> Self {
        ParseError {
            file: file.to_string(),
            line: line_no,
            col: problem.col + 1,
            message: problem.message,
            help: problem.help,
            line_text: line_text.to_string(),
            len: problem.len.max(1),
        }
    }
}

/// The one offending line as miette source code, numbered as in the real file.
#[derive(Debug)]
struct LineSource<'a> {
    name: &'a str,
    text: &'a str,
    line: u32,
}

impl SourceCode for LineSource<'_> {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        _context_lines_before: usize,
        _context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, miette::MietteError> {
        if span.offset() + span.len() > self.text.len() {
            return Err(miette::MietteError::OutOfBounds);
        }
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.to_string(),
            self.text.as_bytes(),
            SourceSpan::from((0, self.text.len())),
            self.line.saturating_sub(1) as usize,
            0,
            1,
        )))
    }
}

impl SourceCode for ParseError {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, miette::MietteError> {
        LineSource { name: &self.file, text: &self.line_text, line: self.line }
            .read_span(span, before, after)
            .map(|c| {
                // Re-wrap so the contents borrow from `self`, not the temporary.
                Box::new(MietteSpanContents::new_named(
                    self.file.clone(),
                    self.line_text.as_bytes(),
                    *c.span(),
                    c.line(),
                    c.column(),
                    c.line_count(),
                )) as Box<dyn SpanContents<'a> + 'a>
            })
    }
}

impl Diagnostic for ParseError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new("meshpath::netfilter::parse"))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(self)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let start = (self.col - 1).min(self.line_text.len());
        let len = self.len.min(self.line_text.len() - start);
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(
            Some("here".to_string()),
            SourceSpan::from((start, len)),
        ))))
    }
}
