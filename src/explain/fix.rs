//! Fixes a user can apply: the Istio setting (or the app's) a user would change, the change it
//! makes to the evidence (rules or Envoy objects edited the way istio-iptables or Istio's xDS
//! generation would), and the walk re-simulated on the changed evidence. A fix whose walk
//! fails, or ends as before, is not offered. Data only: `crate::render::explain_fix` words it.

use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use super::counterfactual::{add_subset, app_rebinds, missing_cluster};
use crate::engine::{self, Ending, Mesh, MeshTrace, Path, Start};
use crate::envoy::model::{EndpointAddress, EnvoyConfig, FilterChainMatch, Listener, ListenerAddress};
use crate::envoy::route::Action;

/// One fix and what happens with it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fix {
    /// What the user changes.
    pub setting: Setting,
    /// What that change does to the evidence, as Istio (or the kernel) would apply it.
    pub edits: Vec<Edit>,
    /// `Ending::kind()` of each re-simulated path.
    pub kinds: Vec<&'static str>,
    /// The walk re-simulated on the changed evidence.
    #[serde(skip)]
    pub outcome: MeshTrace,
}

/// The setting a user changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "setting", rename_all = "snake_case")]
pub enum Setting {
    /// The app listens on the wildcard address instead of one address (the app's own setting).
    AppListenAddress { pod: String, process: String, from: SocketAddr, to: SocketAddr },
    /// `DestinationRule.subsets`: a subset `name` of `host` selecting `label=value`.
    DestinationRuleSubset { host: String, subset: String, label: String, value: String },
    /// `ServiceEntry.addresses` of the ServiceEntry of `host`.
    ServiceEntryAddress { host: String, port: u16, address: IpAddr },
    /// One ServiceEntry host per address: `new_host` with `addresses: [address]`, taken out of
    /// `host` (a name of the user's choice; this one is a placeholder).
    ServiceEntryHostPerAddress { host: String, new_host: String, port: u16, address: IpAddr },
    /// `VirtualService.hosts` of `virtual_service`: `to` instead of `from`.
    VirtualServiceHosts { virtual_service: String, from: String, to: String },
    /// Istio 1.10 or later on `pod`: inbound clusters connect from the inbound passthrough
    /// source (127.0.0.6) and istio-iptables exempts it on `lo` (scenarios/3).
    InboundPassthroughSource { pod: String, source: IpAddr },
    /// A pod annotation of Istio's sidecar injector that istio-iptables reads: `annotation`
    /// with `port` or `range` added to (or taken out of) its list.
    PodAnnotation { pod: String, annotation: Annotation, change: ListChange },
    /// The app's container runs as another user (`securityContext.runAsUser`, and
    /// `runAsGroup` when the group is the proxy's too): the rules exempt the proxy's identity.
    AppIdentity { pod: String, uid: (u32, u32), gid: (u32, u32) },
    /// The Service port `port` of `host` declares its protocol (`appProtocol`, or the port
    /// name's prefix), so Istio does not sniff it.
    ServicePortProtocol { host: String, port: u16, app_protocol: String },
    /// The rule that dropped the packet, not written (line `line` of `file`, `rule` its text).
    WithoutRule { pod: String, file: String, line: u32, rule: String },
}

/// A `traffic.sidecar.istio.io/...` annotation (istio-iptables' flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Annotation {
    #[serde(rename = "traffic.sidecar.istio.io/excludeOutboundPorts")]
    ExcludeOutboundPorts,
    #[serde(rename = "traffic.sidecar.istio.io/excludeInboundPorts")]
    ExcludeInboundPorts,
    #[serde(rename = "traffic.sidecar.istio.io/includeInboundPorts")]
    IncludeInboundPorts,
    #[serde(rename = "traffic.sidecar.istio.io/includeOutboundIPRanges")]
    IncludeOutboundIpRanges,
}

/// An item added to or removed from an annotation's comma-separated list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", content = "item", rename_all = "snake_case")]
pub enum ListChange {
    Add(String),
    Remove(String),
}

