//! Which packets to send for one rule set.

use std::collections::BTreeSet;
use std::net::IpAddr;

/// The addresses of the test network for one family.
#[derive(Debug, Clone)]
pub struct Addrs {
    pub pod: IpAddr,
    /// A second address on the pod's eth0, added after `pod`.
    pub secondary: IpAddr,
    pub peer: IpAddr,
    pub lo: IpAddr,
    /// Envoy's inbound passthrough source (127.0.0.6 / ::6).
    pub passthrough: IpAddr,
}

impl Addrs {
    pub fn for_family(v6: bool) -> Addrs {
        let p = |s: &str| s.parse::<IpAddr>().expect("literal address");
        if v6 {
            Addrs {
                pod: p("fd00::5"),
                secondary: p("fd00::6"),
                peer: p("fd00::1"),
                lo: p("::1"),
                passthrough: p("::6"),
            }
        } else {
            Addrs {
                pod: p("10.244.0.5"),
                secondary: p("10.244.0.6"),
                peer: p("10.244.0.1"),
                lo: p("127.0.0.1"),
                passthrough: p("127.0.0.6"),
            }
        }
    }
}

/// What the rule set needs around it, read from its text.
#[derive(Debug, Clone, Default)]
pub struct RulesetFacts {
    /// `-m set --match-set NAME` names (created empty).
    pub ipsets: BTreeSet<String>,
    /// `--tproxy-mark V/M` values, for `ip rule add fwmark V/M lookup 133`.
    pub tproxy_marks: BTreeSet<String>,
    /// TPROXY `--on-port`s: a transparent listener on each.
    pub tproxy_ports: BTreeSet<u16>,
    /// Destination addresses taken from `-d` matches outside the test network.
    pub extra_dsts: Vec<(IpAddr, Option<(Proto, u16)>)>,
    /// kube-proxy service VIPs that have endpoints (`-d VIP/32 ... --dport P -j KUBE-SVC-*`).
    pub services: Vec<(IpAddr, Proto, u16)>,
    /// Non-zero values of `-m mark --mark V[/M]` matches: sockets with that SO_MARK are probed
    /// (Envoy's original_src sockets carry 1337, ztunnel's 0x539/0xfff).
    pub marks: BTreeSet<u32>,
    /// Destination ports the rules name besides the standard probe ports (at most four).
    pub ports: BTreeSet<u16>,
    /// uids / gids named by owner matches besides 0 and 1337.
    pub uids: BTreeSet<u32>,
    pub gids: BTreeSet<u32>,
}

fn value_after<'a>(words: &'a [&'a str], flag: &str) -> Option<&'a str> {
    let i = words.iter().position(|w| *w == flag)?;
    words.get(i + 1).copied()
}

/// First usable host of `a/len`: the address itself for host routes, else network + 1.
fn host_in(cidr: &str) -> Option<IpAddr> {
    let (addr, len) = cidr.split_once('/').unwrap_or((cidr, "128"));
    let addr: IpAddr = addr.parse().ok()?;
    let len: u32 = len.parse().ok()?;
    Some(match addr {
        IpAddr::V4(a) if len < 32 => IpAddr::V4(std::net::Ipv4Addr::from(u32::from(a) + 1)),
        IpAddr::V6(a) if len < 128 => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(a) + 1)),
        other => other,
    })
}

fn is_test_net(a: &IpAddr, addrs: &Addrs) -> bool {
    let special = match a {
        IpAddr::V4(v) => v.is_loopback() || v.octets()[..3] == [10, 244, 0] || v.is_unspecified(),
        IpAddr::V6(v) => v.is_loopback() || v.is_unspecified() || v.segments()[..4] == [0xfd00, 0, 0, 0],
    };
    special || *a == addrs.pod
}

