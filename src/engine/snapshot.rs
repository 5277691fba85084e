//! A mesh snapshot: pods with their namespace (addresses, routes, rules, sockets), rule sets,
//! Envoy configuration and processes; and the name table DNS answers come from.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::envoy::model::EnvoyConfig;
use crate::envoy::select::NameTable;
use crate::netfilter::eval::Program;
use crate::netfilter::model::Target;
use crate::netns::{Netns, Socket, L4};

/// Istio's proxy user and group.
pub const ENVOY_UID: u32 = 1337;
/// The app's uid when the user does not say.
pub const APP_UID: u32 = 1000;
/// pilot-agent's DNS proxy port.
pub const DNS_PROXY_PORT: u16 = 15053;

/// One pod of the snapshot.
#[derive(Debug, Clone)]
pub struct Pod {
    pub name: String,
    pub netns: Netns,
    pub rules_v4: Option<Program>,
    pub rules_v6: Option<Program>,
    /// The rule files' text, for showing rules in reports (v4, v6).
    pub rules_text: (Option<String>, Option<String>),
    pub envoy: Option<EnvoyConfig>,
}

impl Pod {
    /// A pod with `addrs` on eth0, its rule sets, Envoy config and the app's sockets. Envoy's
    /// sockets come from its listeners (`bind_to_port`, `transparent`); pilot-agent's DNS
    /// proxy listens on 127.0.0.1:15053 when the rules capture DNS; TPROXY rules get Istio's
    /// policy routing (fwmark to table 133, `local default dev lo`).
    pub fn new(
        name: &str,
        addrs: &[IpNet],
        rules_v4: Option<(Program, String)>,
        rules_v6: Option<(Program, String)>,
        envoy: Option<EnvoyConfig>,
        app_sockets: Vec<Socket>,
    ) -> Pod {
        let mut netns = Netns::pod(addrs);
        let (p4, t4) = split(rules_v4);
        let (p6, t6) = split(rules_v6);
        for (prog, v6) in [(&p4, false), (&p6, true)] {
            let Some(prog) = prog else { continue };
            netns.add_istio_tproxy_routing(&prog.tproxy_marks, v6);
            if captures_dns(prog) {
                let lo: IpAddr = if v6 { "::1" } else { "127.0.0.1" }.parse().expect("literal");
                for proto in [L4::Udp, L4::Tcp] {
                    let s = Socket {
                        proto,
                        addr: lo,
                        port: DNS_PROXY_PORT,
                        transparent: false,
                        owner: "pilot-agent".into(),
                        uid: Some(ENVOY_UID),
                    };
                    if !netns.sockets.contains(&s) {
                        netns.sockets.push(s);
                    }
                }
            }
        }
        if let Some(cfg) = &envoy {
            for l in cfg.listeners.iter().filter(|l| l.bind_to_port) {
                let Some(sa) = l.address.socket() else { continue };
                netns.sockets.push(Socket {
                    proto: L4::Tcp,
                    addr: sa.ip(),
                    port: sa.port(),
                    transparent: l.transparent,
                    owner: "envoy".into(),
                    uid: Some(ENVOY_UID),
                });
            }
        }
        netns.sockets.extend(app_sockets);
        Pod { name: name.to_string(), netns, rules_v4: p4, rules_v6: p6, rules_text: (t4, t6), envoy }
    }

    pub fn owns(&self, addr: IpAddr) -> bool {
        self.netns.interface("eth0").is_some_and(|i| i.addrs.iter().any(|a| a.addr() == addr))
    }

    /// The pod's first address of `addr`'s family.
    pub fn primary(&self, v6: bool) -> Option<IpAddr> {
        self.netns.interface("eth0")?.addrs.iter().map(|a| a.addr()).find(|a| a.is_ipv6() == v6)
    }

    pub fn program(&self, v6: bool) -> Option<&Program> {
        if v6 {
            self.rules_v6.as_ref()
        } else {
            self.rules_v4.as_ref()
        }
    }

    pub fn rules_text(&self, v6: bool) -> Option<&str> {
        if v6 {
            self.rules_text.1.as_deref()
        } else {
            self.rules_text.0.as_deref()
        }
    }
}

fn split(x: Option<(Program, String)>) -> (Option<Program>, Option<String>) {
    match x {
        Some((p, t)) => (Some(p), Some(t)),
        None => (None, None),
    }
}

/// Whether the rules send DNS to pilot-agent's proxy (REDIRECT --to-ports 15053).
fn captures_dns(p: &Program) -> bool {
    p.ruleset
        .tables
        .iter()
        .flat_map(|t| &t.chains)
        .flat_map(|c| &c.rules)
        .any(|r| matches!(r.target, Target::Redirect { ports: Some(pr) } if pr.lo == DNS_PROXY_PORT))
}

/// Several pods and the names they resolve.
#[derive(Debug, Clone, Default)]
pub struct Mesh {
    pub pods: Vec<Pod>,
    /// Host names (lower case) to addresses: Kubernetes services, ServiceEntry hosts and the
    /// addresses Istio auto-allocates (240.240.0.0/16).
    pub names: NameTable,
}

impl Mesh {
    pub fn pod_index(&self, name: &str) -> Option<usize> {
        self.pods.iter().position(|p| p.name == name)
    }

    /// The pod that owns `addr`, if any; otherwise the address is outside the snapshot.
    pub fn owner_of(&self, addr: IpAddr) -> Option<usize> {
        self.pods.iter().position(|p| p.owns(addr))
    }
}
