//! Istio's conventions: the ports, identities, addresses, routing table, marks and object names
//! Istio sets up in a pod with a sidecar, as one value with Istio's defaults. A pod carries its
//! own [`Conventions`] (evidence may override a default, e.g. a proxy running as another uid);
//! nothing else in meshpath spells these numbers or names.
//!
//! Every default cites where Istio sets it (paths in the istio/istio repository).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What Istio sets up in a pod, with Istio's defaults ([`Conventions::ISTIO`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conventions {
    /// The uid Envoy and pilot-agent run as; the rules exempt it from capture
    /// (`-m owner --uid-owner 1337 -j RETURN`). `DefaultProxyUID` in
    /// tools/istio-iptables/pkg/constants/constants.go; `defaultNoRedirectUID` in
    /// cni/pkg/plugin/sidecar_redirect.go.
    pub proxy_uid: u32,
    /// The gid Envoy and pilot-agent run as (`--gid-owner 1337`). `defaultNoRedirectGID` in
    /// cni/pkg/plugin/sidecar_redirect.go (the injector sets `runAsGroup: 1337`).
    pub proxy_gid: u32,
    /// The uid and gid of the application when the evidence does not say: not an Istio value
    /// but meshpath's default sender (`--from app`), a common non-root uid that is neither
    /// root nor the proxy's.
    pub app_uid: u32,
    pub app_gid: u32,
    /// Envoy's outbound capture port: `REDIRECT --to-ports 15001` in ISTIO_REDIRECT, and the
    /// `virtualOutbound` listener. `ProxyPort` in tools/common/config/config.go
    /// (`DefaultConfig`).
    pub outbound_capture_port: u16,
    /// Envoy's inbound capture port: `REDIRECT --to-ports 15006` in ISTIO_IN_REDIRECT (or
    /// `TPROXY --on-port 15006`), and the `virtualInbound` listener. `InboundCapturePort` in
    /// tools/common/config/config.go.
    pub inbound_capture_port: u16,
    /// The HBONE tunnel port the rules exempt from inbound capture. `InboundTunnelPort` in
    /// tools/common/config/config.go.
    pub hbone_port: u16,
    /// pilot-agent's DNS proxy, where DNS capture redirects port 53
    /// (`REDIRECT --to-ports 15053`). `IstioAgentDNSListenerPort` in
    /// tools/istio-iptables/pkg/constants/constants.go.
    pub dns_proxy_port: u16,
    /// Envoy's Prometheus stats port. `ENVOY_PROMETHEUS_PORT` in
    /// pilot/cmd/pilot-agent/options/options.go.
    pub stats_port: u16,
    /// pilot-agent's status port (merged metrics, application probes). `defaultProxyStatusPort`
    /// in cni/pkg/plugin/sidecar_redirect.go.
    pub agent_status_port: u16,
    /// Envoy's health (readiness) port. `ENVOY_STATUS_PORT` in
    /// pilot/cmd/pilot-agent/options/options.go.
    pub health_port: u16,
    /// The source address Envoy binds for inbound passthrough connections to the app (IPv4).
    /// `InboundPassthroughBindIpv4` in pilot/pkg/networking/core/listener_address.go.
    pub inbound_passthrough_v4: Ipv4Addr,
    /// The same for IPv6. `InboundPassthroughBindIpv6` in
    /// pilot/pkg/networking/core/listener_address.go.
    pub inbound_passthrough_v6: Ipv6Addr,
    /// The policy routing table of TPROXY mode (`ip rule add fwmark MARK lookup 133`,
    /// `ip route add local default dev lo table 133`). `InboundTProxyRouteTable` in
    /// tools/common/config/config.go; the rule and route in tools/common/tproxy/run_linux.go.
    pub tproxy_table: u32,
    /// The mark TPROXY mode puts on inbound packets (`--tproxy-mark 0x539/0xffffffff`) and
    /// the `ip rule` matches. `InboundTProxyMark` in tools/common/config/config.go.
    pub tproxy_mark: u32,
    /// The socket mark of Envoy's upstream connections from the `original_src` listener
    /// filter (TPROXY mode). `OriginalSrc` (`Mark: 1337`) in pilot/pkg/xds/filters/filters.go.
    pub original_src_mark: u32,
    /// The cluster that forwards to the original destination (`ALLOW_ANY`).
    /// `PassthroughCluster` in pilot/pkg/networking/util/util.go.
    pub passthrough_cluster: &'static str,
    /// The cluster that goes nowhere (`REGISTRY_ONLY`, unresolved routes).
    /// `BlackHoleCluster` in pilot/pkg/networking/util/util.go.
    pub blackhole_cluster: &'static str,
    /// The inbound passthrough cluster: `InboundPassthroughCluster` in
    /// pilot/pkg/networking/util/util.go; before Istio 1.9 one per family with the suffixes
    /// below (`InboundPassthroughClusterIpv4` in the same file at tag 1.8.0).
    pub inbound_passthrough_cluster: &'static str,
    pub inbound_passthrough_cluster_v4: &'static str,
    pub inbound_passthrough_cluster_v6: &'static str,
    /// The virtual host of the outbound route configurations that sends unknown hosts to the
    /// passthrough cluster. `Passthrough = "allow_any"` in pilot/pkg/networking/util/util.go.
    pub allow_any_virtual_host: &'static str,
    /// The virtual host and route that block unknown hosts (`REGISTRY_ONLY`).
    /// `BlackHole = "block_all"` in pilot/pkg/networking/util/util.go.
    pub block_all_virtual_host: &'static str,
}

