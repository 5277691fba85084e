//! Numbers as iptables and iproute2 write them.

/// A 32-bit number, decimal or `0x` hex (marks, masks, counters); the error is a plain
/// message for the caller to place.
pub fn parse_u32(s: &str) -> Result<u32, String> {
    let r = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u32::from_str_radix(h, 16)
    } else {
        s.parse::<u32>()
    };
    r.map_err(|_| format!("`{s}` is not a 32-bit number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_and_hex() {
        assert_eq!(parse_u32("1337"), Ok(1337));
        assert_eq!(parse_u32("0x539"), Ok(1337));
        assert_eq!(parse_u32("0XFFFFFFFF"), Ok(u32::MAX));
        assert!(parse_u32("4294967296").is_err());
        assert!(parse_u32("-1").is_err());
        assert!(parse_u32("0x").is_err());
    }
}