/// A change to the evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "edit", rename_all = "snake_case")]
pub enum Edit {
    /// A listening socket of the pod moves to another address.
    SocketRebound { pod: String, from: SocketAddr, to: SocketAddr },
    /// Envoy gets cluster `cluster`, built from `from`, with these endpoints.
    ClusterAdded { pod: String, cluster: String, from: String, endpoints: Vec<SocketAddr> },
    /// A filter chain moves from one listener to a new listener of its own.
    FilterChainMoved { pod: String, filter_chain: String, from_listener: String, to_listener: String },
    /// A new virtual host in a route configuration, routing to `cluster`.
    VirtualHostAdded {
        pod: String,
        route_config: String,
        virtual_host: String,
        domains: Vec<String>,
        cluster: String,
    },
    /// The routes of one virtual host replace those of another (and the first is gone).
    RoutesMoved { pod: String, route_config: String, from_virtual_host: String, to_virtual_host: String },
    /// A rule inserted before line `before` of the pod's rule file.
    RuleInserted { pod: String, file: String, before: u32, rule: String },
    /// Envoy's cluster connects from `source` (`upstream_bind_config`).
    ClusterBound { pod: String, cluster: String, source: IpAddr },
    /// Line `line` of the pod's rule file removed (`rule` its text).
    RuleRemoved { pod: String, file: String, line: u32, rule: String },
    /// The connection is made by a process of this uid and gid.
    SenderIdentity { pod: String, uid: u32, gid: u32 },
    /// A listener with one chain, a tcp_proxy to `cluster`, and no listener filters.
    ListenerTcpOnly { pod: String, listener: String, cluster: String },
}

/// A changed snapshot (and start) to re-simulate.
pub(super) struct Candidate {
    pub(super) setting: Setting,
    pub(super) edits: Vec<Edit>,
    pub(super) mesh: Mesh,
    pub(super) start: Option<Start>,
    /// What makes the re-simulated walk a fix.
    pub(super) goal: Goal,
}

/// What a candidate must change to be offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Goal {
    /// The walk ends differently.
    OtherEnding,
    /// The walk ends the same way, through more Envoy hops on every path (a sidecar that was
    /// skipped is passed).
    MoreEnvoyHops,
}

/// Every fix that applies to `t` and changes how it ends.
pub(super) fn all(mesh: &Mesh, start: &Start, t: &MeshTrace) -> Vec<Fix> {
    let mut out: Vec<Fix> = Vec::new();
    // Settings already re-simulated: many paths propose the same one. A path's candidates are
    // made and re-simulated before the next path's, so few changed snapshots exist at once,
    // and at most MAX_FIX_SIMULATIONS walks are re-run.
    let mut tried: Vec<Setting> = Vec::new();
    for (i, p) in t.paths.iter().enumerate() {
        let mut candidates = Vec::new();
        app_listen_address(mesh, p, &mut candidates);
        destination_rule_subset(mesh, start, p, &mut candidates);
        service_entry_address(mesh, start, p, &mut candidates);
        service_entry_host_per_address(mesh, p, &mut candidates);
        virtual_service_hosts(mesh, p, &mut candidates);
        inbound_passthrough_source(mesh, p, &mut candidates);
        super::fix_rules::candidates(mesh, start, p, &mut candidates);
        super::fix_protocol::service_port_protocol(mesh, p, &mut candidates);
        if i + 1 == t.paths.len() {
            super::fix_rules::app_identity(mesh, start, t, &mut candidates);
        }
        for c in candidates {
            if tried.contains(&c.setting) || tried.len() >= MAX_FIX_SIMULATIONS {
                continue;
            }
            tried.push(c.setting.clone());
            out.extend(resimulated(start, t, c));
        }
    }
    out
}

/// The most changed walks re-run for one report's fixes.
const MAX_FIX_SIMULATIONS: usize = 16;

/// The candidate's walk, when it makes the candidate a fix.
fn resimulated(start: &Start, t: &MeshTrace, c: Candidate) -> Option<Fix> {
    let outcome = engine::trace(&c.mesh, c.start.as_ref().unwrap_or(start)).ok()?;
    let offered = match c.goal {
        Goal::OtherEnding => !same_endings(t, &outcome),
        Goal::MoreEnvoyHops => {
            same_endings(t, &outcome)
                && t.paths.iter().zip(&outcome.paths).all(|(a, b)| b.envoy.len() > a.envoy.len())
        }
    };
    if !offered {
        return None;
    }
    let kinds = outcome.paths.iter().map(|p| p.ending.kind()).collect();
    Some(Fix { setting: c.setting, edits: c.edits, kinds, outcome })
}

