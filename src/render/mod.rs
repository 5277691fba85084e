//! Rendering: pure functions from what the library computed to text and JSON documents.
//! Nothing here decides anything about packets.

pub mod check;
pub mod envoy;
pub mod explain;
pub mod explain_fix;
mod explain_graph;
pub mod netfilter;
pub mod pod;
pub mod replay;
pub mod routecheck;
pub mod trace;
pub mod words;

/// `n` and the noun `one` in agreement with it: `1 file`, `2 files` (`many` when the plural is
/// not `one` + `s`: `plural_of(2, "match", "matches")`).
pub fn plural_of(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `n` and a regular noun in agreement with it: `plural(1, "file")` is `1 file`,
/// `plural(0, "file")` is `0 files`.
pub fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// `s` as XML or HTML text or attribute value: markup characters as entities, and control
/// characters XML 1.0 does not allow (all below U+0020 but tab and newline) as `?`, with
/// carriage return as `&#13;`.
pub fn markup_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(c),
            '\r' => out.push_str("&#13;"),
            c if (c as u32) < 0x20 => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn plural_agrees_with_the_count() {
        assert_eq!(super::plural(1, "scenario file"), "1 scenario file");
        assert_eq!(super::plural(0, "flow"), "0 flows");
        assert_eq!(super::plural(2, "probe"), "2 probes");
        assert_eq!(super::plural_of(2, "match", "matches"), "2 matches");
    }

    #[test]
    fn markup_escape_covers_markup_and_control_characters() {
        assert_eq!(super::markup_escape("a<b>&\"c'\r\u{1}\n"), "a&lt;b&gt;&amp;&quot;c&#39;&#13;?\n");
    }
}