/// What an Istio-made cluster is for, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterRole {
    /// To the original destination (outbound).
    Passthrough,
    /// Nowhere: Envoy closes the connection or answers 502.
    Blackhole,
    /// To the app, from the inbound passthrough address.
    InboundPassthrough,
}

impl Default for Conventions {
    fn default() -> Self {
        Conventions::ISTIO
    }
}

impl Conventions {
    /// Istio's values.
    pub const ISTIO: Conventions = Conventions {
        proxy_uid: 1337,
        proxy_gid: 1337,
        app_uid: 1000,
        app_gid: 1000,
        outbound_capture_port: 15001,
        inbound_capture_port: 15006,
        hbone_port: 15008,
        dns_proxy_port: 15053,
        stats_port: 15090,
        agent_status_port: 15020,
        health_port: 15021,
        inbound_passthrough_v4: Ipv4Addr::new(127, 0, 0, 6),
        inbound_passthrough_v6: Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 6),
        tproxy_table: 133,
        tproxy_mark: 0x539,
        original_src_mark: 0x539,
        passthrough_cluster: "PassthroughCluster",
        blackhole_cluster: "BlackHoleCluster",
        inbound_passthrough_cluster: "InboundPassthroughCluster",
        inbound_passthrough_cluster_v4: "InboundPassthroughClusterIpv4",
        inbound_passthrough_cluster_v6: "InboundPassthroughClusterIpv6",
        allow_any_virtual_host: "allow_any",
        block_all_virtual_host: "block_all",
    };

    /// The ports Istio's rules redirect to (outbound and inbound capture, DNS proxy): a
    /// connection to one of them on `lo` is the redirected leg of another connection.
    pub const fn redirect_ports(&self) -> [u16; 3] {
        [self.outbound_capture_port, self.inbound_capture_port, self.dns_proxy_port]
    }

    /// The inbound passthrough source address of `v6`'s family.
    pub fn inbound_passthrough(&self, v6: bool) -> IpAddr {
        if v6 {
            IpAddr::V6(self.inbound_passthrough_v6)
        } else {
            IpAddr::V4(self.inbound_passthrough_v4)
        }
    }

    /// Whether `addr` is an inbound passthrough source address (only Envoy binds it).
    pub fn is_inbound_passthrough_source(&self, addr: IpAddr) -> bool {
        addr == IpAddr::V4(self.inbound_passthrough_v4) || addr == IpAddr::V6(self.inbound_passthrough_v6)
    }

    /// Whether a process with `uid` is the proxy (Envoy or pilot-agent).
    pub fn is_proxy_uid(&self, uid: u32) -> bool {
        uid == self.proxy_uid
    }

    /// The role of a cluster Istio makes, by name; `None` for the clusters of services.
    pub fn cluster_role(&self, name: &str) -> Option<ClusterRole> {
        if name == self.passthrough_cluster {
            Some(ClusterRole::Passthrough)
        } else if name == self.blackhole_cluster {
            Some(ClusterRole::Blackhole)
        } else if name == self.inbound_passthrough_cluster
            || name == self.inbound_passthrough_cluster_v4
            || name == self.inbound_passthrough_cluster_v6
        {
            Some(ClusterRole::InboundPassthrough)
        } else {
            None
        }
    }

    pub fn is_passthrough_cluster(&self, name: &str) -> bool {
        self.cluster_role(name) == Some(ClusterRole::Passthrough)
    }

    pub fn is_blackhole_cluster(&self, name: &str) -> bool {
        self.cluster_role(name) == Some(ClusterRole::Blackhole)
    }

    pub fn is_inbound_passthrough_cluster(&self, name: &str) -> bool {
        self.cluster_role(name) == Some(ClusterRole::InboundPassthrough)
    }

    pub fn is_allow_any_virtual_host(&self, name: &str) -> bool {
        name == self.allow_any_virtual_host
    }
}