fn same_endings(a: &MeshTrace, b: &MeshTrace) -> bool {
    a.paths.len() == b.paths.len()
        && a.paths.iter().zip(&b.paths).all(|(x, y)| x.ending == y.ending && x.weight == y.weight)
}

/// Refused (or Envoy's upstream refused: 503 UF) while the app listens on that port on one
/// address only: the app bound to the wildcard address (scenarios/3's fix before Istio 1.10).
fn app_listen_address(mesh: &Mesh, p: &Path, out: &mut Vec<Candidate>) {
    for r in app_rebinds(mesh, p) {
        let (from, to) = (r.from, r.to);
        out.push(Candidate {
            setting: Setting::AppListenAddress { pod: r.pod.clone(), process: r.process, from, to },
            edits: vec![Edit::SocketRebound { pod: r.pod, from, to }],
            mesh: r.mesh,
            start: None,
            goal: Goal::OtherEnding,
        });
    }
}

/// 503 NC for `outbound|P|SUBSET|HOST` while `outbound|P||HOST` exists: the DestinationRule
/// subset, which makes Istio build the subset's cluster (the service's cluster with the
/// endpoints whose `version` label is the subset's name).
fn destination_rule_subset(mesh: &Mesh, start: &Start, p: &Path, out: &mut Vec<Candidate>) {
    let Ending::EnvoyResponse { flag: Some(f), pod, .. } = &p.ending else { return };
    if f != "NC" {
        return;
    }
    let Some(name) = missing_cluster(mesh, start, p) else { return };
    let [dir, port, subset, host] = name.split('|').collect::<Vec<_>>()[..] else { return };
    if subset.is_empty() || dir != "outbound" {
        return;
    }
    let base = format!("{dir}|{port}||{host}");
    let Some(pi) = mesh.pod_index(pod) else { return };
    let mut m = mesh.clone();
    let Some(cfg) = m.pods.get_mut(pi).and_then(|p| p.envoy.as_mut()) else { return };
    if add_subset(cfg, &base, &name, subset).is_none() {
        return;
    }
    let endpoints = endpoints_of(cfg, &name);
    out.push(Candidate {
        setting: Setting::DestinationRuleSubset {
            host: host.to_string(),
            subset: subset.to_string(),
            label: "version".to_string(),
            value: subset.to_string(),
        },
        edits: vec![Edit::ClusterAdded { pod: pod.clone(), cluster: name.clone(), from: base, endpoints }],
        mesh: m,
        start: None,
        goal: Goal::OtherEnding,
    });
}

fn endpoints_of(cfg: &EnvoyConfig, cluster: &str) -> Vec<SocketAddr> {
    let Some(c) = cfg.cluster(cluster) else { return Vec::new() };
    let la = c
        .load_assignment
        .as_ref()
        .or_else(|| cfg.eds_assignment(c.eds_service_name.as_deref().unwrap_or(cluster)));
    la.iter()
        .flat_map(|la| &la.localities)
        .flat_map(|l| &l.endpoints)
        .filter_map(|e| match e.address {
            EndpointAddress::Ip { ip, port } => Some(SocketAddr::new(ip, port)),
            _ => None,
        })
        .collect()
}

