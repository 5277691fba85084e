//! Why a scenario file could not be loaded: the YAML itself (syntax, unknown keys, bad
//! values), or what it says (an unknown pod, a duplicate probe, a referenced file that is
//! missing or does not parse). Every error points into the YAML; [`ScenarioError::report`]
//! turns it into a miette report with the snippet and a help line.

use std::fmt;
use std::sync::Arc;

use serde_saphyr::Location;

use crate::diagnostic::{clean_message, Excerpt};

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The scenario file itself cannot be read.
    #[error("cannot read {file}: {source}")]
    Io { file: String, source: std::io::Error },
    /// Not valid YAML, or not the shape of a scenario (unknown key, missing key, bad value).
    #[error("{file}: {error}")]
    Yaml { file: String, text: Arc<String>, error: Box<serde_saphyr::Error> },
    /// Valid YAML that says something impossible; located at the offending value.
    #[error("{}", .0)]
    Semantic(Box<Located>),
}

/// A message at a place in the scenario file.
#[derive(Debug)]
pub struct Located {
    pub file: String,
    /// 1-based line and column (in characters).
    pub line: usize,
    pub col: usize,
    pub message: String,
    pub help: String,
    /// Byte range of the offending value.
    pub span: (usize, usize),
    pub text: Arc<String>,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.col, self.message)
    }
}

impl std::error::Error for Located {}

impl ScenarioError {
    /// The error as a miette report: file, line and column, a short escaped window of the
    /// offending line, a help line.
    pub fn report(&self) -> miette::Report {
        match self {
            ScenarioError::Io { .. } => miette::miette!("{}", clean_message(&self.to_string())),
            ScenarioError::Yaml { file, text, error } => {
                use serde_saphyr::MessageFormatter;
                let core = serde_saphyr::DefaultMessageFormatter.format_message(error.without_snippet());
                let what = format!("not a valid scenario file (docs/scenarios.md, {})", super::SCHEMA);
                let Some(loc) = error.location() else {
                    return miette::miette!("{file}: {what}: {}", clean_message(&core));
                };
                let (start, len) = byte_span(text, &loc);
                let excerpt = Excerpt::new(file, text, start, len);
                let (line, col) = (loc.line() as usize, loc.column() as usize);
                let diag = miette::MietteDiagnostic::new(format!("{file}:{line}:{col}: {what}"))
                    .with_labels(vec![excerpt.label(&clean_message(&core))]);
                miette::Report::new(diag).with_source_code(excerpt)
            }
            ScenarioError::Semantic(l) => {
                let excerpt = Excerpt::new(&l.file, &l.text, l.span.0, l.span.1);
                let diag = miette::MietteDiagnostic::new(clean_message(&l.to_string()))
                    .with_help(l.help.clone())
                    .with_labels(vec![excerpt.label("here")]);
                miette::Report::new(diag).with_source_code(excerpt)
            }
        }
    }

    /// 1-based line and column in the scenario file, when known.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            ScenarioError::Io { .. } => None,
            ScenarioError::Yaml { error, .. } => {
                error.location().map(|l| (l.line() as usize, l.column() as usize))
            }
            ScenarioError::Semantic(l) => Some((l.line, l.col)),
        }
    }
}

/// Builds located errors for one scenario file.
pub(crate) struct At {
    pub file: String,
    pub text: Arc<String>,
}

impl At {
    pub fn error(
        &self,
        loc: &Location,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> ScenarioError {
        let (start, len) = byte_span(&self.text, loc);
        ScenarioError::Semantic(Box::new(Located {
            file: self.file.clone(),
            line: loc.line() as usize,
            col: loc.column() as usize,
            message: message.into(),
            help: help.into(),
            span: (start, len),
            text: self.text.clone(),
        }))
    }
}

/// The byte range of a located value: from the span's byte information when the reader kept
/// it, else from line and column; a zero length becomes the rest of the line's token.
pub(crate) fn byte_span(text: &str, loc: &Location) -> (usize, usize) {
    let span = loc.span();
    let start = match span.byte_offset() {
        Some(o) => o as usize,
        None => {
            let line = (loc.line() as usize).max(1);
            let line_start: usize = text.split_inclusive('\n').take(line - 1).map(str::len).sum();
            let col = (loc.column() as usize).max(1) - 1;
            line_start
                + text.get(line_start..).unwrap_or("").char_indices().nth(col).map(|(i, _)| i).unwrap_or(0)
        }
    };
    let start = start.min(text.len());
    let len = match span.byte_len() {
        Some(l) if l > 0 => l as usize,
        _ => text.get(start..).unwrap_or("").find(['\n', ' ', ',', ']', '}']).unwrap_or(0),
    };
    (start, len.min(text.len() - start))
}
