//! A JSON Schema (draft 2020-12) validator for the subset of keywords the schemas in docs/ use.
//!
//! Supported: boolean schemas, `type` (one name or a list), `const`, `enum`, `properties`,
//! `required`, `additionalProperties`, `propertyNames`, `items`, `prefixItems`, `minItems`,
//! `maxItems`, `minimum`, `maximum`, `minLength`, `pattern`, `oneOf`, `anyOf`, `allOf`, and
//! `$ref` to `#/$defs/NAME`. Annotations (`$schema`, `$id`, `title`, `description`,
//! `$comment`, `$defs`) are read and ignored. Any other keyword makes [`Schema::new`] fail, so
//! a schema cannot use a keyword this validator would silently skip.

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::Value;

const ANNOTATIONS: &[&str] = &["$schema", "$id", "title", "description", "$comment", "$defs"];
const KEYWORDS: &[&str] = &[
    "type",
    "const",
    "enum",
    "properties",
    "required",
    "additionalProperties",
    "propertyNames",
    "items",
    "prefixItems",
    "minItems",
    "maxItems",
    "minimum",
    "maximum",
    "minLength",
    "pattern",
    "oneOf",
    "anyOf",
    "allOf",
    "$ref",
];

/// A schema document, checked to use only the supported keywords, its patterns compiled.
pub struct Schema {
    root: Value,
    patterns: BTreeMap<String, Regex>,
}

impl Schema {
    pub fn new(root: Value) -> Result<Schema, String> {
        let mut s = Schema { root, patterns: BTreeMap::new() };
        let root = s.root.clone();
        s.check_schema(&root, "#")?;
        Ok(s)
    }

    /// The errors of `doc` against the whole schema, each with its JSON pointer; empty when
    /// it is valid.
    pub fn validate(&self, doc: &Value) -> Vec<String> {
        let mut errs = Vec::new();
        self.check(&self.root, doc, "", &mut errs);
        errs
    }

    /// The errors of `doc` against `#/$defs/NAME`.
    pub fn validate_def(&self, name: &str, doc: &Value) -> Vec<String> {
        let mut errs = Vec::new();
        match self.root["$defs"].get(name) {
            Some(def) => self.check(def, doc, "", &mut errs),
            None => errs.push(format!("the schema has no $defs/{name}")),
        }
        errs
    }

    fn check_schema(&mut self, s: &Value, at: &str) -> Result<(), String> {
        let obj = match s {
            Value::Bool(_) => return Ok(()),
            Value::Object(o) => o,
            _ => return Err(format!("{at}: a schema is an object or a boolean")),
        };
        for (k, v) in obj {
            let here = format!("{at}/{k}");
            match k.as_str() {
                "$defs" | "properties" => {
                    for (name, sub) in v.as_object().ok_or(format!("{here}: not an object"))? {
                        self.check_schema(sub, &format!("{here}/{name}"))?;
                    }
                }
                "additionalProperties" | "propertyNames" | "items" => self.check_schema(v, &here)?,
                "prefixItems" | "oneOf" | "anyOf" | "allOf" => {
                    for (i, sub) in v.as_array().ok_or(format!("{here}: not an array"))?.iter().enumerate() {
                        self.check_schema(sub, &format!("{here}/{i}"))?;
                    }
                }
                "$ref" => {
                    let r = v.as_str().ok_or(format!("{here}: not a string"))?;
                    let name = r.strip_prefix("#/$defs/").ok_or(format!("{here}: only #/$defs/NAME"))?;
                    if self.root["$defs"].get(name).is_none() {
                        return Err(format!("{here}: no $defs/{name}"));
                    }
                }
                "pattern" => {
                    let p = v.as_str().ok_or(format!("{here}: not a string"))?;
                    let re = Regex::new(p).map_err(|e| format!("{here}: {e}"))?;
                    self.patterns.insert(p.to_string(), re);
                }
                _ if ANNOTATIONS.contains(&k.as_str()) || KEYWORDS.contains(&k.as_str()) => {}
                _ => return Err(format!("{here}: keyword not supported by this validator")),
            }
        }
        Ok(())
    }

