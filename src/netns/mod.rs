//! A pod's network namespace: interfaces and addresses, routes and `ip rule`s, listening
//! sockets, and the sysctls that change the packet path. The netfilter evaluator asks it
//! routing and socket questions; it knows nothing of netfilter.

mod neigh;
mod route;
mod socket;
mod sockets_text;

use std::net::IpAddr;

use ipnet::IpNet;

pub use neigh::{parse_ip_neigh, solicited_node, Neighbour, NeighbourState};
pub use route::{parse_ip_route, parse_ip_rule, IpRule, Route, RouteKind, RouteLookup, RouteSyntaxError};
pub use socket::{parse_listen, Owner, Socket, L4};
pub use sockets_text::{parse_sockets, SocketsError};

/// One interface and its addresses, in the order they were added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub addrs: Vec<IpNet>,
}

/// Routing tables by number, as the kernel names them.
pub mod table {
    pub const LOCAL: u32 = 255;
    pub const MAIN: u32 = 254;
    pub const DEFAULT: u32 = 253;

    pub fn name(t: u32) -> String {
        match t {
            LOCAL => "local".into(),
            MAIN => "main".into(),
            DEFAULT => "default".into(),
            n => n.to_string(),
        }
    }
}

/// The namespace: everything routing and socket lookup need.
#[derive(Debug, Clone, Default)]
pub struct Netns {
    pub interfaces: Vec<Interface>,
    pub routes: Vec<Route>,
    pub rules: Vec<IpRule>,
    pub sockets: Vec<Socket>,
    /// `net.ipv4.ip_forward` / `net.ipv6.conf.all.forwarding` (0 in a new namespace).
    pub forwarding: bool,
    /// `net.ipv4.conf.*.route_localnet` (0 by default: 127/8 from outside is martian).
    pub route_localnet: bool,
    /// The neighbour table (`ip neigh`), when given: its valid entries spare the resolution.
    pub neighbours: Option<Vec<Neighbour>>,
}

impl Netns {
    /// A pod as Kubernetes sets it up: `lo` with 127.0.0.1/8 and ::1 (Istio's 127.0.0.6 is
    /// within 127/8), `eth0` with the pod's addresses in the order given, the kernel's local
    /// routes, a connected route and a default route via eth0, and the three default
    /// `ip rule`s. What Istio adds beside its rules is added by `engine::evidence`.
    pub fn pod(addrs: &[IpNet]) -> Netns {
        let lo = Interface {
            name: "lo".into(),
            addrs: vec!["127.0.0.1/8".parse().expect("literal"), "::1/128".parse().expect("literal")],
        };
        let eth0 = Interface { name: "eth0".into(), addrs: addrs.to_vec() };
        let mut ns = Netns { interfaces: vec![lo, eth0], ..Netns::default() };
        ns.rules = IpRule::defaults();
        ns.add_kernel_routes();
        for fam_default in ["0.0.0.0/0", "::/0"] {
            let dst: IpNet = fam_default.parse().expect("literal");
            let has_family = addrs.iter().any(|a| a.addr().is_ipv4() == dst.addr().is_ipv4());
            if has_family {
                ns.routes.push(Route {
                    table: table::MAIN,
                    kind: RouteKind::Unicast,
                    dst,
                    dev: "eth0".into(),
                    via: None,
                    src: None,
                });
            }
        }
        ns
    }

    /// The routes the kernel adds by itself for every address: `local` routes in table
    /// local, and the connected prefix in main.
    pub fn add_kernel_routes(&mut self) {
        let mut add = Vec::new();
        for iface in &self.interfaces {
            for a in &iface.addrs {
                let dst = if iface.name == "lo" && a.addr().is_ipv4() {
                    *a // local 127.0.0.0/8 dev lo
                } else {
                    IpNet::from(a.addr())
                };
                // A second IPv4 address in a prefix already there is secondary: the kernel adds
                // no prefix route for it, and its `local` route's preferred source is the
                // primary (`fib_add_ifaddr` in net/ipv4/fib_frontend.c: `prim` for
                // IFA_F_SECONDARY, `fib_magic(RTM_NEWROUTE, RTN_LOCAL, addr, 32, prim, 0)`).
                let primary = match a {
                    IpNet::V4(_) if a.prefix_len() < a.max_prefix_len() => iface
                        .addrs
                        .iter()
                        .find(|p| p.addr().is_ipv4() && p.trunc() == a.trunc())
                        .map_or(a.addr(), |p| p.addr()),
                    _ => a.addr(),
                };
                add.push(Route {
                    table: table::LOCAL,
                    kind: RouteKind::Local,
                    dst: dst.trunc(),
                    dev: iface.name.clone(),
                    via: None,
                    src: Some(primary),
                });
                let secondary = add
                    .iter()
                    .any(|r: &Route| r.table == table::MAIN && r.dev == iface.name && r.dst == a.trunc());
                if iface.name != "lo" && a.prefix_len() < a.max_prefix_len() && !secondary {
                    add.push(Route {
                        table: table::MAIN,
                        kind: RouteKind::Unicast,
                        dst: a.trunc(),
                        dev: iface.name.clone(),
                        via: None,
                        src: Some(a.addr()),
                    });
                }
            }
        }
        for r in add {
            if !self.routes.contains(&r) {
                self.routes.push(r);
            }
        }
    }

