//! A packet or connection mark with the bits that count: `value/mask` as iptables
//! (`--mark 0x539/0xffffffff`, `--set-xmark`) and iproute2 (`ip rule ... fwmark 0x539/0xffff`)
//! write it.

use super::num::parse_u32;

/// `value/mask` as in `--mark 0x539/0xffffffff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarkMask {
    pub value: u32,
    pub mask: u32,
}

impl MarkMask {
    /// `value[/mask]`, each decimal or `0x` hex; a missing mask is 0xffffffff.
    pub fn parse(s: &str) -> Result<MarkMask, String> {
        match s.split_once('/') {
            Some((v, m)) => Ok(MarkMask { value: parse_u32(v)?, mask: parse_u32(m)? }),
            None => Ok(MarkMask { value: parse_u32(s)?, mask: u32::MAX }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_value_and_optional_mask() {
        assert_eq!(MarkMask::parse("0x539").unwrap(), MarkMask { value: 0x539, mask: u32::MAX });
        assert_eq!(MarkMask::parse("0x1/0xff").unwrap(), MarkMask { value: 1, mask: 0xff });
        assert_eq!(MarkMask::parse("4/4").unwrap(), MarkMask { value: 4, mask: 4 });
        assert!(MarkMask::parse("0x1/").is_err());
    }
}
