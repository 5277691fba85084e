//! The neighbour table: what `ip neigh` shows, and which entries let a packet leave without
//! resolving its next hop first.
//!
//! Before a packet leaves through an interface, the kernel needs the next hop's link-layer
//! address (`ip_finish_output2` in net/ipv4/ip_output.c, `ip6_finish_output2` in
//! net/ipv6/ip6_output.c, both through `neigh_output`). An entry in a valid state (`NUD_VALID`
//! in include/net/neighbour.h: PERMANENT, NOARP, REACHABLE, PROBE, STALE, DELAY) is used as it
//! is; anything else (no entry, INCOMPLETE, FAILED, NONE) makes `__neigh_event_send`
//! (net/core/neighbour.c) start a resolution: ARP for IPv4, neighbour discovery for IPv6.

use std::net::IpAddr;

use serde::Serialize;

use super::route::RouteSyntaxError;

/// A neighbour entry's state (`ip neigh` prints it in capitals).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum NeighbourState {
    Permanent,
    Noarp,
    Reachable,
    Stale,
    Delay,
    Probe,
    Incomplete,
    Failed,
    None,
}

impl NeighbourState {
    pub fn as_str(self) -> &'static str {
        match self {
            NeighbourState::Permanent => "PERMANENT",
            NeighbourState::Noarp => "NOARP",
            NeighbourState::Reachable => "REACHABLE",
            NeighbourState::Stale => "STALE",
            NeighbourState::Delay => "DELAY",
            NeighbourState::Probe => "PROBE",
            NeighbourState::Incomplete => "INCOMPLETE",
            NeighbourState::Failed => "FAILED",
            NeighbourState::None => "NONE",
        }
    }

    /// `NUD_VALID`: the entry's link-layer address is used without resolving.
    pub fn is_valid(self) -> bool {
        matches!(
            self,
            NeighbourState::Permanent
                | NeighbourState::Noarp
                | NeighbourState::Reachable
                | NeighbourState::Stale
                | NeighbourState::Delay
                | NeighbourState::Probe
        )
    }

    fn parse(word: &str) -> Option<NeighbourState> {
        Some(match word {
            "PERMANENT" => NeighbourState::Permanent,
            "NOARP" => NeighbourState::Noarp,
            "REACHABLE" => NeighbourState::Reachable,
            "STALE" => NeighbourState::Stale,
            "DELAY" => NeighbourState::Delay,
            "PROBE" => NeighbourState::Probe,
            "INCOMPLETE" => NeighbourState::Incomplete,
            "FAILED" => NeighbourState::Failed,
            "NONE" => NeighbourState::None,
            _ => return Option::None,
        })
    }
}

/// One line of `ip neigh`: `fe80::1 dev eth0 lladdr ee:ee:ee:ee:ee:ee router REACHABLE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    pub addr: IpAddr,
    pub dev: String,
    pub lladdr: Option<String>,
    pub router: bool,
    pub state: NeighbourState,
}

