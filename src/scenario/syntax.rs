//! The small syntaxes shared by `meshpath trace` flags and scenario files: who sends
//! (`--from`, `sender:`), the destination (`--dst`, `to:`), the source (`--src`, `src:`), how
//! weighted choices are made (`--pick`, `pick:`), pod addresses (`--pod-ip`, `addresses:`) and
//! the client's first bytes and HTTP request. One parser each, so a scenario probe and the
//! equivalent flags build the same [`Start`](crate::engine::Start).

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use crate::engine::{Destination, From, Pick};
use crate::envoy::select::{ClientBytes, HttpRequest};
use crate::istio::Conventions;
use crate::netns::L4;

/// A value that does not follow its syntax; the message names the value and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SyntaxError(pub String);

fn err<T>(msg: String) -> Result<T, SyntaxError> {
    Err(SyntaxError(msg))
}

/// The address an `outside` sender uses when none is given (TEST-NET-1).
pub const OUTSIDE_DEFAULT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 10));
/// The source port when a source address is given without one.
pub const DEFAULT_SOURCE_PORT: u16 = 50000;

/// `app` (uid 1000) | `envoy` (uid 1337) | `uid:N[:GID]` | `outside[:IP]`; `app` and
/// `envoy` are the pod's app and proxy identities (`istio`).
pub fn parse_from(s: &str, istio: &Conventions) -> Result<From, SyntaxError> {
    Ok(match s {
        "app" => From::Process { uid: istio.app_uid, gid: istio.app_gid },
        "envoy" => From::Process { uid: istio.proxy_uid, gid: istio.proxy_gid },
        "outside" => From::Outside { src: OUTSIDE_DEFAULT },
        _ => {
            if let Some(ip) = s.strip_prefix("outside:") {
                match ip.parse() {
                    Ok(src) => From::Outside { src },
                    Err(_) => return err(format!("`{s}`: `{ip}` is not an IP address")),
                }
            } else if let Some(ids) = s.strip_prefix("uid:") {
                let (u, g) = ids.split_once(':').unwrap_or((ids, ids));
                let num = |x: &str| {
                    x.parse::<u32>().map_err(|_| SyntaxError(format!("`{s}`: `{x}` is not a number")))
                };
                From::Process { uid: num(u)?, gid: num(g)? }
            } else {
                return err(format!("`{s}`: expected app, envoy, uid:N[:GID] or outside[:IP]"));
            }
        }
    })
}

/// `IP:PORT` (`[v6]:PORT`) or `HOST:PORT`.
pub fn parse_dst(s: &str) -> Result<Destination, SyntaxError> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok(Destination::Addr(sa));
    }
    let Some((host, port)) = s.rsplit_once(':') else {
        return err(format!("`{s}`: expected IP:PORT or HOST:PORT"));
    };
    let Ok(port) = port.parse::<u16>() else {
        return err(format!("`{s}`: `{port}` is not a port"));
    };
    if host.parse::<IpAddr>().is_ok() || host.is_empty() || host.contains(':') {
        return err(format!("`{s}`: expected IP:PORT (IPv6 in brackets) or HOST:PORT"));
    }
    Ok(Destination::Host { name: host.to_string(), port })
}

/// The destination of an ICMP probe: `IP` (`[v6]` or bare) or, as for TCP, `IP:PORT` / `HOST:PORT`
/// (ICMP has no ports: a bare address gets port 0).
pub fn parse_icmp_dst(s: &str) -> Result<Destination, SyntaxError> {
    let bare = s.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(ip) => Ok(Destination::Addr(SocketAddr::new(ip, 0))),
        Err(_) => parse_dst(s),
    }
}

/// The transport of a probe: `tcp`, `udp`, `icmp` or `icmpv6`; `icmp` towards an IPv6 address
/// is ICMPv6 (as ping does), `icmpv6` towards an IPv4 address is refused.
pub fn parse_transport(s: &str, dst_v6: bool) -> Result<L4, SyntaxError> {
    Ok(match s {
        "tcp" => L4::Tcp,
        "udp" => L4::Udp,
        "icmp" if dst_v6 => L4::Icmpv6,
        "icmp" => L4::Icmp,
        "icmpv6" if dst_v6 => L4::Icmpv6,
        "icmpv6" => return err("`icmpv6` needs an IPv6 destination".into()),
        other => return err(format!("`{other}`: expected tcp, udp, icmp or icmpv6")),
    })
}