/// [`Conventions::is_passthrough_cluster`] with Istio's names.
pub fn is_passthrough_cluster(name: &str) -> bool {
    Conventions::ISTIO.is_passthrough_cluster(name)
}

/// [`Conventions::is_blackhole_cluster`] with Istio's names.
pub fn is_blackhole_cluster(name: &str) -> bool {
    Conventions::ISTIO.is_blackhole_cluster(name)
}

/// [`Conventions::is_inbound_passthrough_cluster`] with Istio's names.
pub fn is_inbound_passthrough_cluster(name: &str) -> bool {
    Conventions::ISTIO.is_inbound_passthrough_cluster(name)
}

/// [`Conventions::cluster_role`] with Istio's names.
pub fn cluster_role(name: &str) -> Option<ClusterRole> {
    Conventions::ISTIO.cluster_role(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values as Istio's sources write them (see each field's comment).
    #[test]
    fn defaults_are_istios() {
        let c = Conventions::default();
        assert_eq!((c.proxy_uid, c.proxy_gid), (1337, 1337));
        assert_eq!(c.redirect_ports(), [15001, 15006, 15053]);
        assert_eq!(
            (c.hbone_port, c.stats_port, c.agent_status_port, c.health_port),
            (15008, 15090, 15020, 15021)
        );
        assert_eq!(c.inbound_passthrough(false).to_string(), "127.0.0.6");
        assert_eq!(c.inbound_passthrough(true).to_string(), "::6");
        assert_eq!((c.tproxy_table, c.tproxy_mark, c.original_src_mark), (133, 1337, 1337));
    }

    #[test]
    fn cluster_roles_by_name() {
        assert!(is_passthrough_cluster("PassthroughCluster"));
        assert!(is_blackhole_cluster("BlackHoleCluster"));
        for n in
            ["InboundPassthroughCluster", "InboundPassthroughClusterIpv4", "InboundPassthroughClusterIpv6"]
        {
            assert!(is_inbound_passthrough_cluster(n), "{n}");
        }
        assert_eq!(cluster_role("outbound|9080||reviews.default.svc.cluster.local"), None);
        assert!(Conventions::ISTIO.is_allow_any_virtual_host("allow_any"));
    }

    #[test]
    fn an_overridden_proxy_uid_is_the_proxy() {
        let c = Conventions { proxy_uid: 1234, ..Conventions::ISTIO };
        assert!(c.is_proxy_uid(1234) && !c.is_proxy_uid(1337));
        assert!(c.is_inbound_passthrough_source("127.0.0.6".parse().unwrap()));
    }
}
