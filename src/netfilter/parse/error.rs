//! Parse errors that point at the exact spot: `file:line:col`, the line itself, a label under
//! the offending token, and what to do about it.

use std::fmt;

use miette::{Diagnostic, LabeledSpan, SourceCode};

use crate::diagnostic::{clean_message, Excerpt};

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
    /// A short escaped window of the offending line, for the snippet.
    excerpt: Box<Excerpt>,
}

impl ParseError {
    pub fn at(file: &str, line_no: u32, line_text: &str, problem: Problem) -> Self {
        ParseError {
            file: crate::util::escape::escape_control(file).into_owned(),
            line: line_no,
            col: problem.col + 1,
            message: clean_message(&problem.message),
            help: problem.help,
            excerpt: Box::new(Excerpt::in_line(
                file,
                line_text,
                line_no as usize,
                problem.col,
                problem.len.max(1),
            )),
        }
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
        Some(&*self.excerpt)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(std::iter::once(self.excerpt.label("here"))))
    }
}
