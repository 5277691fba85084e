//! Values inside rule options: addresses, ports, marks, ids, protocols, conntrack states.
//! Each parser returns a plain message on failure; the caller attaches the position.

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::netfilter::model::{AddrType, CtState, Family, IdRange, NatRange, PortRange, Protocol, TcpFlags};

pub type ValueResult<T> = Result<T, String>;

/// `s` split at the first `sep` (an ASCII byte), as `str::split_once` does; values are short,
/// so a plain byte search beats setting up a string searcher.
fn split_once(s: &str, sep: u8) -> Option<(&str, &str)> {
    let i = s.bytes().position(|b| b == sep)?;
    Some((&s[..i], &s[i + 1..]))
}

/// `a.b.c.d`, `a.b.c.d/len`, `a.b.c.d/255.255.0.0`, `fd00::1`, `fd00::/8`.
pub fn address(s: &str, family: Family) -> ValueResult<IpNet> {
    let (addr, len) = match split_once(s, b'/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let ip: IpAddr = addr.parse().map_err(|_| {
        if addr.chars().any(|c| c.is_ascii_alphabetic()) && !addr.contains(':') {
            format!("`{addr}` is a host name; iptables-save prints numeric addresses, use those")
        } else {
            format!("`{addr}` is not an IP address")
        }
    })?;
    match (ip, family) {
        (IpAddr::V4(_), Family::V6) => {
            return Err(format!("`{addr}` is an IPv4 address in an IPv6 rule set"))
        }
        (IpAddr::V6(_), Family::V4) => {
            return Err(format!("`{addr}` is an IPv6 address in an IPv4 rule set"))
        }
        _ => {}
    }
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match len {
        None => max,
        Some(l) => match l.parse::<u8>() {
            Ok(n) if n <= max => n,
            Ok(_) => return Err(format!("prefix length /{l} is longer than {max}")),
            Err(_) => match (ip, l.parse::<IpAddr>()) {
                (IpAddr::V4(_), Ok(IpAddr::V4(m))) => contiguous_mask_len(u32::from(m) as u128, 32)?,
                (IpAddr::V6(_), Ok(IpAddr::V6(m))) => contiguous_mask_len(u128::from(m), 128)?,
                _ => return Err(format!("`/{l}` is neither a prefix length nor a netmask")),
            },
        },
    };
    let net = match ip {
        IpAddr::V4(a) => IpNet::V4(Ipv4Net::new(a, prefix).map_err(|e| e.to_string())?),
        IpAddr::V6(a) => IpNet::V6(Ipv6Net::new(a, prefix).map_err(|e| e.to_string())?),
    };
    // iptables masks the address with the prefix when it stores the rule.
    Ok(net.trunc())
}

fn contiguous_mask_len(mask: u128, bits: u32) -> ValueResult<u8> {
    let shifted = mask << (128 - bits);
    let ones = shifted.leading_ones();
    let expect = if ones == 0 { 0 } else { u128::MAX << (128 - ones) };
    if shifted != expect {
        return Err("non-contiguous netmasks are not supported".into());
    }
    Ok(ones as u8)
}

/// A single IP address (no prefix), e.g. `--on-ip`.
pub fn ip(s: &str, family: Family) -> ValueResult<IpAddr> {
    let ip: IpAddr = s.parse().map_err(|_| format!("`{s}` is not an IP address"))?;
    match (ip, family) {
        (IpAddr::V4(_), Family::V6) | (IpAddr::V6(_), Family::V4) => {
            Err(format!("`{s}` is of the wrong address family for this rule set"))
        }
        _ => Ok(ip),
    }
}

pub fn port(s: &str) -> ValueResult<u16> {
    s.parse::<u16>().map_err(|_| {
        if s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') && !s.is_empty() {
            format!(
                "`{s}` is not a port number (service names are not resolved; iptables-save prints numbers)"
            )
        } else {
            format!("`{s}` is not a port number")
        }
    })
}

/// `80`, `80:90`, `:90` (0:90), `80:` (80:65535).
pub fn port_range(s: &str) -> ValueResult<PortRange> {
    match split_once(s, b':') {
        None => {
            let p = port(s)?;
            Ok(PortRange { lo: p, hi: p })
        }
        Some((a, b)) => {
            let lo = if a.is_empty() { 0 } else { port(a)? };
            let hi = if b.is_empty() { 65535 } else { port(b)? };
            if lo > hi {
                return Err(format!("port range {s} is empty (first port above last)"));
            }
            Ok(PortRange { lo, hi })
        }
    }
}

/// `--to-ports 15001` or `15001-15002` (REDIRECT/MASQUERADE use a dash).
pub fn nat_port_range(s: &str) -> ValueResult<PortRange> {
    match split_once(s, b'-') {
        None => port_range(s),
        Some((a, b)) => {
            let (lo, hi) = (port(a)?, port(b)?);
            if lo > hi {
                return Err(format!("port range {s} is empty"));
            }
            Ok(PortRange { lo, hi })
        }
    }
}

