//! A hand-written DNS message reader (RFC 1035 §4.1): question names and the A, AAAA and CNAME
//! answers, with name compression. Names are returned lower-case without the trailing dot.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsQuestion {
    pub name: String,
    /// QTYPE (1 = A, 28 = AAAA, ...).
    pub qtype: u16,
}

/// The data of an answer record this reader keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsRecord {
    Addr(IpAddr),
    Cname(String),
}

/// One answer record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsAnswer {
    pub name: String,
    pub record: DnsRecord,
    pub ttl: u32,
}

/// A parsed message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DnsMessage {
    pub id: u16,
    pub response: bool,
    /// RCODE (0 = NOERROR, 3 = NXDOMAIN).
    pub rcode: u8,
    pub questions: Vec<DnsQuestion>,
    pub answers: Vec<DnsAnswer>,
}

/// Limits against hostile messages.
const MAX_RECORDS: usize = 256;
const MAX_POINTERS: usize = 32;

/// Parses a DNS message (UDP payload, or one TCP message without its length prefix). Returns
/// `None` when it is not a well-formed message. Answers of other types are skipped.
pub fn parse_dns_message(msg: &[u8]) -> Option<DnsMessage> {
    let h = msg.get(..12)?;
    let be = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
    let (qd, an) = (usize::from(be(4)), usize::from(be(6)));
    if (h[2] >> 3) & 0x0f > 2 {
        return None; // opcode other than QUERY/IQUERY/STATUS
    }
    if qd > MAX_RECORDS || an > MAX_RECORDS {
        return None;
    }
    let mut out =
        DnsMessage { id: be(0), response: h[2] & 0x80 != 0, rcode: h[3] & 0x0f, ..Default::default() };
    let mut at = 12;
    for _ in 0..qd {
        let (name, next) = read_name(msg, at)?;
        let qtype = u16_at(msg, next)?;
        u16_at(msg, next + 2)?; // class
        out.questions.push(DnsQuestion { name, qtype });
        at = next + 4;
    }
    for _ in 0..an {
        let (name, next) = read_name(msg, at)?;
        let rtype = u16_at(msg, next)?;
        let ttl = (u32::from(u16_at(msg, next + 4)?) << 16) | u32::from(u16_at(msg, next + 6)?);
        let rdlen = usize::from(u16_at(msg, next + 8)?);
        let rdata_at = next + 10;
        let rdata = msg.get(rdata_at..rdata_at + rdlen)?;
        let record = match (rtype, rdata.len()) {
            (1, 4) => {
                Some(DnsRecord::Addr(IpAddr::V4(Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3]))))
            }
            (28, 16) => {
                let mut a = [0u8; 16];
                a.copy_from_slice(rdata);
                Some(DnsRecord::Addr(IpAddr::V6(Ipv6Addr::from(a))))
            }
            (5, _) => Some(DnsRecord::Cname(read_name(msg, rdata_at)?.0)),
            _ => None,
        };
        if let Some(record) = record {
            out.answers.push(DnsAnswer { name, record, ttl });
        }
        at = rdata_at + rdlen;
    }
    Some(out)
}

fn u16_at(msg: &[u8], at: usize) -> Option<u16> {
    let s = msg.get(at..at + 2)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

/// Reads a possibly compressed name at `at`; returns it and the offset after it in place.
fn read_name(msg: &[u8], mut at: usize) -> Option<(String, usize)> {
    let mut name = String::new();
    let mut after: Option<usize> = None;
    let mut jumps = 0;
    loop {
        let len = *msg.get(at)?;
        match len & 0xc0 {
            0x00 if len == 0 => {
                return Some((name, after.unwrap_or(at + 1)));
            }
            0x00 => {
                let label = msg.get(at + 1..at + 1 + usize::from(len))?;
                if !name.is_empty() {
                    name.push('.');
                }
                for &b in label {
                    name.push(char::from(b.to_ascii_lowercase()));
                }
                if name.len() > 255 {
                    return None;
                }
                at += 1 + usize::from(len);
            }
            0xc0 => {
                let target = (usize::from(len & 0x3f) << 8) | usize::from(*msg.get(at + 1)?);
                after.get_or_insert(at + 2);
                jumps += 1;
                if jumps > MAX_POINTERS {
                    return None;
                }
                at = target;
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A response for `name` with a CNAME to `alias` and an A record for the alias.
    pub(crate) fn response(name: &str, alias: &str, addr: [u8; 4]) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0];
        let encode = |m: &mut Vec<u8>, n: &str| {
            for l in n.split('.') {
                m.push(l.len() as u8);
                m.extend_from_slice(l.as_bytes());
            }
            m.push(0);
        };
        encode(&mut m, name);
        m.extend_from_slice(&[0, 1, 0, 1]);
        // CNAME, owner compressed to the question name at offset 12.
        m.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60]);
        let alias_at = m.len() + 2;
        let mut rd = Vec::new();
        encode(&mut rd, alias);
        m.extend_from_slice(&(rd.len() as u16).to_be_bytes());
        m.extend_from_slice(&rd);
        m.extend_from_slice(&[0xc0, alias_at as u8, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4]);
        m.extend_from_slice(&addr);
        m
    }

    #[test]
    fn response_with_cname_and_a() {
        let m = parse_dns_message(&response("Www.Example.com", "edge.example.net", [10, 0, 0, 7])).unwrap();
        assert!(m.response);
        assert_eq!(m.questions, vec![DnsQuestion { name: "www.example.com".into(), qtype: 1 }]);
        assert_eq!(
            m.answers,
            vec![
                DnsAnswer {
                    name: "www.example.com".into(),
                    record: DnsRecord::Cname("edge.example.net".into()),
                    ttl: 60
                },
                DnsAnswer {
                    name: "edge.example.net".into(),
                    record: DnsRecord::Addr(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7))),
                    ttl: 30
                },
            ]
        );
    }

    #[test]
    fn truncations_and_pointer_loops_fail_cleanly() {
        let full = response("a.b", "c.d", [1, 2, 3, 4]);
        for n in 0..full.len() {
            assert!(parse_dns_message(&full[..n]).is_none(), "prefix {n}");
        }
        // A name that points at itself.
        let looped = [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1];
        assert!(parse_dns_message(&looped).is_none());
    }
}
