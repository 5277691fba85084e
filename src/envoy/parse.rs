//! Entry point: bytes of a dump (JSON, JSON with trailing commas, or YAML) → [`EnvoyConfig`].

use super::convert::Converter;
use super::model::EnvoyConfig;
use super::raw::stream::walk;

/// A dump that could not be read at all. Problems inside an otherwise readable dump are
/// [`crate::envoy::model::Note`]s on the result instead.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Json { line: usize, column: usize, message: String },
    #[error("invalid YAML: {message}")]
    Yaml { message: String },
    #[error("the input is empty")]
    Empty,
}

impl ParseError {
    /// 1-based line and column, when known.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            ParseError::Json { line, column, .. } => Some((*line, *column)),
            _ => None,
        }
    }
}

/// Parses an Envoy `/config_dump` (any shape described in `docs/envoy.md`).
pub fn parse_dump(input: &[u8]) -> Result<EnvoyConfig, ParseError> {
    let first = input.iter().find(|b| !b.is_ascii_whitespace());
    match first {
        None => Err(ParseError::Empty),
        Some(b'{') | Some(b'[') => parse_json(input),
        Some(_) => parse_yaml(input),
    }
}

fn parse_json(input: &[u8]) -> Result<EnvoyConfig, ParseError> {
    match read_json(input, true) {
        Ok(cfg) => Ok(cfg),
        Err(first) => {
            // Envoy's loader accepts a trailing comma; blank such commas out (same length, so
            // lines and columns stay right) and retry once.
            let fixed = blank_trailing_commas(input);
            if fixed == input {
                return Err(json_error(first));
            }
            read_json(&fixed, true).map_err(json_error)
        }
    }
}

fn read_json(input: &[u8], lines_valid: bool) -> Result<EnvoyConfig, serde_json::Error> {
    let mut conv = Converter::new(input, lines_valid);
    let mut de = serde_json::Deserializer::from_slice(input);
    walk(&mut de, &mut conv)?;
    de.end()?;
    Ok(conv.finish())
}

fn json_error(e: serde_json::Error) -> ParseError {
    ParseError::Json { line: e.line(), column: e.column(), message: e.to_string() }
}

fn parse_yaml(input: &[u8]) -> Result<EnvoyConfig, ParseError> {
    let text = std::str::from_utf8(input).map_err(|e| ParseError::Yaml { message: e.to_string() })?;
    // YAML dumps are small in practice; they go through a generic tree once and are then read
    // by the same typed structs (the tree's sorted keys put `@type` first).
    let value: serde_json::Value =
        serde_saphyr::from_str_with_options(text, crate::util::yaml::options_for(text))
            .map_err(|e| ParseError::Yaml { message: yaml_message(&e) })?;
    let json = serde_json::to_vec(&value).map_err(|e| ParseError::Yaml { message: e.to_string() })?;
    read_json(&json, false).map_err(|e| ParseError::Yaml { message: e.to_string() })
}

/// The reader's message and position, without its snippet (the diagnostic shows its own).
fn yaml_message(e: &serde_saphyr::Error) -> String {
    use serde_saphyr::MessageFormatter;
    let core = serde_saphyr::DefaultMessageFormatter.format_message(e.without_snippet());
    match e.location() {
        Some(l) => format!("line {} column {}: {core}", l.line(), l.column()),
        None => core.into_owned(),
    }
}

/// Replaces each `,` that is followed (after whitespace) by `]` or `}` with a space, outside
/// strings.
pub fn blank_trailing_commas(input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    let mut in_str = false;
    let mut escaped = false;
    for i in 0..out.len() {
        let b = out[i];
        if in_str {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_str = false;
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b',' => {
                let next = out[i + 1..].iter().find(|c| !c.is_ascii_whitespace());
                if matches!(next, Some(b']') | Some(b'}')) {
                    out[i] = b' ';
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_commas_are_blanked_outside_strings() {
        let s = br#"{"a": [1, 2, ], "b": "x, }", }"#;
        let f = blank_trailing_commas(s);
        assert_eq!(f.len(), s.len());
        assert!(serde_json::from_slice::<serde_json::Value>(&f).is_ok());
        assert!(String::from_utf8_lossy(&f).contains("\"x, }\""));
    }
}

/// A dump file that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    /// The file's bytes are kept so a diagnostic can show the offending line.
    #[error("{path}: {error}")]
    Parse { path: String, bytes: Vec<u8>, error: ParseError },
}

/// Reads and parses the dump at `path` (a path the caller was handed: `--envoy`, a
/// scenario's `envoy:`).
pub fn load(path: &std::path::Path) -> Result<EnvoyConfig, LoadError> {
    let bytes = crate::util::read::read_file(path)
        .map_err(|source| LoadError::Io { path: path.display().to_string(), source })?;
    parse_dump(&bytes).map_err(|error| LoadError::Parse { path: path.display().to_string(), bytes, error })
}