    fn check(&self, s: &Value, v: &Value, at: &str, errs: &mut Vec<String>) {
        let obj = match s {
            Value::Bool(true) => return,
            Value::Bool(false) => return errs.push(format!("{}: not allowed here", ptr(at))),
            Value::Object(o) => o,
            _ => return,
        };
        if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
            let name = r.trim_start_matches("#/$defs/");
            self.check(&self.root["$defs"][name], v, at, errs);
        }
        if let Some(t) = obj.get("type") {
            let names: Vec<&str> = match t {
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                _ => t.as_str().into_iter().collect(),
            };
            if !names.iter().any(|n| has_type(v, n)) {
                errs.push(format!("{}: expected {}, got {}", ptr(at), names.join(" or "), short(v)));
                return;
            }
        }
        if let Some(c) = obj.get("const") {
            if c != v {
                errs.push(format!("{}: expected {c}, got {}", ptr(at), short(v)));
            }
        }
        if let Some(Value::Array(e)) = obj.get("enum") {
            if !e.contains(v) {
                errs.push(format!("{}: {} is not one of {}", ptr(at), short(v), Value::Array(e.clone())));
            }
        }
        match v {
            Value::Object(m) => self.check_object(obj, m, at, errs),
            Value::Array(a) => self.check_array(obj, a, at, errs),
            Value::String(st) => {
                if obj
                    .get("minLength")
                    .and_then(Value::as_u64)
                    .is_some_and(|n| (st.chars().count() as u64) < n)
                {
                    errs.push(format!("{}: shorter than minLength", ptr(at)));
                }
                if let Some(p) = obj.get("pattern").and_then(Value::as_str) {
                    if !self.patterns[p].is_match(st) {
                        errs.push(format!("{}: {st:?} does not match {p}", ptr(at)));
                    }
                }
            }
            Value::Number(n) => {
                let x = n.as_f64().unwrap_or(f64::NAN);
                if obj.get("minimum").and_then(Value::as_f64).is_some_and(|m| x < m) {
                    errs.push(format!("{}: {n} is below the minimum {}", ptr(at), obj["minimum"]));
                }
                if obj.get("maximum").and_then(Value::as_f64).is_some_and(|m| x > m) {
                    errs.push(format!("{}: {n} is above the maximum {}", ptr(at), obj["maximum"]));
                }
            }
            _ => {}
        }
        if let Some(Value::Array(all)) = obj.get("allOf") {
            for sub in all {
                self.check(sub, v, at, errs);
            }
        }
        for (key, exactly_one) in [("oneOf", true), ("anyOf", false)] {
            let Some(Value::Array(alts)) = obj.get(key) else { continue };
            let results: Vec<Vec<String>> = alts
                .iter()
                .map(|sub| {
                    let mut e = Vec::new();
                    self.check(sub, v, at, &mut e);
                    e
                })
                .collect();
            let ok = results.iter().filter(|e| e.is_empty()).count();
            if ok == 0 {
                // The alternative that came closest says what is wrong.
                let closest = results.iter().min_by_key(|e| e.len()).cloned().unwrap_or_default();
                errs.push(format!(
                    "{}: matches none of the {} alternatives of {key}; closest:",
                    ptr(at),
                    alts.len()
                ));
                errs.extend(closest.into_iter().map(|e| format!("  {e}")));
            } else if exactly_one && ok > 1 {
                errs.push(format!("{}: matches {ok} alternatives of oneOf, expected one", ptr(at)));
            }
        }
    }

    fn check_object(
        &self,
        s: &serde_json::Map<String, Value>,
        m: &serde_json::Map<String, Value>,
        at: &str,
        errs: &mut Vec<String>,
    ) {
        if let Some(Value::Array(req)) = s.get("required") {
            for r in req.iter().filter_map(Value::as_str) {
                if !m.contains_key(r) {
                    errs.push(format!("{}: missing required property {r:?}", ptr(at)));
                }
            }
        }
        let props = s.get("properties").and_then(Value::as_object);
        for (k, val) in m {
            let here = format!("{at}/{k}");
            if let Some(names) = s.get("propertyNames") {
                self.check(names, &Value::String(k.clone()), &here, errs);
            }
            match props.and_then(|p| p.get(k)) {
                Some(sub) => self.check(sub, val, &here, errs),
                None => match s.get("additionalProperties") {
                    Some(Value::Bool(false)) => errs.push(format!("{}: property not allowed", ptr(&here))),
                    Some(sub) => self.check(sub, val, &here, errs),
                    None => {}
                },
            }
        }
    }

    fn check_array(&self, s: &serde_json::Map<String, Value>, a: &[Value], at: &str, errs: &mut Vec<String>) {
        let len = a.len() as u64;
        if s.get("minItems").and_then(Value::as_u64).is_some_and(|n| len < n) {
            errs.push(format!("{}: {len} items, fewer than minItems {}", ptr(at), s["minItems"]));
        }
        if s.get("maxItems").and_then(Value::as_u64).is_some_and(|n| len > n) {
            errs.push(format!("{}: {len} items, more than maxItems {}", ptr(at), s["maxItems"]));
        }
        let prefix = s.get("prefixItems").and_then(Value::as_array).map_or(&[][..], |p| p.as_slice());
        for (i, item) in a.iter().enumerate() {
            let here = format!("{at}/{i}");
            match (prefix.get(i), s.get("items")) {
                (Some(sub), _) | (None, Some(sub)) => self.check(sub, item, &here, errs),
                (None, None) => {}
            }
        }
    }
}

fn has_type(v: &Value, name: &str) -> bool {
    match name {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|x| x.fract() == 0.0),
        _ => false,
    }
}

fn ptr(at: &str) -> &str {
    if at.is_empty() {
        "(document)"
    } else {
        at
    }
}

/// A value in a few words, for messages.
fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}...", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}
