//! RE2 patterns (`safe_regex`, `google_re2`) run with the `regex` crate.
//!
//! Envoy matches `safe_regex` with RE2 `FullMatch`: the whole input must match, so the pattern
//! is anchored as `^(?:…)$` here. RE2's Perl classes `\d \w \s \b` are ASCII-only, while the
//! `regex` crate's are Unicode; they are rewritten to ASCII equivalents so `\d` does not match
//! `٣` (Envoy: source/common/common/regex.cc, RE2). Both engines reject look-around and
//! back-references, so a pattern Envoy refuses is refused here too.

use regex::Regex;

/// A compiled RE2 pattern that keeps its source text.
#[derive(Debug, Clone)]
pub struct Re2 {
    pattern: String,
    full: Regex,
    partial: Regex,
    /// Legacy v1 (ECMAScript) only: `A(?!lit)B` / `A(?=lit)B` evaluated by splitting.
    lookahead: Option<Lookahead>,
}

#[derive(Debug, Clone)]
struct Lookahead {
    before: Regex,
    after: Regex,
    literal: String,
    negative: bool,
}

impl Re2 {
    /// Compiles `pattern`; the error text names the pattern and the parser's complaint.
    pub fn new(pattern: &str) -> Result<Re2, String> {
        let translated = translate_perl_classes(pattern);
        let full = Regex::new(&format!("^(?:{translated})$"))
            .map_err(|e| format!("invalid RE2 regex {pattern:?}: {e}"))?;
        let partial = Regex::new(&translated).map_err(|e| format!("invalid RE2 regex {pattern:?}: {e}"))?;
        Ok(Re2 { pattern: pattern.to_string(), full, partial, lookahead: None })
    }

    /// Compiles a pattern written for ECMAScript `std::regex` (Envoy v1 route JSON). RE2
    /// syntax is tried first; a pattern with one top-level look-ahead on a literal
    /// (`A(?!validate)B`) is then evaluated as "A matches a prefix, B the rest, and the rest
    /// does (not) start with the literal", which is what ECMAScript computes.
    pub fn new_ecmascript(pattern: &str) -> Result<Re2, String> {
        let first_err = match Re2::new(pattern) {
            Ok(r) => return Ok(r),
            Err(e) => e,
        };
        let Some((a, literal, negative, b)) = split_lookahead(pattern) else {
            return Err(first_err);
        };
        let before =
            Regex::new(&format!("^(?:{})$", translate_perl_classes(&a))).map_err(|_| first_err.clone())?;
        let after =
            Regex::new(&format!("^(?:{})$", translate_perl_classes(&b))).map_err(|_| first_err.clone())?;
        let never = Regex::new("a^").map_err(|e| e.to_string())?;
        Ok(Re2 {
            pattern: pattern.to_string(),
            full: never.clone(),
            partial: never,
            lookahead: Some(Lookahead { before, after, literal, negative }),
        })
    }

    /// The pattern as written in the configuration.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// RE2 `FullMatch`: the entire value matches.
    pub fn full_match(&self, value: &str) -> bool {
        if let Some(la) = &self.lookahead {
            return value.char_indices().map(|(i, _)| i).chain([value.len()]).any(|i| {
                let (head, tail) = value.split_at(i);
                la.before.is_match(head)
                    && la.after.is_match(tail)
                    && tail.starts_with(la.literal.as_str()) != la.negative
            });
        }
        self.full.is_match(value)
    }

    /// Replaces every non-overlapping match (`regex_rewrite` semantics, RE2 `GlobalReplace`);
    /// `\1`-style group references in `substitution` are honoured.
    pub fn replace_all(&self, value: &str, substitution: &str) -> String {
        let sub = re2_substitution_to_regex(substitution);
        self.partial.replace_all(value, sub.as_str()).into_owned()
    }
}

/// Splits `A(?!lit)B` / `A(?=lit)B` (one top-level look-ahead whose body is a plain
/// literal) into `(A, lit, negative, B)`; anchors `^`/`$` stay in A and B.
fn split_lookahead(pattern: &str) -> Option<(String, String, bool, String)> {
    let (start, negative) = match (pattern.find("(?!"), pattern.find("(?=")) {
        (Some(n), None) => (n, true),
        (None, Some(p)) => (p, false),
        _ => return None,
    };
    let body_start = start + 3;
    let close = pattern.get(body_start..)?.find(')')? + body_start;
    let literal = pattern.get(body_start..close)?;
    if literal.is_empty() || !literal.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '/')
    {
        return None;
    }
    let a = pattern.get(..start)?;
    // The look-ahead must be at the top level: no group may be open before it.
    if a.matches('(').count() != a.matches(')').count() {
        return None;
    }
    let b = pattern.get(close + 1..)?;
    if b.contains("(?!") || b.contains("(?=") {
        return None;
    }
    Some((a.to_string(), literal.to_string(), negative, b.to_string()))
}

