//! A mesh snapshot: pods with their namespace (addresses, routes, rules, sockets), rule sets,
//! Envoy configuration and processes; and the name table DNS answers come from.

use std::net::IpAddr;

use ipnet::IpNet;

use super::evidence::{Assumption, Forwarder, PodEvidence, ProxyIdentity, ResolvConf};
use crate::envoy::model::EnvoyConfig;
use crate::envoy::select::NameTable;
use crate::istio::Conventions;
use crate::netfilter::eval::Program;
use crate::netns::{Netns, Socket};

/// One pod of the snapshot, as [`PodEvidence::build`] makes it.
#[derive(Debug, Clone)]
pub struct Pod {
    pub name: String,
    pub netns: Netns,
    pub rules_v4: Option<Program>,
    pub rules_v6: Option<Program>,
    /// The rule files' text, for showing rules in reports (v4, v6).
    pub rules_text: (Option<String>, Option<String>),
    pub envoy: Option<EnvoyConfig>,
    /// Istio's conventions in this pod (the proxy's uid, ports, addresses, names).
    pub istio: Conventions,
    /// What the pod was assumed to have because the evidence did not say otherwise.
    pub assumed: Vec<Assumption>,
    /// The proxy's uid and gid and where they come from.
    pub proxy: ProxyIdentity,
    /// The pod's `/etc/resolv.conf` (pilot-agent's upstream nameservers), when given.
    pub resolv_conf: Option<ResolvConf>,
    /// Processes that forward DNS.
    pub forwarders: Vec<Forwarder>,
}

impl Pod {
    /// A pod with `addrs` on eth0, its rule sets, Envoy config and the app's sockets, and
    /// Istio's defaults for the rest ([`PodEvidence::build`]).
    pub fn new(
        name: &str,
        addrs: &[IpNet],
        rules_v4: Option<(Program, String)>,
        rules_v6: Option<(Program, String)>,
        envoy: Option<EnvoyConfig>,
        app_sockets: Vec<Socket>,
    ) -> Pod {
        PodEvidence { rules_v4, rules_v6, envoy, sockets: app_sockets, ..PodEvidence::new(name, addrs) }
            .build()
    }

    pub fn owns(&self, addr: IpAddr) -> bool {
        self.netns.interface("eth0").is_some_and(|i| i.addrs.iter().any(|a| a.addr() == addr))
    }

    /// The pod's first address of `addr`'s family.
    pub fn primary(&self, v6: bool) -> Option<IpAddr> {
        self.netns.interface("eth0")?.addrs.iter().map(|a| a.addr()).find(|a| a.is_ipv6() == v6)
    }

    /// The source address the kernel picks in this pod for a connection to `dst`, as `ip
    /// route get` shows it ([`Netns::preferred_source`]); the pod's address of that family when
    /// there is no route (the connection fails on the way, where the path says why), or the
    /// unspecified address when it has none.
    pub fn source_for(&self, dst: IpAddr) -> IpAddr {
        if let Some(src) = self.netns.preferred_source(dst, 0) {
            return src;
        }
        self.primary(dst.is_ipv6()).unwrap_or(if dst.is_ipv6() {
            IpAddr::from([0u16; 8])
        } else {
            IpAddr::from([0u8; 4])
        })
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

/// Several pods and the names they resolve.
#[derive(Debug, Clone, Default)]
pub struct Mesh {
    pub pods: Vec<Pod>,
    /// Host names (lower case) to addresses: Kubernetes services, ServiceEntry hosts and the
    /// addresses Istio auto-allocates (240.240.0.0/16).
    pub names: NameTable,
}

impl Mesh {
    /// The pods the evidence describes (in order; a start names a pod by index) and the name
    /// table.
    pub fn build(pods: Vec<PodEvidence>, names: NameTable) -> Mesh {
        Mesh { pods: pods.into_iter().map(PodEvidence::build).collect(), names }
    }

    pub fn pod_index(&self, name: &str) -> Option<usize> {
        self.pods.iter().position(|p| p.name == name)
    }

    /// The pod that owns `addr`, if any; otherwise the address is outside the snapshot.
    pub fn owner_of(&self, addr: IpAddr) -> Option<usize> {
        self.pods.iter().position(|p| p.owns(addr))
    }
}
