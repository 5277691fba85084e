//! Listening sockets and the kernel's listener lookup (net/ipv4/inet_hashtables.c `__inet_lookup_listener`).

use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum L4 {
    Tcp,
    Udp,
    /// ICMP and ICMPv6 messages (probes only: no socket listens for them).
    Icmp,
    Icmpv6,
}

impl L4 {
    pub fn as_str(self) -> &'static str {
        match self {
            L4::Tcp => "tcp",
            L4::Udp => "udp",
            L4::Icmp => "icmp",
            L4::Icmpv6 => "icmpv6",
        }
    }

    /// ICMP or ICMPv6.
    pub fn is_icmp(self) -> bool {
        matches!(self, L4::Icmp | L4::Icmpv6)
    }
}

/// Who owns a socket: the processes meshpath knows by their role, or another by its name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Owner {
    /// The application (the default for a socket given without an owner).
    App,
    /// The sidecar's Envoy.
    Envoy,
    /// Istio's pilot-agent (its DNS proxy).
    PilotAgent,
    /// Another process, by the name `ss` shows.
    Process(String),
}

impl Owner {
    /// The owner of a process named `name` (as `ss -p` shows it).
    pub fn named(name: &str) -> Owner {
        match name {
            "app" => Owner::App,
            "envoy" => Owner::Envoy,
            "pilot-agent" => Owner::PilotAgent,
            other => Owner::Process(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Owner::App => "app",
            Owner::Envoy => "envoy",
            Owner::PilotAgent => "pilot-agent",
            Owner::Process(name) => name,
        }
    }
}

impl serde::Serialize for Owner {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A bound socket that accepts new connections (TCP listener, bound UDP socket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Socket {
    pub proto: L4,
    /// Unspecified (`0.0.0.0` / `::`) is a wildcard bind.
    pub addr: IpAddr,
    pub port: u16,
    /// `IP_TRANSPARENT`: needed for TPROXY to hand it packets.
    pub transparent: bool,
    /// Who owns it.
    pub owner: Owner,
    /// The owner's uid, when known.
    pub uid: Option<u32>,
}

impl Socket {
    pub fn is_wildcard(&self) -> bool {
        self.addr.is_unspecified()
    }

    /// `ip:port`, with brackets for IPv6.
    /// The bound address and port.
    pub fn endpoint_addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::new(self.addr, self.port)
    }

    pub fn endpoint(&self) -> String {
        match self.addr {
            IpAddr::V4(a) => format!("{a}:{}", self.port),
            IpAddr::V6(a) => format!("[{a}]:{}", self.port),
        }
    }
}

/// `tcp:IP:PORT[:transparent]` or `udp:...`; IPv6 addresses in brackets (`tcp:[::]:15006`).
pub fn parse_listen(s: &str) -> Result<Socket, String> {
    let (proto, rest) =
        s.split_once(':').ok_or_else(|| format!("`{s}`: expected tcp:IP:PORT[:transparent]"))?;
    let proto = match proto {
        "tcp" => L4::Tcp,
        "udp" => L4::Udp,
        p => return Err(format!("`{p}` is not tcp or udp")),
    };
    let (addr, rest) = if let Some(r) = rest.strip_prefix('[') {
        let (a, after) = r.split_once(']').ok_or_else(|| format!("`{s}`: missing `]`"))?;
        (a, after.strip_prefix(':').ok_or_else(|| format!("`{s}`: expected :PORT after the address"))?)
    } else {
        rest.split_once(':').ok_or_else(|| format!("`{s}`: expected IP:PORT"))?
    };
    let addr: IpAddr = addr.parse().map_err(|_| format!("`{addr}` is not an IP address"))?;
    let mut parts = rest.split(':');
    let port = parts.next().unwrap_or("");
    let port: u16 = port.parse().map_err(|_| format!("`{port}` is not a port"))?;
    let mut sock = Socket { proto, addr, port, transparent: false, owner: Owner::App, uid: None };
    for extra in parts {
        match extra {
            "transparent" => sock.transparent = true,
            n if n.parse::<u32>().is_ok() => sock.uid = n.parse().ok(),
            other => sock.owner = Owner::named(other),
        }
    }
    Ok(sock)
}

/// `__inet_lookup_listener`: exact address before wildcard; within wildcards, an IPv4 socket
/// before a dual-stack IPv6 one; an IPv6 wildcard takes IPv4 connections (v4-mapped).
pub(super) fn listener(sockets: &[Socket], proto: L4, dst: IpAddr, port: u16) -> Option<&Socket> {
    let candidates = sockets.iter().filter(|s| s.proto == proto && s.port == port);
    let exact =
        candidates.clone().find(|s| !s.is_wildcard() && (s.addr == dst || mapped(s.addr) == Some(dst)));
    exact
        .or_else(|| candidates.clone().find(|s| s.is_wildcard() && s.addr.is_ipv4() == dst.is_ipv4()))
        .or_else(|| candidates.clone().find(|s| s.is_wildcard() && s.addr.is_ipv6() && dst.is_ipv4()))
}

fn mapped(a: IpAddr) -> Option<IpAddr> {
    match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
        IpAddr::V4(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_before_wildcard_and_v4_before_dual_stack() {
        let socks = vec![
            parse_listen("tcp:[::]:9100").unwrap(),
            parse_listen("tcp:0.0.0.0:9100").unwrap(),
            parse_listen("tcp:10.244.0.5:9100").unwrap(),
        ];
        let l = |d: &str| listener(&socks, L4::Tcp, d.parse().unwrap(), 9100).map(|s| s.endpoint());
        assert_eq!(l("10.244.0.5").as_deref(), Some("10.244.0.5:9100"));
        assert_eq!(l("127.0.0.1").as_deref(), Some("0.0.0.0:9100"));
        assert_eq!(l("fd00::5").as_deref(), Some("[::]:9100"));
        assert_eq!(
            listener(&socks[..1], L4::Tcp, "10.0.0.1".parse().unwrap(), 9100)
                .map(|s| s.endpoint())
                .as_deref(),
            Some("[::]:9100")
        );
    }

    #[test]
    fn bound_address_must_match_literally() {
        let socks = vec![parse_listen("tcp:127.0.0.1:8080").unwrap()];
        assert!(listener(&socks, L4::Tcp, "10.244.0.5".parse().unwrap(), 8080).is_none());
    }

    #[test]
    fn listen_syntax() {
        let s = parse_listen("tcp:0.0.0.0:15006:transparent").unwrap();
        assert!(s.transparent);
        assert!(parse_listen("sctp:1.2.3.4:1").is_err());
        assert!(parse_listen("tcp:1.2.3.4").is_err());
    }
}