/// A connection caught by a filter chain without match criteria of a wildcard listener, to a
/// ServiceEntry's `outbound|P||HOST` whose host the name table resolves: the ServiceEntry's
/// address, which makes Istio move that chain to a listener `ADDR_P` of its own
/// (`buildSidecarOutboundTCPFilterChainOpts` matches the service's CIDR once it has one;
/// scenarios/2 `sleep.fixed.config_dump.json`).
fn service_entry_address(mesh: &Mesh, _start: &Start, p: &Path, out: &mut Vec<Candidate>) {
    for h in &p.envoy {
        let (Some(ln), Some(fc), Some(cluster)) = (&h.listener, &h.filter_chain, &h.cluster) else {
            continue;
        };
        let [dir, port, "", host] = cluster.split('|').collect::<Vec<_>>()[..] else { continue };
        let Ok(port) = port.parse::<u16>() else { continue };
        if dir != "outbound" {
            continue;
        }
        let Some(&address) = mesh.names.get(&host.to_ascii_lowercase()).and_then(|a| a.first()) else {
            continue;
        };
        let Some(pi) = mesh.pod_index(&h.pod) else { continue };
        let Some(cfg) = mesh.pods.get(pi).and_then(|p| p.envoy.as_ref()) else { continue };
        let Some(l) = cfg.listener(ln) else { continue };
        if !l.address.socket().is_some_and(|s| s.ip().is_unspecified()) {
            continue;
        }
        let idx = l.filter_chains.iter().enumerate().position(|(i, c)| {
            c.name.clone().unwrap_or_else(|| format!("#{i}")) == *fc && c.filter_chain_match.is_empty()
        });
        let Some(idx) = idx else { continue };
        let to_listener = format!("{address}_{port}");
        if cfg.listener(&to_listener).is_some() {
            continue;
        }
        let mut m = mesh.clone();
        let Some(cfg) = m.pods.get_mut(pi).and_then(|p| p.envoy.as_mut()) else { continue };
        let Some(l) = cfg.listeners.iter_mut().find(|l| &l.name == ln) else { continue };
        let mut chain = l.filter_chains.remove(idx);
        chain.filter_chain_match = FilterChainMatch::default();
        let new = Listener {
            name: to_listener.clone(),
            address: ListenerAddress::Socket(SocketAddr::new(address, port)),
            additional_addresses: Vec::new(),
            bind_to_port: false,
            use_original_dst: false,
            listener_filters: Vec::new(),
            filter_chains: vec![chain],
            default_filter_chain: None,
            filter_chain_matcher: None,
            traffic_direction: Some("OUTBOUND".to_string()),
            ..l.clone()
        };
        cfg.listeners.push(new);
        cfg.build_lookup();
        out.push(Candidate {
            setting: Setting::ServiceEntryAddress { host: host.to_string(), port, address },
            edits: vec![Edit::FilterChainMoved {
                pod: h.pod.clone(),
                filter_chain: fc.clone(),
                from_listener: ln.clone(),
                to_listener,
            }],
            mesh: m,
            start: None,
            goal: Goal::OtherEnding,
        });
    }
}

/// Left through PassthroughCluster from the `allow_any` virtual host while a virtual host of
/// the same route configuration, for a ServiceEntry host `H` (cluster `outbound|P||H`), names
/// other addresses: Istio keeps one address per host name in a virtual host
/// (`buildSidecarOutboundVirtualHosts`, scenarios/1), so the fix is a host of its own for the
/// destination address, which gets its own virtual host and cluster.
fn service_entry_host_per_address(mesh: &Mesh, p: &Path, out: &mut Vec<Candidate>) {
    let Ending::Left { pod, dst, cluster: Some(cluster) } = &p.ending else { return };
    let Some(pi) = mesh.pod_index(pod) else { return };
    let Some(istio) = mesh.pods.get(pi).map(|p| &p.istio) else { return };
    if !istio.is_passthrough_cluster(cluster) {
        return;
    }
    let allow_any = |vh: &str| istio.is_allow_any_virtual_host(vh);
    let Some(hop) = p.envoy.iter().rev().find(|h| h.virtual_host.as_deref().is_some_and(allow_any)) else {
        return;
    };
    let Some(rc_name) = &hop.route_config else { return };
    let Some(cfg) = mesh.pods.get(pi).and_then(|p| p.envoy.as_ref()) else { return };
    let Some(rc) = cfg.route_configs.iter().find(|r| &r.name == rc_name) else { return };
    let ip_domain = |d: &String| {
        let bare = d
            .rsplit_once(':')
            .filter(|(h, _)| !h.is_empty() && !h.contains(':'))
            .map_or(d.as_str(), |(h, _)| h);
        bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_ipv6() == dst.is_ipv6())
    };
    for (vi, vh) in rc.config.virtual_hosts.iter().enumerate() {
        if allow_any(&vh.name) || !vh.domains.iter().any(ip_domain) {
            continue;
        }
        let Some(route_cluster) = vh.routes.iter().find_map(|r| match &r.action {
            Action::Route(a) => a.cluster.clone(),
            _ => None,
        }) else {
            continue;
        };
        let [dir, port, "", host] = route_cluster.split('|').collect::<Vec<_>>()[..] else { continue };
        let Ok(port) = port.parse::<u16>() else { continue };
        if dir != "outbound" || port != dst.port() || cfg.cluster(&route_cluster).is_none() {
            continue;
        }
        let address = dst.ip();
        let new_host = match host.split_once('.') {
            Some((first, rest)) => format!("{first}-{}.{rest}", address.to_string().replace(['.', ':'], "-")),
            None => format!("{host}-{}", address.to_string().replace(['.', ':'], "-")),
        };
        let new_cluster = format!("outbound|{port}||{new_host}");
        let with_port = vh.domains.iter().any(|d| d.ends_with(&format!(":{port}")));
        let mut domains = vec![new_host.clone()];
        if with_port {
            domains.push(format!("{new_host}:{port}"));
        }
        domains.push(address.to_string());
        if with_port {
            domains.push(format!("{address}:{port}"));
        }
        let mut new_vh = vh.clone();
        new_vh.name = format!("{new_host}:{port}");
        new_vh.domains = domains.clone();
        for r in &mut new_vh.routes {
            if let Action::Route(a) = &mut r.action {
                a.cluster = Some(new_cluster.clone());
            }
        }
        let mut m = mesh.clone();
        let Some(cfg) = m.pods.get_mut(pi).and_then(|p| p.envoy.as_mut()) else { return };
        let Some(mut c) = cfg.cluster(&route_cluster).cloned() else { continue };
        c.name = new_cluster.clone();
        cfg.clusters.push(c);
        let Some(rc) = cfg.route_configs.iter_mut().find(|r| &r.name == rc_name) else { return };
        rc.config.virtual_hosts.insert(vi + 1, new_vh.clone());
        cfg.build_lookup();
        out.push(Candidate {
            setting: Setting::ServiceEntryHostPerAddress { host: host.to_string(), new_host, port, address },
            edits: vec![Edit::VirtualHostAdded {
                pod: pod.clone(),
                route_config: rc_name.clone(),
                virtual_host: new_vh.name.clone(),
                domains,
                cluster: new_cluster,
            }],
            mesh: m,
            start: None,
            goal: Goal::OtherEnding,
        });
    }
}