/// A comma-separated multiport list: `80,8000:8080`.
pub fn port_list(s: &str) -> ValueResult<Vec<PortRange>> {
    let v: Vec<PortRange> = s.split(',').map(port_range).collect::<ValueResult<_>>()?;
    let slots: usize = v.iter().map(|r| if r.lo == r.hi { 1 } else { 2 }).sum();
    if slots > 15 {
        return Err(format!("multiport takes at most 15 ports (a range counts 2); this list needs {slots}"));
    }
    Ok(v)
}

/// `1337` or `1000-2000`. Names cannot be resolved offline.
pub fn id_range(s: &str, what: &str) -> ValueResult<IdRange> {
    let one = |x: &str| {
        x.parse::<u32>().map_err(|_| {
            if x == "root" {
                format!("{what} name `root` is not resolved; write 0")
            } else {
                format!("{what} `{x}` is not numeric; names are resolved on the node, give the number")
            }
        })
    };
    match split_once(s, b'-') {
        Some((a, b)) => {
            let (lo, hi) = (one(a)?, one(b)?);
            if lo > hi {
                return Err(format!("{what} range {s} is empty"));
            }
            Ok(IdRange { lo, hi })
        }
        None => {
            let v = one(s)?;
            Ok(IdRange { lo: v, hi: v })
        }
    }
}

pub fn protocol(s: &str) -> ValueResult<Protocol> {
    // Names in any case, as iptables takes them; lower case is what iptables-save prints.
    let lower;
    let name = if s.bytes().any(|b| b.is_ascii_uppercase()) {
        lower = s.to_ascii_lowercase();
        lower.as_str()
    } else {
        s
    };
    Ok(match name {
        "tcp" | "6" => Protocol::Tcp,
        "udp" | "17" => Protocol::Udp,
        "icmp" | "1" => Protocol::Icmp,
        "ipv6-icmp" | "icmpv6" | "icmp6" | "58" => Protocol::Icmpv6,
        "sctp" | "132" => Protocol::Sctp,
        "all" | "0" => Protocol::All,
        "esp" => Protocol::Number(50),
        "ah" => Protocol::Number(51),
        "gre" => Protocol::Number(47),
        "udplite" => Protocol::Number(136),
        "igmp" => Protocol::Number(2),
        "mh" | "ipv6-mh" => Protocol::Number(135),
        other => match other.parse::<u8>() {
            Ok(n) => Protocol::Number(n),
            Err(_) => return Err(format!("unknown protocol `{s}`")),
        },
    })
}

pub fn ct_states(s: &str) -> ValueResult<Vec<CtState>> {
    s.split(',')
        .map(|w| {
            Ok(match w {
                "NEW" => CtState::New,
                "ESTABLISHED" => CtState::Established,
                "RELATED" => CtState::Related,
                "INVALID" => CtState::Invalid,
                "UNTRACKED" => CtState::Untracked,
                "SNAT" => CtState::Snat,
                "DNAT" => CtState::Dnat,
                _ => return Err(format!("unknown conntrack state `{w}`")),
            })
        })
        .collect()
}

pub fn addr_types(s: &str) -> ValueResult<Vec<AddrType>> {
    s.split(',')
        .map(|w| {
            Ok(match w {
                "UNSPEC" => AddrType::Unspec,
                "UNICAST" => AddrType::Unicast,
                "LOCAL" => AddrType::Local,
                "BROADCAST" => AddrType::Broadcast,
                "ANYCAST" => AddrType::Anycast,
                "MULTICAST" => AddrType::Multicast,
                "BLACKHOLE" => AddrType::Blackhole,
                "UNREACHABLE" => AddrType::Unreachable,
                "PROHIBIT" => AddrType::Prohibit,
                "THROW" => AddrType::Throw,
                "NAT" => AddrType::Nat,
                "XRESOLVE" => AddrType::Xresolve,
                _ => return Err(format!("unknown address type `{w}`")),
            })
        })
        .collect()
}

/// `FIN,SYN,RST,ACK` or `ALL` / `NONE`.
pub fn tcp_flag_set(s: &str) -> ValueResult<u8> {
    use crate::netfilter::model::tcp_flags::*;
    let mut v = 0u8;
    for w in s.split(',') {
        v |= match w {
            "FIN" => FIN,
            "SYN" => SYN,
            "RST" => RST,
            "PSH" => PSH,
            "ACK" => ACK,
            "URG" => URG,
            "ECE" => ECE,
            "CWR" => CWR,
            "ALL" => 0xff,
            "NONE" => 0,
            _ => return Err(format!("unknown TCP flag `{w}`")),
        };
    }
    Ok(v)
}

pub fn tcp_flags(mask: &str, comp: &str) -> ValueResult<TcpFlags> {
    Ok(TcpFlags { mask: tcp_flag_set(mask)?, comp: tcp_flag_set(comp)? })
}

