//! `request_headers_to_add` / `response_headers_to_add` and their removal lists, evaluated the
//! way Envoy's `HeaderParser::evaluateHeaders` does: removals first, then additions in order,
//! each honouring its `append_action` (E:source/common/router/header_parser.cc).

use serde::de::Deserializer;
use serde::Deserialize;

use super::de::{enum_index, opt_bool_lenient};
use super::matchers::HeaderMap;

/// `envoy.config.core.v3.HeaderValueOption`.
#[derive(Debug, Clone, Deserialize)]
pub struct HeaderValueOption {
    pub header: HeaderValue,
    /// Deprecated BoolValue `append`; `false` means overwrite.
    #[serde(default, deserialize_with = "opt_bool_lenient")]
    pub append: Option<bool>,
    #[serde(default, alias = "appendAction", deserialize_with = "append_action")]
    pub append_action: Option<AppendAction>,
    #[serde(default, alias = "keepEmptyValue", deserialize_with = "super::de::bool_lenient")]
    pub keep_empty_value: bool,
}

/// `envoy.config.core.v3.HeaderValue`.
#[derive(Debug, Clone, Deserialize)]
pub struct HeaderValue {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

/// `HeaderValueOption.HeaderAppendAction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendAction {
    AppendIfExistsOrAdd,
    AddIfAbsent,
    OverwriteIfExistsOrAdd,
    OverwriteIfExists,
}

fn append_action<'de, D: Deserializer<'de>>(d: D) -> Result<Option<AppendAction>, D::Error> {
    const NAMES: &[&str] =
        &["APPEND_IF_EXISTS_OR_ADD", "ADD_IF_ABSENT", "OVERWRITE_IF_EXISTS_OR_ADD", "OVERWRITE_IF_EXISTS"];
    Ok(Some(
        [
            AppendAction::AppendIfExistsOrAdd,
            AppendAction::AddIfAbsent,
            AppendAction::OverwriteIfExistsOrAdd,
            AppendAction::OverwriteIfExists,
        ][enum_index(d, "append_action", NAMES)?],
    ))
}

impl HeaderValueOption {
    /// A plain `{key, value}` addition with the default (append) action.
    pub fn new(key: &str, value: &str) -> HeaderValueOption {
        HeaderValueOption {
            header: HeaderValue { key: key.to_string(), value: value.to_string() },
            append: None,
            append_action: None,
            keep_empty_value: false,
        }
    }

    /// The effective action: `append_action`, else the deprecated `append`, else append.
    pub fn action(&self) -> AppendAction {
        match (self.append_action, self.append) {
            (Some(a), _) => a,
            (None, Some(false)) => AppendAction::OverwriteIfExistsOrAdd,
            _ => AppendAction::AppendIfExistsOrAdd,
        }
    }
}

/// What header formatters (`%DOWNSTREAM_REMOTE_ADDRESS%`, `%REQ(x)%`) may read.
#[derive(Debug, Clone, Default)]
pub struct FormatContext {
    /// The downstream peer (`ip:port`); router_check_tool uses `127.0.0.1:0`.
    pub downstream_remote_address: String,
    pub request_headers: HeaderMap,
}

/// Applies one level (route, virtual host or route configuration) of header mutations.
pub fn evaluate(
    headers: &mut HeaderMap,
    to_add: &[HeaderValueOption],
    to_remove: &[String],
    ctx: &FormatContext,
) {
    for name in to_remove {
        headers.remove(name);
    }
    for opt in to_add {
        let value = format_value(&opt.header.value, ctx);
        if value.is_empty() && !opt.keep_empty_value {
            continue;
        }
        let key = &opt.header.key;
        match opt.action() {
            AppendAction::AppendIfExistsOrAdd => headers.add(key, &value),
            AppendAction::AddIfAbsent => {
                if !headers.contains(key) {
                    headers.add(key, &value);
                }
            }
            AppendAction::OverwriteIfExists => {
                if headers.contains(key) {
                    headers.set(key, &value);
                }
            }
            AppendAction::OverwriteIfExistsOrAdd => headers.set(key, &value),
        }
    }
}

/// Expands the formatter commands the route layer can know; others stay verbatim.
pub fn format_value(template: &str, ctx: &FormatContext) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('%') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        if let Some(stripped) = after.strip_prefix('%') {
            out.push('%');
            rest = stripped;
            continue;
        }
        let Some(end) = after.find('%') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let command = &after[..end];
        match expand(command, ctx) {
            Some(v) => out.push_str(&v),
            None => {
                out.push('%');
                out.push_str(command);
                out.push('%');
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

fn expand(command: &str, ctx: &FormatContext) -> Option<String> {
    let addr = ctx.downstream_remote_address.as_str();
    let without_port = || match addr.rfind(':') {
        Some(i) if !addr.starts_with('[') || addr[..i].ends_with(']') => {
            addr[..i].trim_start_matches('[').trim_end_matches(']').to_string()
        }
        _ => addr.to_string(),
    };
    match command {
        "DOWNSTREAM_REMOTE_ADDRESS" | "DOWNSTREAM_DIRECT_REMOTE_ADDRESS" => Some(addr.to_string()),
        "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT" | "DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT" => {
            Some(without_port())
        }
        "PROTOCOL" => Some("HTTP/1.1".to_string()),
        _ => {
            let inner = command.strip_prefix("REQ(")?.strip_suffix(')')?;
            let name = inner.split('?').next().unwrap_or(inner);
            Some(ctx.request_headers.get(name).unwrap_or("").to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removal_happens_before_addition() {
        let mut h = HeaderMap::default();
        h.add("x-a", "old");
        evaluate(
            &mut h,
            &[HeaderValueOption::new("x-a", "new")],
            &["x-a".to_string()],
            &FormatContext::default(),
        );
        assert_eq!(h.get_joined("x-a").as_deref(), Some("new"));
    }

    #[test]
    fn formatter_commands() {
        let ctx = FormatContext {
            downstream_remote_address: "127.0.0.1:0".into(),
            request_headers: HeaderMap::default(),
        };
        assert_eq!(format_value("%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", &ctx), "127.0.0.1");
        assert_eq!(format_value("a%%b %UNKNOWN%", &ctx), "a%b %UNKNOWN%");
    }
}