/// RE2 substitutions use `\1`; the regex crate uses `${1}`.
fn re2_substitution_to_regex(sub: &str) -> String {
    let mut out = String::with_capacity(sub.len());
    let mut chars = sub.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek().copied() {
                Some(d) if d.is_ascii_digit() => {
                    chars.next();
                    out.push_str(&format!("${{{d}}}"));
                }
                Some('\\') => {
                    chars.next();
                    out.push('\\');
                }
                _ => out.push('\\'),
            },
            '$' => out.push_str("$$"),
            _ => out.push(c),
        }
    }
    out
}

/// Rewrites `\d \D \w \W \s \S \b \B` to their ASCII (RE2) meaning.
fn translate_perl_classes(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut in_class = false;
    let mut chars = pattern.chars().peekable();
    let mut class_start = false;
    while let Some(c) = chars.next() {
        if c == '\\' {
            let Some(n) = chars.next() else {
                out.push('\\');
                break;
            };
            let rep = if in_class {
                match n {
                    'd' => Some("0-9"),
                    'D' => Some("[:^digit:]"),
                    'w' => Some("0-9A-Za-z_"),
                    'W' => Some("[:^word:]"),
                    's' => Some("\\t\\n\\x0C\\r "),
                    'S' => Some("[:^space:]"),
                    _ => None,
                }
            } else {
                match n {
                    'd' => Some("[0-9]"),
                    'D' => Some("[^0-9]"),
                    'w' => Some("[0-9A-Za-z_]"),
                    'W' => Some("[^0-9A-Za-z_]"),
                    's' => Some("[\\t\\n\\x0C\\r ]"),
                    'S' => Some("[^\\t\\n\\x0C\\r ]"),
                    'b' => Some("(?-u:\\b)"),
                    'B' => Some("(?-u:\\B)"),
                    _ => None,
                }
            };
            match rep {
                Some(r) => out.push_str(r),
                None => {
                    out.push('\\');
                    out.push(n);
                }
            }
            class_start = false;
            continue;
        }
        if in_class {
            if c == ']' && !class_start {
                in_class = false;
            }
            class_start = class_start && c == '^';
            out.push(c);
            continue;
        }
        if c == '[' {
            in_class = true;
            class_start = true;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_match_is_anchored() {
        let r = Re2::new("/api/v[0-9]/.*").unwrap();
        assert!(r.full_match("/api/v1/x"));
        assert!(!r.full_match("/x/api/v1/x"));
        let alt = Re2::new("a|b").unwrap();
        assert!(!alt.full_match("ab"));
        assert!(alt.full_match("b"));
    }

    #[test]
    fn perl_classes_are_ascii_like_re2() {
        let r = Re2::new(r"^/users/\d+$").unwrap();
        assert!(r.full_match("/users/123"));
        assert!(!r.full_match("/users/١٢"));
        let c = Re2::new(r"[^validate]\w+").unwrap();
        assert!(c.full_match("xab"));
        assert!(Re2::new(r"(?!x)y").is_err());
    }

    #[test]
    fn ecmascript_lookahead_shim() {
        let r = Re2::new_ecmascript(r"^/users/\d+/chargeaccounts/(?!validate)\w+$").unwrap();
        assert!(r.full_match("/users/123/chargeaccounts/abc"));
        assert!(!r.full_match("/users/123/chargeaccounts/validate"));
        assert!(!r.full_match("/users/123/chargeaccounts/validatex"));
        assert!(Re2::new_ecmascript(r"(a(?!b))").is_err());
    }

    #[test]
    fn replace_all_uses_re2_groups() {
        let r = Re2::new("^/service/([^/]+)(/.*)$").unwrap();
        assert_eq!(r.replace_all("/service/foo/v1/api", "\\2/instance/\\1"), "/v1/api/instance/foo");
    }

    #[test]
    fn superfluous_escapes_compile() {
        assert!(Re2::new(r"(?:[a-zA-Z0-9!@#\$%\^\&\*\)\(+=._-]{25,50})|(?:[A-Z])").is_ok());
    }
}
