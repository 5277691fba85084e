//! An error located in a file the user handed in: `file:line:col: message`, and for the
//! terminal the line itself with a label under the offending text and a help line (a
//! [`miette::Diagnostic`]). Errors of every layer that know where they come from convert to
//! it, so the position reaches the user instead of being flattened into a sentence.
//!
//! The snippet is an [`Excerpt`]: a short window of the one line around the error, with
//! control characters escaped, numbered with the real line and column. A minified dump of one
//! line of megabytes, or a scenario pointing at a secret, never echoes more than that.

use std::fmt;

use miette::{Diagnostic, LabeledSpan, MietteSpanContents, SourceCode, SourceSpan, SpanContents};

use crate::util::escape::push_escaped;

/// Characters of the line shown before the error, and at most of the error itself and after it.
const WINDOW_BEFORE: usize = 60;
const WINDOW_SPAN: usize = 40;
const WINDOW_AFTER: usize = 60;
/// Characters of a message kept (a message may quote the input).
pub const MESSAGE_CHARS: usize = 400;

/// A short, escaped window of one line of a file around a span, as miette source code: the
/// snippet shows the real line number and column, the label sits under the span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Excerpt {
    name: String,
    text: String,
    /// 0-based line and column (in characters) of the span's start in the real file.
    line: usize,
    col: usize,
    /// The span in `text`.
    span: (usize, usize),
}

impl Excerpt {
    /// The window of `source` around `len` bytes at byte `offset` (clamped into the text).
    pub fn new(name: &str, source: &str, offset: usize, len: usize) -> Excerpt {
        let offset = floor_boundary(source, offset.min(source.len()));
        let line_start = source[..offset].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[offset..].find('\n').map_or(source.len(), |i| offset + i);
        let line_end =
            if source[..line_end].ends_with('\r') && line_end > offset { line_end - 1 } else { line_end };
        let span_end = floor_boundary(source, (offset + len).min(line_end));
        let before = &source[line_start..offset];
        let col = before.chars().count();
        let line = memchr_count(&source.as_bytes()[..line_start]);
        let mut text = String::new();
        let skip = col.saturating_sub(WINDOW_BEFORE);
        if skip > 0 {
            text.push('…');
        }
        before.chars().skip(skip).for_each(|c| push_escaped(&mut text, c));
        let start = text.len();
        let mut chars = source[offset..span_end].chars();
        chars.by_ref().take(WINDOW_SPAN).for_each(|c| push_escaped(&mut text, c));
        let cut_span = chars.next().is_some();
        let end = text.len();
        if cut_span {
            text.push('…');
        } else {
            let mut after = source[span_end..line_end].chars();
            after.by_ref().take(WINDOW_AFTER).for_each(|c| push_escaped(&mut text, c));
            if after.next().is_some() {
                text.push('…');
            }
        }
        let name = crate::util::escape::escape_control(name).into_owned();
        Excerpt { name, text, line, col, span: (start, end - start) }
    }

    /// The window of line `line` (1-based) of a file, given as the text of that line alone.
    pub fn in_line(name: &str, line_text: &str, line: usize, offset: usize, len: usize) -> Excerpt {
        let mut e = Excerpt::new(name, line_text, offset, len);
        e.line += line.saturating_sub(1);
        e
    }

    /// 1-based line and column (in characters) of the span in the real file.
    pub fn position(&self) -> (usize, usize) {
        (self.line + 1, self.col + 1)
    }

    /// The shown window itself.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// A label under the span, in the excerpt's own offsets.
    pub fn label(&self, label: &str) -> LabeledSpan {
        LabeledSpan::new_with_span(
            Some(label.to_string()),
            SourceSpan::from((self.span.0, self.span.1.max(1))),
        )
    }
}

impl SourceCode for Excerpt {
    fn read_span<'a>(
        &'a self,
        _span: &SourceSpan,
        _before: usize,
        _after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, miette::MietteError> {
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            self.text.as_bytes(),
            SourceSpan::from((0, self.text.len())),
            self.line,
            self.col,
            1,
        )))
    }
}

/// A message as shown: control characters other than newlines escaped, at most
/// [`MESSAGE_CHARS`] characters.
pub fn clean_message(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(MESSAGE_CHARS + 8));
    for (n, c) in message.chars().enumerate() {
        if n == MESSAGE_CHARS {
            out.push('…');
            break;
        }
        match c {
            '\n' => out.push(c),
            c => push_escaped(&mut out, c),
        }
    }
    out
}

fn memchr_count(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

/// A message at a place in a file.
#[derive(Debug)]
pub struct FileDiagnostic {
    pub file: String,
    /// 1-based line and column (in characters).
    pub line: usize,
    pub col: usize,
    pub message: String,
    pub help: Option<String>,
    /// Byte offset and length of the offending text in the file.
    span: (usize, usize),
    source: Excerpt,
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
        let source = Excerpt::new(file, text, offset, len);
        let (line, col) = source.position();
        FileDiagnostic {
            file: crate::util::escape::escape_control(file).into_owned(),
            line,
            col,
            message: clean_message(&message.into()),
            help: None,
            span: (offset, len),
            source,
        }
    }

    /// Byte offset and length of the offending text in the file.
    pub fn span(&self) -> (usize, usize) {
        self.span
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
        Some(Box::new(std::iter::once(self.source.label("here"))))
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
