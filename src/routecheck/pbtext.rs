//! A small reader for protobuf text format (`.pb_text`), enough for router_check_tool test
//! files: fields, nested messages (`{}` or `<>`), lists, strings, numbers and identifiers.
//! The result is a JSON value so the same serde types read every test-file form.

use serde_json::{Map, Value};

/// Fields of the router_check_tool schema that are `repeated`: always arrays in the output.
const REPEATED: &[&str] = &[
    "tests",
    "additional_request_headers",
    "additional_response_headers",
    "dynamic_metadata",
    "request_header_matches",
    "response_header_matches",
    "request_header_fields",
    "response_header_fields",
    "route_metadata",
];

/// How deep messages and lists may nest. The router_check_tool schema nests about six deep;
/// the limit keeps a crafted file (30,000 nested messages) from overflowing the stack, as
/// serde_json's own limit (128) does for the JSON form.
pub const MAX_DEPTH: usize = 100;

/// Parses text format into a JSON object; the error is (message, line, column).
pub fn parse(text: &str) -> Result<Value, (String, usize, usize)> {
    let mut p = Parser { chars: text.chars().collect(), pos: 0, depth: 0 };
    let v = p.message(None)?;
    p.skip_ws();
    if p.pos < p.chars.len() {
        return Err(p.err("unexpected text after the last field"));
    }
    Ok(v)
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    /// Messages and lists open around the current position.
    depth: usize,
}

impl Parser {
    fn err(&self, msg: &str) -> (String, usize, usize) {
        let mut line = 1;
        let mut col = 1;
        for c in self.chars.iter().take(self.pos) {
            if *c == '\n' {
                line += 1;
                col = 1;
            } else {
                col += 1;
            }
        }
        (msg.to_string(), line, col)
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() || c == ',' || c == ';' {
                self.pos += 1;
            } else if c == '#' {
                while let Some(c) = self.peek() {
                    self.pos += 1;
                    if c == '\n' {
                        break;
                    }
                }
            } else {
                break;
            }
        }
    }

    fn ident(&mut self) -> Option<String> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_alphanumeric() || c == '_' || c == '.' || c == '-' || c == '+' {
                self.pos += 1;
            } else {
                break;
            }
        }
        (self.pos > start).then(|| self.chars[start..self.pos].iter().collect())
    }

    fn message(&mut self, close: Option<char>) -> Result<Value, (String, usize, usize)> {
        let mut map = Map::new();
        loop {
            self.skip_ws();
            match (self.peek(), close) {
                (None, None) => break,
                (None, Some(c)) => return Err(self.err(&format!("missing '{c}'"))),
                (Some(c), Some(cl)) if c == cl => {
                    self.pos += 1;
                    break;
                }
                _ => {}
            }
            let name = self.ident().ok_or_else(|| self.err("expected a field name"))?;
            self.skip_ws();
            let mut had_colon = false;
            if self.peek() == Some(':') {
                self.pos += 1;
                had_colon = true;
                self.skip_ws();
            }
            let value = self.value(had_colon)?;
            insert(&mut map, name, value);
        }
        Ok(Value::Object(map))
    }

    fn value(&mut self, had_colon: bool) -> Result<Value, (String, usize, usize)> {
        if matches!(self.peek(), Some('{' | '<' | '[')) {
            if self.depth == MAX_DEPTH {
                return Err(self.err(&format!("messages and lists nest deeper than {MAX_DEPTH}")));
            }
            self.depth += 1;
            let v = self.nested(had_colon);
            self.depth -= 1;
            return v;
        }
        self.nested(had_colon)
    }

    /// A value: a message, a list, a string or a scalar.
    fn nested(&mut self, had_colon: bool) -> Result<Value, (String, usize, usize)> {
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                self.message(Some('}'))
            }
            Some('<') => {
                self.pos += 1;
                self.message(Some('>'))
            }
            Some('[') => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_ws();
                    if self.peek() == Some(']') {
                        self.pos += 1;
                        break;
                    }
                    if self.peek().is_none() {
                        return Err(self.err("missing ']'"));
                    }
                    items.push(self.value(true)?);
                }
                Ok(Value::Array(items))
            }
            Some('"') | Some('\'') => {
                let mut s = self.string()?;
                // Adjacent string literals concatenate.
                loop {
                    self.skip_ws_only();
                    if matches!(self.peek(), Some('"') | Some('\'')) {
                        s.push_str(&self.string()?);
                    } else {
                        break;
                    }
                }
                Ok(Value::String(s))
            }
            Some(_) if had_colon => {
                let word = self.ident().ok_or_else(|| self.err("expected a value"))?;
                Ok(scalar(&word))
            }
            _ => Err(self.err("expected ':' or '{'")),
        }
    }

    fn skip_ws_only(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn string(&mut self) -> Result<String, (String, usize, usize)> {
        let quote = self.peek().unwrap_or('"');
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err("unterminated string"));
            };
            self.pos += 1;
            if c == quote {
                return Ok(out);
            }
            if c == '\\' {
                let Some(e) = self.peek() else {
                    return Err(self.err("unterminated escape"));
                };
                self.pos += 1;
                out.push(match e {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    other => other,
                });
            } else {
                out.push(c);
            }
        }
    }
}

fn scalar(word: &str) -> Value {
    match word {
        "true" | "True" | "t" => Value::Bool(true),
        "false" | "False" | "f" => Value::Bool(false),
        _ => {
            if let Ok(i) = word.parse::<i64>() {
                Value::from(i)
            } else if let Ok(u) = word.parse::<u64>() {
                Value::from(u)
            } else if let Ok(f) = word.parse::<f64>() {
                Value::from(f)
            } else {
                Value::String(word.to_string())
            }
        }
    }
}

fn insert(map: &mut Map<String, Value>, name: String, value: Value) {
    let repeated = REPEATED.contains(&name.as_str());
    match map.get_mut(&name) {
        Some(Value::Array(items)) if repeated => match value {
            Value::Array(more) => items.extend(more),
            v => items.push(v),
        },
        Some(existing) => {
            let prev = existing.take();
            *existing = Value::Array(vec![prev, value]);
        }
        None => {
            let v = match value {
                Value::Array(a) => Value::Array(a),
                v if repeated => Value::Array(vec![v]),
                v => v,
            };
            map.insert(name, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrappers_and_repeated_messages() {
        let v = parse(
            "tests {\n test_name: \"a\"\n input: { authority: \"x\" random_value: 5 ssl: true }\n \
             validate: { cluster_name: { value: \"c\" } } }\ntests { test_name: 'b' }",
        )
        .unwrap();
        assert_eq!(v["tests"][0]["input"]["random_value"], 5);
        assert_eq!(v["tests"][0]["validate"]["cluster_name"]["value"], "c");
        assert_eq!(v["tests"][1]["test_name"], "b");
    }

    #[test]
    fn nesting_stops_at_the_depth_limit() {
        let ok = format!("{}{}", "a { ".repeat(MAX_DEPTH), "}".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
        let deep = format!("{}{}", "a { ".repeat(30_000), "}".repeat(30_000));
        let (message, line, col) = parse(&deep).unwrap_err();
        assert_eq!((message.as_str(), line, col), ("messages and lists nest deeper than 100", 1, 403));
    }
}
