//! DNS in a pod beyond pilot-agent's name table: the nameservers of the pod's
//! `/etc/resolv.conf`, where the agent forwards the names it does not know, and processes that
//! forward DNS themselves (a local resolver on 127.0.0.53, dnsmasq, a node-local cache).
//!
//! pilot-agent reads `/etc/resolv.conf` once at start (`NewLocalDNSServer` in
//! pkg/dns/client/dns.go: `dns.ClientConfigFromFile(resolvConf)`, each `nameserver` joined with
//! the file's port, 53) and, for a name that is not in its table, `queryUpstream` asks those
//! servers in the file's order and returns the first answer.

use std::net::{IpAddr, SocketAddr};

use crate::netns::{Owner, Socket, L4};

/// The DNS port (resolv.conf names servers without one; `dns.ClientConfigFromFile` uses 53).
pub const DNS_PORT: u16 = 53;

/// The nameservers of a pod's `/etc/resolv.conf`, in the file's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    /// The file as named on the command line or in the scenario.
    pub file: String,
    pub nameservers: Vec<IpAddr>,
}

impl ResolvConf {
    /// Reads resolv.conf text: `nameserver IP` lines (comments `#`/`;`, other options and
    /// invalid addresses are skipped, as glibc's and miekg/dns's readers skip them). `Err` names
    /// the line of an address that does not parse when nothing else is read.
    pub fn parse(file: &str, text: &str) -> Result<ResolvConf, (usize, String)> {
        let mut nameservers = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split(['#', ';']).next().unwrap_or("").trim();
            let mut words = line.split_whitespace();
            if words.next() != Some("nameserver") {
                continue;
            }
            let Some(addr) = words.next() else {
                return Err((i + 1, "`nameserver` without an address".into()));
            };
            // A scoped IPv6 address (fe80::1%eth0) names its interface; the address is enough here.
            let addr = addr.split('%').next().unwrap_or(addr);
            match addr.parse() {
                Ok(ip) => nameservers.push(ip),
                Err(_) => return Err((i + 1, format!("`{addr}` is not an IP address"))),
            }
        }
        Ok(ResolvConf { file: file.to_string(), nameservers })
    }

    /// Where pilot-agent sends a query it cannot answer: the first nameserver, port 53.
    pub fn first_server(&self) -> Option<SocketAddr> {
        self.nameservers.first().map(|ip| SocketAddr::new(*ip, DNS_PORT))
    }
}

/// A process in the pod that answers DNS on `listen` by asking `upstream`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forwarder {
    pub listen: SocketAddr,
    pub upstream: SocketAddr,
}

/// The name of a forwarder's process when the sockets do not show one.
pub const FORWARDER_PROCESS: &str = "dns-forwarder";

impl Forwarder {
    /// `LISTEN=UPSTREAM`, each `IP` or `IP:PORT` (`[v6]:PORT`; port 53 by default).
    pub fn parse(s: &str) -> Result<Forwarder, String> {
        let (l, u) = s.split_once('=').ok_or_else(|| format!("`{s}`: expected LISTEN=UPSTREAM"))?;
        Ok(Forwarder { listen: endpoint(l.trim())?, upstream: endpoint(u.trim())? })
    }

    /// The socket the forwarder listens on (when the sockets given do not show it).
    pub fn socket(&self, proto: L4) -> Socket {
        Socket {
            proto,
            addr: self.listen.ip(),
            port: self.listen.port(),
            transparent: false,
            owner: Owner::Process(FORWARDER_PROCESS.into()),
            uid: None,
        }
    }

    /// Whether `sock` is where this forwarder listens.
    pub fn listens_on(&self, sock: &Socket) -> bool {
        sock.port == self.listen.port()
            && (sock.addr == self.listen.ip()
                || (sock.is_wildcard() && sock.addr.is_ipv6() == self.listen.is_ipv6()))
    }
}

fn endpoint(s: &str) -> Result<SocketAddr, String> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok(sa);
    }
    let ip = s.trim_start_matches('[').trim_end_matches(']');
    ip.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, DNS_PORT))
        .map_err(|_| format!("`{s}`: expected IP or IP:PORT"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pod's resolv.conf as the kubelet writes it for `dnsPolicy: ClusterFirst`, and
    /// pilot-agent's reading of it (pkg/dns/client/dns.go: every `nameserver`, port 53, in order).
    #[test]
    fn resolv_conf_nameservers_in_order() {
        let text = "search default.svc.cluster.local svc.cluster.local cluster.local\n\
                    nameserver 10.96.0.10\n# nameserver 1.1.1.1\nnameserver fd00::a ; ipv6\noptions ndots:5\n";
        let r = ResolvConf::parse("resolv.conf", text).unwrap();
        assert_eq!(r.nameservers, ["10.96.0.10".parse::<IpAddr>().unwrap(), "fd00::a".parse().unwrap()]);
        assert_eq!(r.first_server(), Some("10.96.0.10:53".parse().unwrap()));
        assert_eq!(ResolvConf::parse("f", "nameserver x\n").unwrap_err().0, 1);
    }

    #[test]
    fn forwarder_syntax() {
        let f = Forwarder::parse("127.0.0.53=10.96.0.10:53").unwrap();
        assert_eq!(f.listen, "127.0.0.53:53".parse().unwrap());
        assert_eq!(f.upstream, "10.96.0.10:53".parse().unwrap());
        let f = Forwarder::parse("[::1]:5353=fd00::a").unwrap();
        assert_eq!((f.listen.port(), f.upstream.port()), (5353, 53));
        assert!(Forwarder::parse("127.0.0.53").is_err());
        assert!(Forwarder::parse("x=10.0.0.1").is_err());
        let wild = Socket { addr: "0.0.0.0".parse().unwrap(), ..f.socket(L4::Udp) };
        assert!(!f.listens_on(&wild));
        let f = Forwarder::parse("127.0.0.53=10.96.0.10").unwrap();
        assert!(f.listens_on(&Socket { addr: "0.0.0.0".parse().unwrap(), ..f.socket(L4::Udp) }));
    }
}