/// A request routed by a virtual host's own default route while, in the same route
/// configuration, a VirtualService's routes (Istio's `istio.config` route metadata) send host
/// `H`'s traffic to H's subsets from a virtual host of another name: the VirtualService names
/// the wrong host (scenarios/5: a short name read in the VirtualService's namespace). The fix
/// names `H` in `VirtualService.hosts`; Istio then puts its routes on H's virtual host.
fn virtual_service_hosts(mesh: &Mesh, p: &Path, out: &mut Vec<Candidate>) {
    for h in &p.envoy {
        let (Some(rc_name), Some(vh_name)) = (&h.route_config, &h.virtual_host) else { continue };
        let Some(pi) = mesh.pod_index(&h.pod) else { continue };
        let Some(cfg) = mesh.pods.get(pi).and_then(|p| p.envoy.as_ref()) else { continue };
        let Some(rc) = cfg.route_configs.iter().find(|r| &r.name == rc_name) else { continue };
        let Some(to) = rc.config.virtual_hosts.iter().position(|v| &v.name == vh_name) else { continue };
        let taken = &rc.config.virtual_hosts[to];
        if taken.routes.iter().any(|r| r.istio_config().is_some()) {
            continue;
        }
        let host = vh_name.rsplit_once(':').map_or(vh_name.as_str(), |(h, _)| h);
        let names_host = |c: &str| c.starts_with("outbound|") && c.rsplit('|').next() == Some(host);
        for (from, vh) in rc.config.virtual_hosts.iter().enumerate() {
            if from == to {
                continue;
            }
            let Some(vs) = vh.routes.iter().find_map(|r| r.istio_config()) else { continue };
            if !vs.contains("/virtual-service/") {
                continue;
            }
            let clusters: Vec<String> = vh.routes.iter().flat_map(|r| route_clusters(&r.action)).collect();
            if clusters.is_empty() || !clusters.iter().all(|c| names_host(c)) {
                continue;
            }
            let mut m = mesh.clone();
            let Some(cfg) = m.pods.get_mut(pi).and_then(|p| p.envoy.as_mut()) else { continue };
            let Some(rc) = cfg.route_configs.iter_mut().find(|r| &r.name == rc_name) else { continue };
            let routes = rc.config.virtual_hosts[from].routes.clone();
            rc.config.virtual_hosts[to].routes = routes;
            rc.config.virtual_hosts.remove(from);
            let from_host = vh.name.rsplit_once(':').map_or(vh.name.as_str(), |(h, _)| h);
            out.push(Candidate {
                setting: Setting::VirtualServiceHosts {
                    virtual_service: virtual_service_name(vs),
                    from: from_host.to_string(),
                    to: host.to_string(),
                },
                edits: vec![Edit::RoutesMoved {
                    pod: h.pod.clone(),
                    route_config: rc_name.clone(),
                    from_virtual_host: vh.name.clone(),
                    to_virtual_host: vh_name.clone(),
                }],
                mesh: m,
                start: None,
                goal: Goal::OtherEnding,
            });
        }
    }
}