    pub fn interface(&self, name: &str) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.name == name)
    }

    /// Whether `addr` is one of this namespace's own addresses (the local table says so).
    pub fn is_local(&self, addr: IpAddr) -> bool {
        self.routes
            .iter()
            .any(|r| r.table == table::LOCAL && r.kind == RouteKind::Local && r.dst.contains(&addr))
    }

    /// The address `REDIRECT` in PREROUTING rewrites to: IPv4 the first address of the
    /// incoming interface (its primary); IPv6 the newest address whose scope matches the
    /// packet's destination (the kernel keeps v6 addresses newest first; net/ipv6/addrconf.c).
    pub fn redirect_address(&self, iface: &str, dst: IpAddr) -> Option<IpAddr> {
        let iface = self.interface(iface)?;
        match dst {
            IpAddr::V4(_) => iface.addrs.iter().map(|a| a.addr()).find(IpAddr::is_ipv4),
            IpAddr::V6(d) => {
                let link_local = (d.segments()[0] & 0xffc0) == 0xfe80;
                iface.addrs.iter().rev().map(|a| a.addr()).find(|a| match a {
                    IpAddr::V6(v6) => {
                        ((v6.segments()[0] & 0xffc0) == 0xfe80) == link_local && v6.to_ipv4_mapped().is_none()
                    }
                    IpAddr::V4(_) => false,
                })
            }
        }
    }

    /// The source address the kernel would pick on `dev` for `dst` (first same-family address).
    pub fn source_for(&self, dev: &str, dst: IpAddr) -> Option<IpAddr> {
        if self.is_local(dst) {
            return Some(dst);
        }
        self.interface(dev)?.addrs.iter().map(|a| a.addr()).find(|a| a.is_ipv4() == dst.is_ipv4())
    }

    /// The source address of a locally generated packet to `dst`, as `ip route get DST` shows
    /// it (`None` without a route or an address to use):
    /// * a `local` route (127/8, ::1, the pod's own addresses): its preferred source, else `dst`
    ///   itself (`ip_route_output_key_hash_rcu` in net/ipv4/route.c: for `RTN_LOCAL`,
    ///   `fl4->saddr = res->fi->fib_prefsrc` or `fl4->daddr`; the kernel's local routes carry
    ///   `src` the address they were made for, so 127.0.0.53 gets 127.0.0.1);
    /// * another route with `src`: that address (`FIB_RES_PREFSRC`);
    /// * otherwise an address of the output device: for IPv4 the first whose prefix holds `dst`,
    ///   else the device's primary (`inet_select_addr` in net/ipv4/devinet.c); for IPv6 one of
    ///   the same scope as `dst` (link-local or not), newest first (`ipv6_dev_get_saddr` in
    ///   net/ipv6/addrconf.c prefers the same scope, RFC 6724 rule 2).
    pub fn preferred_source(&self, dst: IpAddr, mark: u32) -> Option<IpAddr> {
        let r = self.route(dst, None, mark, None);
        match r.kind? {
            RouteKind::Local => Some(r.src.unwrap_or(dst)),
            RouteKind::Unicast => r.src.or_else(|| {
                let addrs = &self.interface(&r.dev)?.addrs;
                match dst {
                    IpAddr::V4(_) => {
                        let v4 = || addrs.iter().filter(|a| a.addr().is_ipv4());
                        v4().find(|a| a.contains(&dst)).or_else(|| v4().next()).map(|a| a.addr())
                    }
                    IpAddr::V6(d) => {
                        let ll = |a: &std::net::Ipv6Addr| (a.segments()[0] & 0xffc0) == 0xfe80;
                        let v6 = || {
                            addrs.iter().rev().filter_map(|a| match a.addr() {
                                IpAddr::V6(x) => Some(x),
                                IpAddr::V4(_) => None,
                            })
                        };
                        v6().find(|a| ll(a) == ll(&d)).or_else(|| v6().next()).map(IpAddr::V6)
                    }
                }
            }),
            _ => None,
        }
    }

    /// Looks up a route as `fib_lookup` does: `ip rule`s by preference, each naming a table,
    /// longest prefix within the table.
    pub fn route(&self, dst: IpAddr, src: Option<IpAddr>, mark: u32, iif: Option<&str>) -> RouteLookup {
        route::lookup(self, dst, src, mark, iif)
    }

    /// The neighbour entry for `addr` on `dev`, when the table was given and has one.
    pub fn neighbour(&self, addr: IpAddr, dev: &str) -> Option<&Neighbour> {
        self.neighbours.as_ref()?.iter().find(|n| n.addr == addr && n.dev == dev)
    }

    /// The next hop of a packet to `dst` and the device it leaves by: the route's gateway
    /// (`via`), else `dst` itself on the link (`rt_nexthop` in include/net/route.h,
    /// `rt6_nexthop` in include/net/ip6_route.h).
    pub fn next_hop(&self, dst: IpAddr, src: Option<IpAddr>, mark: u32) -> Option<(IpAddr, String)> {
        let r = self.route(dst, src, mark, None);
        match r.kind? {
            RouteKind::Unicast => Some((r.via.unwrap_or(dst), r.dev)),
            _ => None,
        }
    }

    /// The listening socket a new connection to `dst:port` reaches: a socket bound to exactly
    /// `dst` before a wildcard one, IPv4 before dual-stack IPv6 (net/ipv4/inet_hashtables.c).
    pub fn listener(&self, proto: L4, dst: IpAddr, port: u16) -> Option<&Socket> {
        socket::listener(&self.sockets, proto, dst, port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Netns {
        Netns::pod(&["10.244.0.5/24".parse().unwrap(), "10.244.0.6/24".parse().unwrap()])
    }

    #[test]
    fn every_own_address_and_127_8_is_local() {
        let ns = pod();
        for a in ["10.244.0.5", "10.244.0.6", "127.0.0.1", "127.0.0.6", "::1"] {
            assert!(ns.is_local(a.parse().unwrap()), "{a}");
        }
        assert!(!ns.is_local("10.244.0.7".parse().unwrap()));
        assert!(!ns.is_local("::6".parse().unwrap()), "::6 is not local until added to lo");
    }

    #[test]
    fn redirect_picks_the_primary_address() {
        let ns = pod();
        assert_eq!(
            ns.redirect_address("eth0", "10.244.0.6".parse().unwrap()),
            Some("10.244.0.5".parse().unwrap())
        );
        let v6 = Netns::pod(&["fd00::5/64".parse().unwrap(), "fd00::6/64".parse().unwrap()]);
        assert_eq!(v6.redirect_address("eth0", "fd00::5".parse().unwrap()), Some("fd00::6".parse().unwrap()));
    }

    /// `ip route get` in a pod with 10.244.0.5/24 and 10.244.0.6/24 on eth0 (the kernel's
    /// local routes carry `src`; see [`Netns::preferred_source`] for the kernel functions):
    /// `local 127.0.0.53 dev lo src 127.0.0.1`, `local 10.244.0.6 dev lo src 10.244.0.5`,
    /// `10.96.0.10 dev eth0 src 10.244.0.5`, `10.244.0.9 dev eth0 src 10.244.0.5`, `::1 dev lo
    /// src ::1`.
    #[test]
    fn source_addresses_as_ip_route_get_shows_them() {
        let ns = pod();
        let src = |d: &str| ns.preferred_source(d.parse().unwrap(), 0).map(|a| a.to_string());
        assert_eq!(src("127.0.0.53").as_deref(), Some("127.0.0.1"));
        assert_eq!(src("127.0.0.1").as_deref(), Some("127.0.0.1"));
        // 10.244.0.6 is secondary: its local route's source is the primary.
        assert_eq!(src("10.244.0.6").as_deref(), Some("10.244.0.5"));
        assert_eq!(src("10.96.0.10").as_deref(), Some("10.244.0.5"));
        assert_eq!(src("10.244.0.9").as_deref(), Some("10.244.0.5"));
        assert_eq!(src("::1").as_deref(), Some("::1"));
        // No IPv6 route in an IPv4-only pod: connect() fails with ENETUNREACH.
        assert_eq!(src("fd00::1"), None);
        let mut ns = pod();
        ns.routes.push(Route {
            table: table::MAIN,
            kind: RouteKind::Unicast,
            dst: "192.168.0.0/16".parse().unwrap(),
            dev: "eth0".into(),
            via: None,
            src: Some("10.244.0.6".parse().unwrap()),
        });
        assert_eq!(
            ns.preferred_source("192.168.1.1".parse().unwrap(), 0),
            Some("10.244.0.6".parse().unwrap())
        );
        let v6 = Netns::pod(&["fe80::5/64".parse().unwrap(), "fd00::5/64".parse().unwrap()]);
        assert_eq!(v6.preferred_source("fd00::9".parse().unwrap(), 0), Some("fd00::5".parse().unwrap()));
        assert_eq!(v6.preferred_source("fe80::9".parse().unwrap(), 0), Some("fe80::5".parse().unwrap()));
    }

    #[test]
    fn local_addresses_route_via_lo_and_others_via_eth0() {
        let ns = pod();
        let r = ns.route("10.244.0.5".parse().unwrap(), None, 0, None);
        assert_eq!((r.kind, r.dev.as_str()), (Some(RouteKind::Local), "lo"));
        let r = ns.route("10.96.0.10".parse().unwrap(), None, 0, None);
        assert_eq!((r.kind, r.dev.as_str()), (Some(RouteKind::Unicast), "eth0"));
    }
}
