//! Text from the user's files shown on a terminal or in a log: control characters (ANSI
//! escapes, carriage returns, backspaces) and the invisible characters that reorder or hide
//! text (bidirectional overrides, zero-width spaces) are written out as `\u{..}` escapes, so
//! a crafted probe name, SNI or Host header cannot rewrite the terminal or hide lines.

use std::borrow::Cow;

/// Whether `c` is written as an escape rather than as itself (a newline counts).
pub fn is_hostile(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}')
        || matches!(c, '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// `c` as it is shown: itself, or `\t`, `\n`, `\r`, `\u{1b}`.
pub fn push_escaped(out: &mut String, c: char) {
    match c {
        '\t' => out.push_str("\\t"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        c if is_hostile(c) => {
            use std::fmt::Write;
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
}

/// `s` with every control or invisible character escaped (newlines too: one line stays one).
pub fn escape_control(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_hostile) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

/// `s` escaped as by [`escape_control`] but keeping newlines, for text of several lines.
pub fn escape_control_keep_lines(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c != '\n' && is_hostile(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c == '\n' {
            out.push(c);
        } else {
            push_escaped(&mut out, c);
        }
    }
    Cow::Owned(out)
}

/// A report as written to a terminal, a log or a file: in text (tables, CSV, DOT, Markdown,
/// HTML) every control or invisible character but newline and tab is escaped as `\u{1b}`;
/// in a JSON document (it starts with `{` or `[`; the writer already escapes what JSON
/// requires) the rest of them (DEL, C1 controls, bidirectional overrides) become `\u001b`
/// escapes, which JSON reads back as the same characters.
pub fn escape_report(report: &str) -> Cow<'_, str> {
    escape_report_as(report, report.trim_start().starts_with(['{', '[']))
}

/// [`escape_report`] for a piece of a report written in pieces, told whether the report is a
/// JSON document (a piece after the first does not start like one).
pub fn escape_report_as(report: &str, json: bool) -> Cow<'_, str> {
    let keep = |c: char| c == '\n' || c == '\t';
    if !report.chars().any(|c| !keep(c) && is_hostile(c)) {
        return Cow::Borrowed(report);
    }
    let mut out = String::with_capacity(report.len() + 16);
    for c in report.chars() {
        if keep(c) || !is_hostile(c) {
            out.push(c);
        } else if json {
            use std::fmt::Write;
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            push_escaped(&mut out, c);
        }
    }
    Cow::Owned(out)
}

/// At most `max` characters of `s`, escaped, with `…` where it was cut: an excerpt of input
/// in a message never echoes more than this.
pub fn excerpt(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (n, c) in s.chars().enumerate() {
        if n == max {
            out.push('…');
            break;
        }
        push_escaped(&mut out, c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_controls_and_invisible_characters_are_escaped() {
        assert_eq!(escape_control("api.example.com"), "api.example.com");
        assert_eq!(escape_control("a\u{1b}[2Jb\rc\td\n"), "a\\u{1b}[2Jb\\rc\\td\\n");
        assert_eq!(escape_control("x\u{202e}y\u{200b}"), "x\\u{202e}y\\u{200b}");
        assert_eq!(escape_control_keep_lines("a\nb\u{7}"), "a\nb\\u{7}");
        assert_eq!(excerpt("abcdef", 3), "abc…");
        assert_eq!(excerpt("a\u{1b}", 3), "a\\u{1b}");
        assert_eq!(escape_report("name\tx\u{1b}[2J\n"), "name\tx\\u{1b}[2J\n");
        let json = serde_json::to_string(&serde_json::json!({"sni": "a\u{1b}b\u{202e}c\u{7f}"})).unwrap();
        let escaped = escape_report(&json);
        assert_eq!(escaped, r#"{"sni":"a\u001bb\u202ec\u007f"}"#);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&escaped).unwrap()["sni"],
            "a\u{1b}b\u{202e}c\u{7f}"
        );
    }
}
