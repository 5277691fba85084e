//! router_check_tool loads the route table with a strict proto parser: an unknown field
//! anywhere is an error (`INVALID_ARGUMENT ... no such field`). This walks the document with
//! the API's field lists (see `schema.rs`) so a misspelt `clustr:` fails here too instead of
//! silently routing to no cluster.

use serde_json::Value;

use super::schema::MESSAGES;

/// v2 spellings the model still reads (and Envoy's v2 API had).
const V2_FIELDS: &[(&str, &str)] =
    &[("envoy.config.route.v3.RouteMatch", "regex"), ("envoy.config.route.v3.RouteAction", "host_rewrite")];

fn camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// A field the API does not have: the message it appeared in, its path from the document's
/// root and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct UnknownField {
    pub message: &'static str,
    pub path: String,
    pub key: String,
}

impl UnknownField {
    /// router_check_tool's words (protobuf's JSON parser status; Envoy reads YAML by
    /// converting it to JSON), with `syntax` (`JSON` or `YAML`) naming what the user wrote.
    pub fn text(&self, syntax: &str) -> String {
        format!(
            "Unable to parse {syntax} as proto (INVALID_ARGUMENT: invalid {syntax} in {} @ {}: no such \
             field: '{}')",
            self.message, self.path, self.key
        )
    }
}

/// Checks `value` (a `message`) and everything below it; the error names the message, the
/// JSON path and the field.
pub(super) fn check(value: &Value, message: &str, path: &str) -> Result<(), UnknownField> {
    let Some(obj) = value.as_object() else {
        return Ok(());
    };
    let Some((message, fields)) = MESSAGES.iter().find(|(m, _)| *m == message).map(|(m, f)| (*m, *f)) else {
        return Ok(());
    };
    for (key, child) in obj {
        if key == "@type" {
            continue;
        }
        let here = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
        let found = fields.iter().find(|(f, _)| *f == key || camel(f) == *key);
        let Some((_, held)) = found else {
            if V2_FIELDS.iter().any(|(m, f)| *m == message && f == key) {
                continue;
            }
            return Err(UnknownField { message, path: here, key: key.clone() });
        };
        let Some(held) = held else { continue };
        match child {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    check(item, held, &format!("{here}[{i}]"))?;
                }
            }
            other => check(other, held, &here)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misspelt_nested_fields_are_reported_with_their_path() {
        let v: Value = serde_json::from_str(
            r#"{"virtualHosts":[{"name":"v","domains":["*"],"routes":[{"match":{"prefix":"/"},
            "route":{"clustr":"x"}}]}]}"#,
        )
        .unwrap();
        let e = check(&v, "envoy.config.route.v3.RouteConfiguration", "").unwrap_err().text("JSON");
        assert!(
            e.contains("envoy.config.route.v3.RouteAction @ virtualHosts[0].routes[0].route.clustr"),
            "{e}"
        );
        let ok: Value = serde_json::from_str(
            r#"{"@type":"x","virtual_hosts":[{"name":"v","domains":["*"],"typed_per_filter_config":{"a":{"b":1}},
            "routes":[{"match":{"prefix":"/","headers":[{"name":"h","string_match":{"exact":"x"}}]},
            "route":{"weighted_clusters":{"clusters":[{"name":"a","weight":1}]}},
            "metadata":{"filter_metadata":{"istio":{"config":"x"}}}}]}]}"#,
        )
        .unwrap();
        assert_eq!(check(&ok, "envoy.config.route.v3.RouteConfiguration", ""), Ok(()));
    }
}
