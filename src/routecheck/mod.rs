//! A drop-in for Envoy's `router_check_tool`: load a route table and a test file, run every
//! test, report failures in the tool's words and compute its coverage figures.

mod coverage;
mod pbtext;
mod run;
mod schema;
mod strict;
mod testfile;

pub use coverage::unique_route_name;
pub use run::{format_g6, run_suite, CheckRun, TestResult};
pub use testfile::{
    parse_test_file, DynamicMetadataInput, Expectations, KeyValue, RouteMetadataExpectation, TestCase,
    TestFormat, TestInput, TestSuite,
};

use crate::envoy::route::legacy;
use crate::envoy::route::{RouteConfig, RouteConfigError};

/// An input file router_check_tool would refuse: which file, what, and where (1-based line
/// and column) when the parser knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", self.place())]
pub struct InputError {
    pub file: String,
    pub message: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl InputError {
    pub(crate) fn new(file: &str, message: impl Into<String>) -> InputError {
        InputError { file: file.to_string(), message: message.into(), line: None, column: None }
    }

    pub(crate) fn at(file: &str, message: impl Into<String>, line: usize, column: usize) -> InputError {
        InputError { line: Some(line), column: Some(column), ..InputError::new(file, message) }
    }

    pub(crate) fn json(file: &str, e: &serde_json::Error) -> InputError {
        let text = e.to_string();
        let message = match text.rfind(" at line ") {
            Some(i) => text[..i].to_string(),
            None => text,
        };
        InputError::at(file, message, e.line(), e.column())
    }

    pub(crate) fn yaml(file: &str, e: &serde_saphyr::Error) -> InputError {
        use serde_saphyr::MessageFormatter as _;
        // The bare message: the position is ours to show, not repeated with a snippet.
        let message = serde_saphyr::DefaultMessageFormatter.format_message(e.without_snippet()).into_owned();
        match e.location() {
            Some(l) => InputError::at(file, message, l.line() as usize, l.column() as usize),
            None => InputError::new(file, message),
        }
    }

    /// A field the API does not have, in the words of router_check_tool for the syntax the
    /// file is written in, at the first place the field is written in `text`.
    fn unknown_field(file: &str, text: &str, yaml: bool, e: &strict::UnknownField) -> InputError {
        let message = e.text(if yaml { "YAML" } else { "JSON" });
        match key_position(text, &e.key) {
            Some((line, column)) => InputError::at(file, message, line, column),
            None => InputError::new(file, message),
        }
    }

    fn from_config(file: &str, e: &RouteConfigError) -> InputError {
        let message = match e {
            RouteConfigError::Json { message, .. }
            | RouteConfigError::Yaml { message, .. }
            | RouteConfigError::Legacy { message, .. } => message.clone(),
        };
        let message = match message.rfind(" at line ") {
            Some(i) => message[..i].to_string(),
            None => message,
        };
        match e.location() {
            Some((l, c)) => InputError::at(file, message, l, c),
            None => InputError::new(file, message),
        }
    }

    fn place(&self) -> String {
        match (self.line, self.column) {
            (Some(l), Some(c)) => format!("{}:{l}:{c}", self.file),
            _ => self.file.clone(),
        }
    }
}

/// Which form a route configuration file had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigFormat {
    V3Json,
    V3Yaml,
    LegacyV1Json,
    /// A whole `envoy.config.bootstrap.v3.Bootstrap`; the route table is the inline
    /// `route_config` of the named listener's first HTTP connection manager.
    Bootstrap,
}

/// Loads a route table as router_check_tool does: YAML (by `.yaml`/`.yml` name) or JSON, v3
/// or the legacy v1 JSON, rejecting unknown fields anywhere the way the tool's strict proto
/// loader does (`INVALID_ARGUMENT ... no such field`).
pub fn load_route_config(text: &str, name: &str) -> Result<(RouteConfig, ConfigFormat), InputError> {
    load_route_config_for_listener(text, name, None)
}