/// The clusters a route action names.
fn route_clusters(a: &Action) -> Vec<String> {
    let Action::Route(r) = a else { return Vec::new() };
    let mut out: Vec<String> = r.cluster.iter().cloned().collect();
    if let Some(w) = &r.weighted_clusters {
        out.extend(w.clusters.iter().map(|c| c.name.clone()));
    }
    out
}

/// `namespace/name` of Istio's `/apis/networking.istio.io/v1/namespaces/NS/virtual-service/NAME`.
fn virtual_service_name(config: &str) -> String {
    let parts: Vec<&str> = config.split('/').collect();
    match parts.iter().position(|p| *p == "namespaces") {
        Some(i) if parts.len() > i + 3 => format!("{}/{}", parts[i + 1], parts[i + 3]),
        _ => config.to_string(),
    }
}

/// A loop through an inbound cluster that connects to the pod's own address from no bound
/// source, in a pod whose rules do not exempt Istio's inbound passthrough source: Istio 1.10's
/// change (scenarios/3), re-simulated as Istio 1.10 applies it: istio-iptables writes
/// `-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN` as the first rule of ISTIO_OUTPUT, and
/// the inbound cluster gets `upstream_bind_config` 127.0.0.6.
fn inbound_passthrough_source(mesh: &Mesh, p: &Path, out: &mut Vec<Candidate>) {
    if !matches!(p.ending, Ending::Loop { .. }) {
        return;
    }
    for h in &p.envoy {
        let Some(cluster) = h.cluster.as_deref().filter(|c| c.starts_with("inbound|")) else { continue };
        let Some(pi) = mesh.pod_index(&h.pod) else { continue };
        let Some(pod) = mesh.pods.get(pi) else { continue };
        let Some(c) = pod.envoy.as_ref().and_then(|cfg| cfg.cluster(cluster)) else { continue };
        if c.upstream_bind.is_some() {
            continue;
        }
        let v6 = endpoints_of(pod.envoy.as_ref().expect("has envoy"), cluster)
            .first()
            .is_some_and(|e| e.is_ipv6());
        let source: IpAddr = if v6 {
            pod.istio.inbound_passthrough_v6.into()
        } else {
            pod.istio.inbound_passthrough_v4.into()
        };
        let Some(text) = pod.rules_text(v6) else { continue };
        if text.contains(&format!("-s {source}/")) {
            continue;
        }
        let Some(idx) = text.split('\n').position(|l| l.starts_with("-A ISTIO_OUTPUT ")) else { continue };
        let prefix = if v6 { 128 } else { 32 };
        let rule = format!("-A ISTIO_OUTPUT -s {source}/{prefix} -o lo -j RETURN");
        let Some(edited) = super::rules::edited(pod, v6, |lines| lines.insert(idx, rule.clone())) else {
            continue;
        };
        let file = pod.program(v6).map(|p| p.ruleset.source.clone()).unwrap_or_default();
        let mut m = mesh.clone();
        let Some(pm) = m.pods.get_mut(pi) else { continue };
        super::rules::replace(pm, v6, edited);
        let Some(cfg) = pm.envoy.as_mut() else { continue };
        let Some(mc) = cfg.clusters.iter_mut().find(|mc| mc.name == cluster) else { continue };
        mc.upstream_bind =
            Some(crate::envoy::model::UpstreamBind { source_addresses: vec![source], freebind: false });
        cfg.build_lookup();
        out.push(Candidate {
            setting: Setting::InboundPassthroughSource { pod: h.pod.clone(), source },
            edits: vec![
                Edit::RuleInserted { pod: h.pod.clone(), file, before: idx as u32 + 1, rule },
                Edit::ClusterBound { pod: h.pod.clone(), cluster: cluster.to_string(), source },
            ],
            mesh: m,
            start: None,
            goal: Goal::OtherEnding,
        });
    }
}