/// One line of `ip neigh show` output (`ip neigh add ...` arguments are read too). A line
/// without a state is PERMANENT when it has an `lladdr` (what `ip neigh add` makes), NONE
/// otherwise.
pub fn parse_ip_neigh(line: &str) -> Result<Option<Neighbour>, RouteSyntaxError> {
    let syntax = |m: String| RouteSyntaxError { message: m };
    let mut words: Vec<&str> = line.split_whitespace().collect();
    if words.first() == Some(&"ip") {
        words.drain(..words.iter().position(|w| matches!(*w, "add" | "replace")).map_or(0, |p| p + 1));
    }
    let Some(first) = words.first() else { return Ok(Option::None) };
    let first = first.split('%').next().unwrap_or(first);
    let addr: IpAddr = first.parse().map_err(|_| syntax(format!("`{first}` is not an IP address")))?;
    let (mut dev, mut lladdr, mut router, mut state) = (String::new(), Option::None, false, Option::None);
    let mut it = words[1..].iter();
    while let Some(w) = it.next() {
        let mut val = || it.next().copied().ok_or_else(|| syntax(format!("`{w}` needs a value")));
        match *w {
            "dev" => dev = val()?.to_string(),
            "lladdr" => lladdr = Some(val()?.to_string()),
            "nud" => {
                let v = val()?.to_ascii_uppercase();
                state = Some(NeighbourState::parse(&v).ok_or_else(|| syntax(format!("unknown state `{v}`")))?)
            }
            "proto" | "vlan" | "vni" | "port" | "protocol" => {
                val()?;
            }
            "router" | "proxy" | "extern_learn" | "offload" | "managed" | "permanent" => {
                router |= *w == "router";
            }
            other => match NeighbourState::parse(other) {
                Some(s) => state = Some(s),
                Option::None => return Err(syntax(format!("unsupported neighbour attribute `{other}`"))),
            },
        }
    }
    if dev.is_empty() {
        return Err(syntax("neighbour entry without `dev`".into()));
    }
    let state =
        state.unwrap_or(if lladdr.is_some() { NeighbourState::Permanent } else { NeighbourState::None });
    Ok(Some(Neighbour { addr, dev, lladdr, router, state }))
}

/// The solicited-node multicast address a neighbour solicitation for `target` goes to
/// (`addrconf_addr_solict_mult` in include/net/addrconf.h: ff02::1:ff00:0/104 and the
/// target's low 24 bits).
pub fn solicited_node(target: std::net::Ipv6Addr) -> std::net::Ipv6Addr {
    let s = target.segments();
    std::net::Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00 | (s[6] & 0xff), s[7])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ip neigh` output as iproute2's `print_neigh` (ip/ipneigh.c) writes it.
    #[test]
    fn ip_neigh_lines() {
        let n =
            parse_ip_neigh("fe80::1 dev eth0 lladdr ee:ee:ee:ee:ee:ee router REACHABLE").unwrap().unwrap();
        assert_eq!(n.addr, "fe80::1".parse::<IpAddr>().unwrap());
        assert_eq!((n.dev.as_str(), n.router, n.state), ("eth0", true, NeighbourState::Reachable));
        assert!(n.state.is_valid());
        let n = parse_ip_neigh("169.254.1.1 dev eth0 FAILED").unwrap().unwrap();
        assert_eq!((n.lladdr, n.state), (Option::None, NeighbourState::Failed));
        assert!(!n.state.is_valid());
        let n = parse_ip_neigh("fd00::9 dev eth0 INCOMPLETE").unwrap().unwrap();
        assert!(!n.state.is_valid());
        let n = parse_ip_neigh("10.0.0.1 dev eth0 lladdr 02:00:00:00:00:01 STALE").unwrap().unwrap();
        assert!(n.state.is_valid());
        let n = parse_ip_neigh("ip neigh add 10.0.0.1 lladdr 02:00:00:00:00:01 dev eth0").unwrap().unwrap();
        assert_eq!(n.state, NeighbourState::Permanent);
        assert_eq!(parse_ip_neigh("  ").unwrap(), Option::None);
        assert!(parse_ip_neigh("10.0.0.1 lladdr 02:00:00:00:00:01").is_err());
        assert!(parse_ip_neigh("nonsense dev eth0").is_err());
        assert!(parse_ip_neigh("10.0.0.1 dev eth0 WOBBLY").is_err());
    }

    /// RFC 4291 section 2.7.1: ff02::1:ffXX:XXXX from the low 24 bits.
    #[test]
    fn solicited_node_address() {
        let t: std::net::Ipv6Addr = "fd01:0:0:2::514".parse().unwrap();
        assert_eq!(solicited_node(t), "ff02::1:ff00:514".parse::<std::net::Ipv6Addr>().unwrap());
        let t: std::net::Ipv6Addr = "fe80::ecee:eeff:feee:eeee".parse().unwrap();
        assert_eq!(solicited_node(t), "ff02::1:ffee:eeee".parse::<std::net::Ipv6Addr>().unwrap());
    }
}