/// As [`load_route_config`], also accepting a Bootstrap (as the newer tool's `-l LISTENER`
/// does): the route table is the inline `route_config` of the first HTTP connection manager
/// of static listener `listener`.
pub fn load_route_config_for_listener(
    text: &str,
    name: &str,
    listener: Option<&str>,
) -> Result<(RouteConfig, ConfigFormat), InputError> {
    let lower = name.to_ascii_lowercase();
    let yaml = lower.ends_with(".yaml") || lower.ends_with(".yml");
    let value: serde_json::Value = if yaml {
        serde_saphyr::from_str_with_options(text, crate::util::yaml::options_for(text))
            .map_err(|e| InputError::yaml(name, &e))?
    } else {
        serde_json::from_str(&crate::envoy::route::strip_trailing_commas(text))
            .map_err(|e| InputError::json(name, &e))?
    };
    let Some(obj) = value.as_object() else {
        return Err(InputError::new(
            name,
            "Unable to parse JSON as proto (INVALID_ARGUMENT: \
             envoy.config.route.v3.RouteConfiguration must be an object)",
        ));
    };
    if !yaml && legacy::looks_like_v1(&value) {
        let cfg = legacy::from_v1_json(text, name).map_err(|e| InputError::from_config(name, &e))?;
        return Ok((cfg, ConfigFormat::LegacyV1Json));
    }
    if obj.contains_key("static_resources") || obj.contains_key("staticResources") {
        return bootstrap_route_config(&value, name, text, yaml, listener)
            .map(|c| (c, ConfigFormat::Bootstrap));
    }
    strict::check(&value, "envoy.config.route.v3.RouteConfiguration", "")
        .map_err(|e| InputError::unknown_field(name, text, yaml, &e))?;
    let cfg =
        if yaml { RouteConfig::from_yaml_str(text, name) } else { RouteConfig::from_json_str(text, name) }
            .map_err(|e| InputError::from_config(name, &e))?;
    let fmt = if yaml { ConfigFormat::V3Yaml } else { ConfigFormat::V3Json };
    Ok((cfg, fmt))
}

/// 1-based line and column (in bytes) of the first place `key` is written as a key in JSON or
/// YAML text: `"key":`, `key:` or `'key':`, after the start of a line, blanks, `{`, `,` or `- `.
fn key_position(text: &str, key: &str) -> Option<(usize, usize)> {
    for (line_no, line) in text.split('\n').enumerate() {
        let bytes = line.as_bytes();
        let mut from = 0;
        while let Some(found) = line.get(from..).and_then(|rest| rest.find(key)) {
            let at = from + found;
            from = at + key.len();
            let quote = at.checked_sub(1).and_then(|i| bytes.get(i)).filter(|c| matches!(c, b'"' | b'\''));
            let start = at - usize::from(quote.is_some());
            let before_ok = start == 0
                || bytes.get(start - 1).is_some_and(|c| matches!(c, b' ' | b'\t' | b'{' | b',' | b'-'));
            let mut end = at + key.len();
            if let Some(q) = quote {
                if bytes.get(end) != Some(q) {
                    continue;
                }
                end += 1;
            }
            let after = line.get(end..).unwrap_or("").trim_start_matches([' ', '\t']);
            if before_ok && after.starts_with(':') {
                return Some((line_no + 1, start + 1));
            }
        }
    }
    None
}

fn field<'a>(v: &'a serde_json::Value, snake: &str, camel: &str) -> Option<&'a serde_json::Value> {
    v.get(snake).or_else(|| v.get(camel))
}

fn bootstrap_route_config(
    doc: &serde_json::Value,
    name: &str,
    text: &str,
    yaml: bool,
    listener: Option<&str>,
) -> Result<RouteConfig, InputError> {
    let listeners: Vec<&serde_json::Value> = field(doc, "static_resources", "staticResources")
        .and_then(|s| s.get("listeners"))
        .and_then(|l| l.as_array())
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let names: Vec<&str> = listeners.iter().filter_map(|l| l.get("name").and_then(|n| n.as_str())).collect();
    let Some(wanted) = listener else {
        return Err(InputError::new(
            name,
            format!(
                "a Bootstrap needs --listener NAME to choose the route table (static \
                 listeners: {})",
                names.join(", ")
            ),
        ));
    };
    let (li, l) = listeners
        .iter()
        .enumerate()
        .find(|(_, l)| l.get("name").and_then(|n| n.as_str()) == Some(wanted))
        .ok_or_else(|| {
            InputError::new(
                name,
                format!("no static listener named {wanted:?} (static listeners: {})", names.join(", ")),
            )
        })?;
    let chains =
        field(l, "filter_chains", "filterChains").and_then(|c| c.as_array()).cloned().unwrap_or_default();
    for (ci, chain) in chains.iter().enumerate() {
        let filters = chain.get("filters").and_then(|f| f.as_array()).cloned().unwrap_or_default();
        for (fi, f) in filters.iter().enumerate() {
            let Some(tc) = field(f, "typed_config", "typedConfig") else {
                continue;
            };
            let is_hcm = tc
                .get("@type")
                .and_then(|t| t.as_str())
                .is_some_and(|t| t.ends_with("HttpConnectionManager"));
            let Some(rc) = field(tc, "route_config", "routeConfig").filter(|_| is_hcm) else {
                continue;
            };
            let at = format!(
                "static_resources.listeners[{li}].filter_chains[{ci}].filters[{fi}].typed_config.route_config"
            );
            strict::check(rc, "envoy.config.route.v3.RouteConfiguration", &at)
                .map_err(|e| InputError::unknown_field(name, text, yaml, &e))?;
            let mut cfg: RouteConfig = serde_json::from_value(rc.clone())
                .map_err(|e| InputError::new(name, format!("{at}: {e}")))?;
            cfg.assign_sources();
            return Ok(cfg);
        }
    }
    Err(InputError::new(
        name,
        format!("listener {wanted:?} has no HTTP connection manager with an inline route_config"),
    ))
}
