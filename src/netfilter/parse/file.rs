//! Reading a rule file from a path handed in by the caller (the CLI's `--iptables`, a
//! scenario's `iptables:`): iptables-save output, restore-style rules or an istio-init log.

use std::path::Path;

use super::{parse, ParseError, ParseOptions, Parsed};

/// A rule file that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error(transparent)]
    Parse(#[from] ParseError),
}

impl ReadError {
    /// The located parse error, when the file was read but did not parse.
    pub fn parse_error(&self) -> Option<&ParseError> {
        match self {
            ReadError::Parse(e) => Some(e),
            ReadError::Io { .. } => None,
        }
    }
}

/// Reads and parses `path`; the text is returned for showing rules in reports.
pub fn read_rules(path: &Path, opts: ParseOptions) -> Result<(String, Parsed), ReadError> {
    let text = crate::util::read::read_text(path)
        .map_err(|source| ReadError::Io { path: path.display().to_string(), source })?;
    let parsed = parse(&path.display().to_string(), &text, opts)?;
    Ok((text, parsed))
}
