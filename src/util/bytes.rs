//! Byte counting over big inputs (line numbers of positions in a config dump or a rule file).

/// How many times `b` occurs in `haystack`. Counted in blocks of 255 with byte-sized sums,
/// which the compiler turns into vector instructions.
pub fn count(haystack: &[u8], b: u8) -> usize {
    let mut total = 0;
    let mut blocks = haystack.chunks_exact(255);
    for block in &mut blocks {
        let n: u8 = block.iter().fold(0u8, |n, &c| n + u8::from(c == b));
        total += usize::from(n);
    }
    total + blocks.remainder().iter().filter(|&&c| c == b).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_across_blocks() {
        let text: Vec<u8> = (0..10_000u32).map(|i| if i % 7 == 0 { b'\n' } else { b'x' }).collect();
        for end in [0, 1, 254, 255, 256, 510, 511, 9_999, 10_000] {
            let expect = text[..end].iter().filter(|&&c| c == b'\n').count();
            assert_eq!(count(&text[..end], b'\n'), expect, "first {end} bytes");
        }
        assert_eq!(count(&[b'\n'; 1000], b'\n'), 1000);
    }
}
