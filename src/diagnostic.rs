//! An error located in a file the user handed in: `file:line:col: message`, and for the
//! terminal the line itself with a label under the offending text and a help line (a
//! [`miette::Diagnostic`]). Errors of every layer that know where they come from convert to
//! it, so the position reaches the user instead of being flattened into a sentence.

use std::fmt;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};

/// A message at a place in a file.
#[derive(Debug)]
pub struct FileDiagnostic {
    pub file: String,
    /// 1-based line and column (in characters).
    pub line: usize,
    pub col: usize,
    pub message: String,
    pub help: Option<String>,
    /// Byte offset and length of the offending text in `source`.
    span: (usize, usize),
    source: NamedSource<String>,
}

impl FileDiagnostic {
    /// The whole of line `line` (1-based) of `text` is at fault.
    pub fn at_line(file: &str, text: &str, line: usize, message: impl Into<String>) -> FileDiagnostic {
        let start = line_start(text, line);
        let rest = text.get(start..).unwrap_or("");
        let body = rest.split('\n').next().unwrap_or("").trim_end_matches('\r');
        let indent = body.len() - body.trim_start().len();
        let len = body.trim().len();
        FileDiagnostic::new(file, text, start + indent, len, message)
    }

    /// Line `line`, column `col` (1-based, in characters), `len` bytes.
    pub fn at(
        file: &str,
        text: &str,
        line: usize,
        col: usize,
        len: usize,
        message: impl Into<String>,
    ) -> FileDiagnostic {
        let start = line_start(text, line);
        let offset = text
            .get(start..)
            .unwrap_or("")
            .char_indices()
            .nth(col.saturating_sub(1))
            .map_or(text.len(), |(i, _)| start + i);
        FileDiagnostic::new(file, text, offset, len, message)
    }

    /// `len` bytes at byte `offset` of `text`.
    pub fn new(
        file: &str,
        text: &str,
        offset: usize,
        len: usize,
        message: impl Into<String>,
    ) -> FileDiagnostic {
        let offset = floor_boundary(text, offset.min(text.len()));
        let len = len.min(text.len() - offset);
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        FileDiagnostic {
            file: file.to_string(),
            line,
            col,
            message: message.into(),
            help: None,
            span: (offset, len),
            source: NamedSource::new(file, text.to_string()),
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> FileDiagnostic {
        self.help = Some(help.into());
        self
    }
}

fn line_start(text: &str, line: usize) -> usize {
    text.split_inclusive('\n').take(line.saturating_sub(1)).map(str::len).sum()
}

fn floor_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl fmt::Display for FileDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.col, self.message)
    }
}

impl std::error::Error for FileDiagnostic {}

impl Diagnostic for FileDiagnostic {
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let (offset, len) = self.span;
        Some(Box::new(std::iter::once(LabeledSpan::at(offset..offset + len.max(1), "here"))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_name_the_file() {
        let text = "first\n  -A X -j Y\nthird\n";
        let d = FileDiagnostic::at_line("r.rules", text, 2, "bad");
        assert_eq!((d.line, d.col, d.span), (2, 3, (8, 9)));
        assert_eq!(d.to_string(), "r.rules:2:3: bad");
        let d = FileDiagnostic::at("r.rules", text, 3, 2, 1, "x").with_help("h");
        assert_eq!((d.line, d.col, d.span.0), (3, 2, 19));
        assert_eq!(d.help.as_deref(), Some("h"));
        let past = FileDiagnostic::at("r.rules", text, 9, 1, 4, "past the end");
        assert_eq!(past.span, (text.len(), 0));
    }
}
