//! The words of `explain`'s fixes: the setting a user changes, what it does to the evidence,
//! and the re-simulated ending (docs/explain.md, "Fixes").

use serde::Serialize;

use crate::explain::{Annotation, Edit, Fix, ListChange, Setting};

/// The annotation's name, as the sidecar injector reads it.
pub fn annotation(a: Annotation) -> &'static str {
    match a {
        Annotation::ExcludeOutboundPorts => "traffic.sidecar.istio.io/excludeOutboundPorts",
        Annotation::ExcludeInboundPorts => "traffic.sidecar.istio.io/excludeInboundPorts",
        Annotation::IncludeInboundPorts => "traffic.sidecar.istio.io/includeInboundPorts",
        Annotation::IncludeOutboundIpRanges => "traffic.sidecar.istio.io/includeOutboundIPRanges",
    }
}

/// The setting in words, phrased as the Istio resource field (or the app's setting).
pub fn setting(s: &Setting) -> String {
    match s {
        Setting::AppListenAddress { pod, process, from, to } => {
            format!("bind the {process} in pod {pod} to {to} instead of {from}")
        }
        Setting::DestinationRuleSubset { host, subset, label, value } => format!(
            "DestinationRule for host {host}: `subsets: [{{name: {subset}, labels: {{{label}: {value}}}}}]`"
        ),
        Setting::ServiceEntryAddress { host, port, address } => {
            format!("ServiceEntry of host {host} (port {port}): `addresses: [{address}]`")
        }
        Setting::ServiceEntryHostPerAddress { host, new_host, port, address } => {
            let prefix = if address.is_ipv6() { 128 } else { 32 };
            format!(
                "ServiceEntry: {address} as a host of its own, `hosts: [{new_host}]` with \
                 `addresses: [{address}/{prefix}]` (port {port}; the host name is yours to choose), \
                 and {address} out of the `addresses` of {host}"
            )
        }
        Setting::VirtualServiceHosts { virtual_service, from, to } => {
            format!("VirtualService {virtual_service}: `hosts: [{to}]` (its host now reads as {from})")
        }
        Setting::InboundPassthroughSource { pod, source } => format!(
            "Istio 1.10 or later for pod {pod}: inbound clusters connect from {source}, which \
             istio-iptables exempts on lo"
        ),
        Setting::PodAnnotation { pod, annotation: a, change } => match change {
            ListChange::Add(item) => {
                format!("pod {pod}: annotation `{}` with {item} in its list", annotation(*a))
            }
            ListChange::Remove(item) => {
                format!("pod {pod}: annotation `{}` without {item} in its list", annotation(*a))
            }
        },
        Setting::AppIdentity { pod, uid: (uid_from, uid_to), gid: (gid_from, gid_to) } => {
            let mut s = format!(
                "pod {pod}: the app's container with `securityContext.runAsUser: {uid_to}` (not {uid_from}"
            );
            if gid_from != gid_to {
                s.push_str(&format!("), `runAsGroup: {gid_to}` (not {gid_from}"));
            }
            s.push_str("), an identity the capture rules do not exempt");
            s
        }
        Setting::ServicePortProtocol { host, port, app_protocol } => format!(
            "Service {host}, port {port}: `appProtocol: {app_protocol}` (or a port name `{app_protocol}-...`), \
             so Istio does not sniff the protocol"
        ),
        Setting::WithoutRule { pod, file, line, rule } => {
            format!("pod {pod}: without the rule `{rule}` ({file}:{line})")
        }
    }
}

/// What the setting does to the evidence, as Istio (or the app) applies it.
pub fn edit(e: &Edit) -> String {
    match e {
        Edit::SocketRebound { pod, from, to } => {
            format!("the app's socket in pod {pod} listens on {to} instead of {from}")
        }
        Edit::ClusterAdded { pod, cluster, from, endpoints } => {
            let eps: Vec<String> = endpoints.iter().map(ToString::to_string).collect();
            let eps = if eps.is_empty() { "none".to_string() } else { eps.join(", ") };
            format!(
                "Istio adds cluster {cluster} to the Envoy of pod {pod}, built from {from}; endpoints: {eps}"
            )
        }
        Edit::FilterChainMoved { pod, filter_chain, from_listener, to_listener } => format!(
            "Istio moves filter chain {filter_chain} of listener {from_listener} to a listener \
             {to_listener} of its own in the Envoy of pod {pod}"
        ),
        Edit::VirtualHostAdded { pod, route_config, virtual_host, domains, cluster } => format!(
            "Istio adds virtual host {virtual_host} (domains {}) to route config {route_config} in \
             the Envoy of pod {pod}, routing to cluster {cluster}",
            domains.join(", ")
        ),
        Edit::RoutesMoved { pod, route_config, from_virtual_host, to_virtual_host } => format!(
            "Istio puts the routes of virtual host {from_virtual_host} on virtual host \
             {to_virtual_host} of route config {route_config} in the Envoy of pod {pod}, and \
             builds no {from_virtual_host}"
        ),
        Edit::RuleInserted { pod, file, before, rule } => {
            format!("istio-iptables writes `{rule}` before {file}:{before} in pod {pod}")
        }
        Edit::ClusterBound { pod, cluster, source } => {
            format!("Istio binds cluster {cluster} to source {source} (`upstream_bind_config`) in pod {pod}")
        }
        Edit::RuleRemoved { pod, file, line, rule } => {
            format!("`{rule}` ({file}:{line}) is gone from the rules of pod {pod}")
        }
        Edit::SenderIdentity { pod, uid, gid } => {
            format!("the app's process in pod {pod} runs as uid {uid}, gid {gid}")
        }
        Edit::ListenerTcpOnly { pod, listener, cluster } => format!(
            "Istio builds listener {listener} in the Envoy of pod {pod} with one chain, tcp_proxy \
             to cluster {cluster}, and no listener filters"
        ),
    }
}

/// Each re-simulated path's ending in one line.
pub fn endings(f: &Fix) -> Vec<String> {
    super::explain::endings_of(&f.outcome)
}

/// One fix in one line: the setting and how the walk ends then.
pub fn line(f: &Fix) -> String {
    format!("{}: {}", setting(&f.setting), endings(f).join("; "))
}

#[derive(Serialize)]
pub struct JsonFix<'a> {
    setting: &'a Setting,
    change: String,
    edits: Vec<String>,
    /// The same changes as data (`Edit`, tagged by `edit`).
    evidence: &'a [Edit],
    kinds: &'a [&'static str],
    endings: Vec<String>,
}

pub fn json(f: &Fix) -> JsonFix<'_> {
    JsonFix {
        setting: &f.setting,
        change: setting(&f.setting),
        edits: f.edits.iter().map(edit).collect(),
        evidence: &f.edits,
        kinds: &f.kinds,
        endings: endings(f),
    }
}