pub fn facts(text: &str, addrs: &Addrs, max_extra: usize) -> RulesetFacts {
    let mut f = RulesetFacts::default();
    let mut seen = BTreeSet::new();
    for line in text.lines() {
        if !line.starts_with("-A ") {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        if let Some(set) = value_after(&words, "--match-set") {
            f.ipsets.insert(set.to_string());
        }
        if words.contains(&"TPROXY") {
            // A zero mask marks nothing; `ip rule add fwmark 0x0/0x0` would match every packet
            // (and make every destination local), which no Istio set-up does.
            if let Some(m) = value_after(&words, "--tproxy-mark") {
                let mask = m.split_once('/').map(|(_, k)| k).unwrap_or("0xffffffff");
                let zero = u32::from_str_radix(mask.trim_start_matches("0x"), 16) == Ok(0);
                if !zero {
                    f.tproxy_marks.insert(m.to_string());
                }
            }
            if let Some(p) = value_after(&words, "--on-port").and_then(|p| p.parse().ok()) {
                f.tproxy_ports.insert(p);
            }
        }
        for (flag, set) in [("--uid-owner", &mut f.uids), ("--gid-owner", &mut f.gids)] {
            if let Some(v) = value_after(&words, flag) {
                let lo = v.split('-').next().and_then(|x| x.parse::<u32>().ok());
                if let Some(id) = lo.filter(|id| *id != 0 && *id != 1337) {
                    set.insert(id);
                }
            }
        }
        if words.windows(2).any(|w| w == ["-m", "mark"]) {
            let value = value_after(&words, "--mark")
                .map(|m| m.split('/').next().unwrap_or(m))
                .and_then(|v| u32::from_str_radix(v.trim_start_matches("0x"), 16).ok());
            if let Some(v) = value.filter(|v| *v != 0) {
                if f.marks.len() < 2 {
                    f.marks.insert(v);
                }
            }
        }
        for flag in ["--dport", "--dports"] {
            if let Some(list) = value_after(&words, flag) {
                for item in list.split(',') {
                    let first = item.split(':').next().and_then(|p| p.parse::<u16>().ok());
                    if let Some(p) = first.filter(|p| !PORTS.contains(p)) {
                        if f.ports.len() < 4 {
                            f.ports.insert(p);
                        }
                    }
                }
            }
        }
        let svc = words.iter().any(|w| w.starts_with("KUBE-SVC-"));
        if svc && words.contains(&"-j") && f.services.len() < 2 {
            let dst = value_after(&words, "-d").and_then(host_in);
            let port = value_after(&words, "--dport").and_then(|p| p.parse().ok());
            let proto = if words.contains(&"udp") { Proto::Udp } else { Proto::Tcp };
            if let (Some(d), Some(p), false) = (dst, port, words.contains(&"sctp")) {
                f.services.push((d, proto, p));
            }
        }
        if f.extra_dsts.len() < max_extra {
            if let Some(i) = words.iter().position(|w| *w == "-d") {
                let negated = i > 0 && words.get(i - 1) == Some(&"!");
                let host = words.get(i + 1).and_then(|c| host_in(c));
                if let Some(h) = host.filter(|h| !negated && !is_test_net(h, addrs)) {
                    if h.is_ipv6() == addrs.pod.is_ipv6() && seen.insert(h) {
                        let proto = if words.contains(&"udp") { Proto::Udp } else { Proto::Tcp };
                        let port = value_after(&words, "--dport").and_then(|p| p.parse().ok());
                        f.extra_dsts.push((h, port.map(|p| (proto, p))));
                    }
                }
            }
        }
    }
    f
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Sent by a local socket in the pod (OUTPUT hook).
    Output,
    /// Sent by the peer, arriving on the pod's eth0 (PREROUTING hook).
    Inbound,
}

#[derive(Debug, Clone)]
pub struct Probe {
    pub dir: Direction,
    pub proto: Proto,
    pub src: IpAddr,
    pub sport: u16,
    pub dst: IpAddr,
    pub dport: u16,
    pub uid: u32,
    pub gid: u32,
    /// SO_MARK of the sending socket (0: none).
    pub mark: u32,
}

impl Probe {
    pub fn label(&self) -> String {
        let fmt = |a: &IpAddr, p: u16| match a {
            IpAddr::V6(_) => format!("[{a}]:{p}"),
            IpAddr::V4(_) => format!("{a}:{p}"),
        };
        let dir = match self.dir {
            Direction::Output if self.mark != 0 => {
                format!("output uid {} gid {} mark {:#x}", self.uid, self.gid, self.mark)
            }
            Direction::Output => format!("output uid {} gid {}", self.uid, self.gid),
            Direction::Inbound => "inbound from peer".to_string(),
        };
        format!(
            "{} {} -> {} ({dir})",
            self.proto.as_str(),
            fmt(&self.src, self.sport),
            fmt(&self.dst, self.dport)
        )
    }

    /// One line of the agent's probe file.
    pub fn agent_line(&self) -> String {
        format!(
            "{} {} {} {} {} {} {} {}\n",
            self.proto.as_str(),
            self.src,
            self.sport,
            self.dst,
            self.dport,
            self.uid,
            self.gid,
            self.mark
        )
    }
}

pub const PORTS: [u16; 8] = [53, 80, 443, 15001, 15006, 15008, 15021, 15090];
pub const FIRST_SPORT: u16 = 30000;
/// Source ports of the monitor's start and end markers (outside the probe numbering).
pub const SYNC_START: u16 = 39990;
pub const SYNC_LOADED: u16 = 39991;
pub const SYNC_END: u16 = 39992;

/// The full matrix for an Istio-sized rule set.
pub fn full(addrs: &Addrs, facts: &RulesetFacts) -> Vec<Probe> {
    let mut ids: Vec<(u32, u32)> = vec![(0, 0), (1337, 1337), (1000, 1337)];
    ids.extend(facts.uids.iter().map(|u| (*u, *u)));
    ids.extend(facts.gids.iter().map(|g| (1000, *g)));
    ids.dedup();
    let mut dsts = vec![addrs.pod, addrs.lo, addrs.peer];
    dsts.extend(facts.extra_dsts.iter().map(|(a, _)| *a));
    let mut out = Vec::new();
    let mut push = |dir, proto, src, dst, dport, uid, gid| {
        let sport = FIRST_SPORT + out.len() as u16;
        out.push(Probe { dir, proto, src, sport, dst, dport, uid, gid, mark: 0 });
    };
    for (n, &(uid, gid)) in ids.iter().enumerate() {
        // Addresses named by the rules matter for the address matches, which the first two
        // identities (root, Envoy) already cover; the others get the test network only.
        let dsts = if n < 2 { &dsts[..] } else { &dsts[..3] };
        for &dst in dsts {
            let src = if dst == addrs.lo { addrs.lo } else { addrs.pod };
            for proto in [Proto::Tcp, Proto::Udp] {
                for port in PORTS {
                    push(Direction::Output, proto, src, dst, port, uid, gid);
                }
            }
        }
    }
    // Sockets with a mark (Envoy/ztunnel), as uid/gid 1337, on the ports the rules single out.
    let marked_ports = [53, 80, 15001, 15006, 15008];
    for &mark in &facts.marks {
        for dst in [addrs.pod, addrs.lo, addrs.peer] {
            let src = if dst == addrs.lo { addrs.lo } else { addrs.pod };
            for proto in [Proto::Tcp, Proto::Udp] {
                for port in marked_ports {
                    let sport = FIRST_SPORT + out.len() as u16;
                    out.push(Probe {
                        dir: Direction::Output,
                        proto,
                        src,
                        sport,
                        dst,
                        dport: port,
                        uid: 1337,
                        gid: 1337,
                        mark,
                    });
                }
            }
        }
    }
    let mut push = |dir, proto, src, dst, dport, uid, gid| {
        let sport = FIRST_SPORT + out.len() as u16;
        out.push(Probe { dir, proto, src, sport, dst, dport, uid, gid, mark: 0 });
    };
    // Envoy's inbound passthrough connection to the app (bound to 127.0.0.6 / ::6).
    for proto in [Proto::Tcp, Proto::Udp] {
        for port in PORTS {
            push(Direction::Output, proto, addrs.passthrough, addrs.pod, port, 1337, 1337);
        }
    }
    let all_ports: Vec<u16> = PORTS.iter().chain(&facts.ports).copied().collect();
    for dst in [addrs.pod, addrs.secondary] {
        for proto in [Proto::Tcp, Proto::Udp] {
            for &port in &all_ports {
                push(Direction::Inbound, proto, addrs.peer, dst, port, 0, 0);
            }
        }
    }
    // The ports the rules name, from an application socket.
    for &dst in &dsts {
        let src = if dst == addrs.lo { addrs.lo } else { addrs.pod };
        for proto in [Proto::Tcp, Proto::Udp] {
            for &port in &facts.ports {
                push(Direction::Output, proto, src, dst, port, 0, 0);
            }
        }
    }
    out
}

/// A handful of probes for the big kube-proxy node rule sets (meshpath's debug build needs
/// seconds per trace there): two service VIPs with endpoints and one without (output as root),
/// the peer, and inbound to the pod address.
pub fn small(addrs: &Addrs, facts: &RulesetFacts) -> Vec<Probe> {
    let mut out = Vec::new();
    let mut push = |dir, proto, src, dst, dport| {
        let sport = FIRST_SPORT + out.len() as u16;
        out.push(Probe { dir, proto, src, sport, dst, dport, uid: 0, gid: 0, mark: 0 });
    };
    for (dst, proto, port) in &facts.services {
        push(Direction::Output, *proto, addrs.pod, *dst, *port);
    }
    if let Some((dst, svc)) = facts.extra_dsts.first() {
        let (proto, port) = svc.unwrap_or((Proto::Tcp, 80));
        push(Direction::Output, proto, addrs.pod, *dst, port);
    }
    push(Direction::Output, Proto::Tcp, addrs.pod, addrs.peer, 80);
    push(Direction::Inbound, Proto::Tcp, addrs.peer, addrs.pod, 80);
    out
}
