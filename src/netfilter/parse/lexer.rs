//! Splitting one rule line into tokens, each with its column, as iptables' own
//! `add_param_to_argv` does: whitespace separates, double quotes group (with `\"` and `\\`
//! escapes), and `!` is a token of its own.

use super::error::Problem;

/// One token of a rule line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token<'a> {
    /// The text with quotes removed; borrowed unless an escape had to be resolved.
    pub text: std::borrow::Cow<'a, str>,
    /// Byte offset of the token's first character within the line.
    pub col: usize,
    /// Byte length of the token as written (quotes included).
    pub len: usize,
}

impl Token<'_> {
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// Splits `line` into tokens; a problem's column is relative to the line.
pub fn tokenize<'a>(line: &'a str, out: &mut Vec<Token<'a>>) -> Result<(), Problem> {
    out.clear();
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b' ' || b == b'\t' || b == b'\r' {
            i += 1;
            continue;
        }
        let start = i;
        if b == b'"' {
            i += 1;
            let body_start = i;
            let mut owned: Option<String> = None;
            loop {
                if i >= bytes.len() {
                    return Err(Problem::new(start, line.len() - start, "unterminated quoted string")
                        .help("close the string with a double quote"));
                }
                match bytes[i] {
                    b'"' => break,
                    b'\\' if i + 1 < bytes.len() && (bytes[i + 1] == b'"' || bytes[i + 1] == b'\\') => {
                        let s = owned.get_or_insert_with(|| line[body_start..i].to_string());
                        s.push(bytes[i + 1] as char);
                        i += 2;
                    }
                    _ => {
                        let ch_len = utf8_len(bytes[i]);
                        if let Some(s) = owned.as_mut() {
                            s.push_str(&line[i..(i + ch_len).min(line.len())]);
                        }
                        i += ch_len;
                    }
                }
            }
            let text = match owned {
                Some(s) => std::borrow::Cow::Owned(s),
                None => std::borrow::Cow::Borrowed(&line[body_start..i]),
            };
            i += 1; // closing quote
            out.push(Token { text, col: start, len: i - start });
        } else {
            while i < bytes.len() && !matches!(bytes[i], b' ' | b'\t' | b'\r') {
                i += 1;
            }
            out.push(Token { text: std::borrow::Cow::Borrowed(&line[start..i]), col: start, len: i - start });
        }
    }
    Ok(())
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(line: &str) -> Vec<String> {
        let mut v = Vec::new();
        tokenize(line, &mut v).unwrap();
        v.iter().map(|t| t.text.to_string()).collect()
    }

    #[test]
    fn splits_plain_and_negation() {
        assert_eq!(
            toks("-A OUTPUT ! -d 127.0.0.1/32 -j RETURN"),
            ["-A", "OUTPUT", "!", "-d", "127.0.0.1/32", "-j", "RETURN"]
        );
    }

    #[test]
    fn quoted_comment_with_escapes() {
        assert_eq!(
            toks(r#"-m comment --comment "a \"quoted\" \\ word" -j X"#),
            ["-m", "comment", "--comment", r#"a "quoted" \ word"#, "-j", "X"]
        );
    }

    #[test]
    fn columns_are_byte_offsets() {
        let mut v = Vec::new();
        tokenize("-A  X \"y z\"", &mut v).unwrap();
        assert_eq!((v[1].col, v[2].col, v[2].len), (4, 6, 5));
    }

    #[test]
    fn unterminated_quote_is_an_error() {
        let mut v = Vec::new();
        let e = tokenize("-m comment --comment \"oops", &mut v).unwrap_err();
        assert_eq!(e.col, 21);
    }
}