/// DNAT/SNAT `[ip[-ip]][:port[-port]]`; IPv6 addresses are bracketed when a port follows.
pub fn nat_range(s: &str, family: Family) -> ValueResult<NatRange> {
    let (addr_part, port_part) = if let Some(rest) = s.strip_prefix('[') {
        let (a, after) = split_once(rest, b']').ok_or_else(|| format!("`{s}`: missing `]`"))?;
        (a, after.strip_prefix(':'))
    } else if family == Family::V6 {
        (s, None)
    } else {
        match split_once(s, b':') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        }
    };
    let (addr, addr_hi) = if addr_part.is_empty() {
        (None, None)
    } else {
        match split_once(addr_part, b'-') {
            Some((a, b)) => (Some(ip(a, family)?), Some(ip(b, family)?)),
            None => (Some(ip(addr_part, family)?), None),
        }
    };
    let ports = port_part.map(nat_port_range).transpose()?;
    Ok(NatRange { addr, addr_hi, ports })
}

/// ICMP type names iptables understands, to numbers `(type, code)`.
pub fn icmp_type(s: &str, v6: bool) -> ValueResult<(u8, Option<u8>)> {
    if let Some((t, c)) = split_once(s, b'/') {
        let t = t.parse::<u8>().map_err(|_| format!("`{s}` is not an ICMP type/code"))?;
        let c = c.parse::<u8>().map_err(|_| format!("`{s}` is not an ICMP type/code"))?;
        return Ok((t, Some(c)));
    }
    if let Ok(t) = s.parse::<u8>() {
        return Ok((t, None));
    }
    let named: &[(&str, u8, Option<u8>)] = if v6 {
        &[
            ("destination-unreachable", 1, None),
            ("packet-too-big", 2, None),
            ("time-exceeded", 3, None),
            ("parameter-problem", 4, None),
            ("echo-request", 128, None),
            ("echo-reply", 129, None),
            ("router-solicitation", 133, None),
            ("router-advertisement", 134, None),
            ("neighbour-solicitation", 135, None),
            ("neighbor-solicitation", 135, None),
            ("neighbour-advertisement", 136, None),
            ("neighbor-advertisement", 136, None),
            ("redirect", 137, None),
            ("port-unreachable", 1, Some(4)),
        ]
    } else {
        &[
            ("echo-reply", 0, None),
            ("destination-unreachable", 3, None),
            ("network-unreachable", 3, Some(0)),
            ("host-unreachable", 3, Some(1)),
            ("protocol-unreachable", 3, Some(2)),
            ("port-unreachable", 3, Some(3)),
            ("fragmentation-needed", 3, Some(4)),
            ("source-quench", 4, None),
            ("redirect", 5, None),
            ("echo-request", 8, None),
            ("router-advertisement", 9, None),
            ("router-solicitation", 10, None),
            ("time-exceeded", 11, None),
            ("parameter-problem", 12, None),
            ("timestamp-request", 13, None),
            ("timestamp-reply", 14, None),
        ]
    };
    named
        .iter()
        .find(|(n, _, _)| *n == s)
        .map(|&(_, t, c)| (t, c))
        .ok_or_else(|| format!("unknown ICMP type `{s}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(address("10.1.2.3", Family::V4).unwrap().to_string(), "10.1.2.3/32");
        assert_eq!(address("10.1.2.3/16", Family::V4).unwrap().to_string(), "10.1.0.0/16");
        assert_eq!(address("10.1.2.3/255.255.255.0", Family::V4).unwrap().to_string(), "10.1.2.0/24");
        assert_eq!(address("fd00::5", Family::V6).unwrap().to_string(), "fd00::5/128");
        assert!(address("fd00::5", Family::V4).is_err());
        assert!(address("example.com", Family::V4).unwrap_err().contains("host name"));
        assert!(address("10.0.0.0/33", Family::V4).is_err());
    }

    #[test]
    fn ports_and_ranges() {
        assert_eq!(port_range("80:90").unwrap(), PortRange { lo: 80, hi: 90 });
        assert_eq!(port_range(":90").unwrap(), PortRange { lo: 0, hi: 90 });
        assert_eq!(nat_port_range("15001").unwrap(), PortRange { lo: 15001, hi: 15001 });
        assert!(port_range("90:80").is_err());
        assert!(port("http").unwrap_err().contains("service names"));
        assert_eq!(port_list("53,15008:15010").unwrap().len(), 2);
    }

    #[test]
    fn ids() {
        assert_eq!(id_range("1000-2000", "uid").unwrap(), IdRange { lo: 1000, hi: 2000 });
        assert!(id_range("istio", "uid").is_err());
    }

    #[test]
    fn nat_ranges() {
        let r = nat_range("10.0.0.1:8080", Family::V4).unwrap();
        assert_eq!(r.ports, Some(PortRange { lo: 8080, hi: 8080 }));
        let r = nat_range("[fd00::1]:8080", Family::V6).unwrap();
        assert_eq!(r.addr, Some("fd00::1".parse().unwrap()));
        let r = nat_range("fd00::1", Family::V6).unwrap();
        assert_eq!(r.ports, None);
    }
}
