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

/// Splits the line at the start of `text` into tokens; a problem's column is relative to the
/// line. The line ends at the first `\n` or the end of `text`; the return value is its length
/// (the index of that `\n`), so a caller can walk a whole file line by line through here.
pub fn tokenize<'a>(text: &'a str, out: &mut Vec<Token<'a>>) -> Result<usize, Problem> {
    out.clear();
    let bytes = text.as_bytes();
    let mut i = 0;
    loop {
        while i < bytes.len() && matches!(bytes[i], b' ' | b'\t' | b'\r') {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] == b'\n' {
            return Ok(i);
        }
        let start = i;
        if bytes[i] == b'"' {
            let body = start + 1;
            let stop = find_quote_escape_or_newline(bytes, body);
            let text = if stop < bytes.len() && bytes[stop] == b'"' {
                // No escape (most comments): borrowed.
                i = stop;
                std::borrow::Cow::Borrowed(&text[body..stop])
            } else {
                let (owned, end) = quoted_with_escapes(text, start)?;
                i = end;
                std::borrow::Cow::Owned(owned)
            };
            i += 1; // closing quote
            out.push(Token { text, col: start, len: i - start });
        } else {
            i = find_blank(bytes, i);
            out.push(Token { text: std::borrow::Cow::Borrowed(&text[start..i]), col: start, len: i - start });
        }
    }
}

/// The length of the line at the start of `text` without its `\n` or a `\r` before it.
fn line_len(text: &str) -> usize {
    let line = text.split('\n').next().unwrap_or("");
    line.strip_suffix('\r').unwrap_or(line).len()
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The eight bytes at `i` as one word (little endian: the first byte is the lowest).
pub(super) fn word(bytes: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[i..i + 8]);
    u64::from_le_bytes(w)
}

/// Marks (high bit) the bytes of `w` that are below `n` (n <= 128); only the lowest mark is
/// exact, which is the one used.
fn below(w: u64, n: u8) -> u64 {
    w.wrapping_sub(ONES * u64::from(n)) & !w & HIGHS
}

/// Marks the bytes of `w` equal to `b` (lowest mark exact).
fn equal(w: u64, b: u8) -> u64 {
    below(w ^ (ONES * u64::from(b)), 1)
}

/// Marks (high bit) exactly the zero bytes of `v`.
pub(super) fn zero_bytes(v: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    !(((v & LOW7).wrapping_add(LOW7)) | v | LOW7)
}

/// Marks exactly the newline bytes of `w`.
pub(super) fn newlines(w: u64) -> u64 {
    zero_bytes(w ^ (ONES * u64::from(b'\n')))
}

/// The index of the first newline from `i`, eight bytes at a time.
pub(super) fn find_newline(bytes: &[u8], mut i: usize) -> Option<usize> {
    while i + 8 <= bytes.len() {
        let m = newlines(word(bytes, i));
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    bytes[i.min(bytes.len())..].iter().position(|&b| b == b'\n').map(|k| i + k)
}

/// The first index from `i` holding a space, tab, carriage return or newline (or the end):
/// the end of an unquoted token. Eight bytes at a time: all four are below 0x21.
fn find_blank(bytes: &[u8], mut i: usize) -> usize {
    while i + 8 <= bytes.len() {
        let m = below(word(bytes, i), 0x21);
        if m == 0 {
            i += 8;
            continue;
        }
        let j = i + (m.trailing_zeros() / 8) as usize;
        if matches!(bytes[j], b' ' | b'\t' | b'\r' | b'\n') {
            return j;
        }
        // Another control character is part of the token.
        i = j + 1;
    }
    while i < bytes.len() && !matches!(bytes[i], b' ' | b'\t' | b'\r' | b'\n') {
        i += 1;
    }
    i
}

/// The first index from `i` holding `"`, `\\` or a newline (or the end).
fn find_quote_escape_or_newline(bytes: &[u8], mut i: usize) -> usize {
    while i + 8 <= bytes.len() {
        let w = word(bytes, i);
        let m = equal(w, b'"') | equal(w, b'\\') | equal(w, b'\n');
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < bytes.len() && !matches!(bytes[i], b'"' | b'\\' | b'\n') {
        i += 1;
    }
    i
}

/// The body of the quoted string opening at `start`, with `\"` and `\\` resolved, and the
/// index of its closing quote; a string still open at the end of the line is an error.
fn quoted_with_escapes(text: &str, start: usize) -> Result<(String, usize), Problem> {
    let bytes = text.as_bytes();
    let end = line_len(text);
    let mut i = start + 1;
    let mut s = String::new();
    while i < end {
        match bytes[i] {
            b'"' => return Ok((s, i)),
            b'\\' if i + 1 < end && (bytes[i + 1] == b'"' || bytes[i + 1] == b'\\') => {
                s.push(bytes[i + 1] as char);
                i += 2;
            }
            _ => {
                let ch_len = utf8_len(bytes[i]);
                s.push_str(&text[i..(i + ch_len).min(end)]);
                i += ch_len;
            }
        }
    }
    Err(Problem::new(start, end - start, "unterminated quoted string")
        .help("close the string with a double quote"))
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