/// An ICMP type as iptables names it (`echo-request`, `time-exceeded`, `8`, `3/3`); the code
/// is 0 unless given or implied by the name (`port-unreachable` is 3/3).
pub fn parse_icmp_type(s: &str, v6: bool) -> Result<(u8, u8), SyntaxError> {
    crate::netfilter::parse::icmp_type(s, v6).map(|(t, c)| (t, c.unwrap_or(0))).map_err(SyntaxError)
}

/// `IP` or `IP:PORT` (`[v6]:PORT`); the port defaults to [`DEFAULT_SOURCE_PORT`].
pub fn parse_src(s: &str) -> Result<SocketAddr, SyntaxError> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok(sa);
    }
    match s.parse::<IpAddr>() {
        Ok(ip) => Ok(SocketAddr::new(ip, DEFAULT_SOURCE_PORT)),
        Err(_) => err(format!("`{s}`: expected IP or IP:PORT")),
    }
}

/// `all` | `first` | `random-value=N` (also `random-value:N`, as scenario files write it).
pub fn parse_pick(s: &str) -> Result<Pick, SyntaxError> {
    Ok(match s {
        "all" => Pick::All,
        "first" => Pick::First,
        v => match v.strip_prefix("random-value=").or_else(|| v.strip_prefix("random-value:")) {
            Some(n) => match n.parse::<u64>() {
                Ok(n) => Pick::RandomValue(n),
                Err(_) => return err(format!("`{v}`: `{n}` is not a number")),
            },
            None => return err(format!("`{v}`: expected all, first or random-value=N")),
        },
    })
}

/// An address as `IP` or `IP/LEN`.
pub fn parse_addr(s: &str) -> Result<IpNet, SyntaxError> {
    if let Ok(n) = s.parse::<IpNet>() {
        return Ok(n);
    }
    match s.parse::<IpAddr>() {
        Ok(ip) => Ok(IpNet::from(ip)),
        Err(_) => err(format!("`{s}` is not an IP address or CIDR")),
    }
}

/// `K:V` for an HTTP header; the name is lower-cased and both sides trimmed.
pub fn parse_header(s: &str) -> Result<(String, String), SyntaxError> {
    match s.split_once(':') {
        Some((k, v)) => Ok((k.trim().to_ascii_lowercase(), v.trim().to_string())),
        None => err(format!("`{s}`: expected NAME:VALUE")),
    }
}

/// What the client sends first and the HTTP request, from the TLS and HTTP fields given:
/// TLS when an SNI or ALPN is given, else HTTP/1.1 when any HTTP field is, else opaque bytes.
/// The request exists when any HTTP field is given (path `/` and method `GET` by default).
pub struct Client<'a> {
    pub sni: Option<&'a str>,
    pub alpn: &'a [String],
    pub host: Option<&'a str>,
    pub path: Option<&'a str>,
    pub method: Option<&'a str>,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    /// An HTTP block was given even if all its fields are defaults (scenario `http: {}`).
    pub http: bool,
    /// The client sends nothing first (a server-first protocol); no TLS or HTTP is given.
    pub server_first: bool,
}

impl Client<'_> {
    pub fn build(&self) -> (ClientBytes, Option<HttpRequest>) {
        if self.server_first {
            return (ClientBytes::ServerFirst, None);
        }
        let http = self.http
            || self.host.is_some()
            || self.path.is_some()
            || self.method.is_some()
            || !self.headers.is_empty();
        let bytes = if self.sni.is_some() || !self.alpn.is_empty() {
            ClientBytes::Tls { sni: self.sni.map(str::to_string), alpn: self.alpn.to_vec() }
        } else if http {
            ClientBytes::Http1
        } else {
            ClientBytes::Opaque
        };
        let request = http.then(|| HttpRequest {
            host: self.host.map(str::to_string),
            path: self.path.unwrap_or("/").to_string(),
            method: self.method.unwrap_or("GET").to_string(),
            headers: self.headers.clone(),
        });
        (bytes, request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn senders() {
        let from = |s: &str| parse_from(s, &Conventions::ISTIO);
        assert_eq!(from("app"), Ok(From::Process { uid: 1000, gid: 1000 }));
        assert_eq!(from("envoy"), Ok(From::Process { uid: 1337, gid: 1337 }));
        assert_eq!(from("uid:0"), Ok(From::Process { uid: 0, gid: 0 }));
        assert_eq!(from("uid:5:6"), Ok(From::Process { uid: 5, gid: 6 }));
        assert_eq!(from("outside"), Ok(From::Outside { src: OUTSIDE_DEFAULT }));
        assert_eq!(from("outside:10.0.0.1"), Ok(From::Outside { src: "10.0.0.1".parse().unwrap() }));
        assert!(from("uid:x").is_err());
        assert!(from("nobody").is_err());
        let other = Conventions { proxy_uid: 2000, proxy_gid: 2001, ..Conventions::ISTIO };
        assert_eq!(parse_from("envoy", &other), Ok(From::Process { uid: 2000, gid: 2001 }));
    }

    #[test]
    fn destinations() {
        assert_eq!(parse_dst("10.0.0.1:80"), Ok(Destination::Addr("10.0.0.1:80".parse().unwrap())));
        assert_eq!(parse_dst("[::1]:80"), Ok(Destination::Addr("[::1]:80".parse().unwrap())));
        assert_eq!(parse_dst("reviews:9080"), Ok(Destination::Host { name: "reviews".into(), port: 9080 }));
        assert!(parse_dst("10.0.0.1").is_err());
        assert!(parse_dst("::1:80").is_err());
        assert!(parse_dst("host:99999").is_err());
    }

    #[test]
    fn sources_picks_addresses_headers() {
        assert_eq!(parse_src("10.0.0.1"), Ok("10.0.0.1:50000".parse().unwrap()));
        assert_eq!(parse_src("10.0.0.1:1"), Ok("10.0.0.1:1".parse().unwrap()));
        assert!(parse_src("x").is_err());
        assert_eq!(parse_pick("all"), Ok(Pick::All));
        assert_eq!(parse_pick("first"), Ok(Pick::First));
        assert_eq!(parse_pick("random-value=3"), Ok(Pick::RandomValue(3)));
        assert_eq!(parse_pick("random-value:3"), Ok(Pick::RandomValue(3)));
        assert!(parse_pick("random").is_err());
        assert_eq!(parse_addr("10.0.0.1"), Ok("10.0.0.1/32".parse().unwrap()));
        assert_eq!(parse_addr("fd00::1/64"), Ok("fd00::1/64".parse().unwrap()));
        assert!(parse_addr("10.0.0.300").is_err());
        assert_eq!(parse_header("X-User: jason"), Ok(("x-user".into(), "jason".into())));
        assert!(parse_header("nocolon").is_err());
    }

    /// ICMP probes: names and numbers as iptables reads `--icmp-type`; ping's `-6` rule.
    #[test]
    fn icmp_probes() {
        assert_eq!(parse_icmp_dst("10.0.0.1"), Ok(Destination::Addr("10.0.0.1:0".parse().unwrap())));
        assert_eq!(parse_icmp_dst("[fd00::1]"), Ok(Destination::Addr("[fd00::1]:0".parse().unwrap())));
        assert_eq!(parse_icmp_dst("fd00::1"), Ok(Destination::Addr("[fd00::1]:0".parse().unwrap())));
        assert_eq!(parse_transport("icmp", true), Ok(L4::Icmpv6));
        assert_eq!(parse_transport("icmp", false), Ok(L4::Icmp));
        assert!(parse_transport("icmpv6", false).is_err());
        assert_eq!(parse_icmp_type("echo-request", false), Ok((8, 0)));
        assert_eq!(parse_icmp_type("echo-request", true), Ok((128, 0)));
        assert_eq!(parse_icmp_type("port-unreachable", false), Ok((3, 3)));
        assert_eq!(parse_icmp_type("11/1", false), Ok((11, 1)));
        assert!(parse_icmp_type("nope", false).is_err());
    }

    #[test]
    fn client_bytes() {
        let c = Client {
            sni: None,
            alpn: &[],
            host: None,
            path: None,
            method: None,
            headers: vec![],
            http: false,
            server_first: false,
        };
        assert_eq!(c.build(), (ClientBytes::Opaque, None));
        let c = Client { http: true, ..c };
        let (b, r) = c.build();
        assert_eq!(b, ClientBytes::Http1);
        assert_eq!(r.map(|r| (r.path, r.method)), Some(("/".into(), "GET".into())));
        let c = Client { http: false, server_first: true, ..c };
        assert_eq!(c.build(), (ClientBytes::ServerFirst, None));
    }
}
