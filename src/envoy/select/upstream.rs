//! From a cluster name to the endpoint and source address of the upstream connection
//! (Envoy: source/common/upstream/upstream_impl.cc).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use super::super::model::{
    Cluster, DiscoveryType, EndpointAddress, EnvoyConfig, HealthStatus, LoadAssignment,
};
use super::transport::{self, TransportPick};

/// Caller-provided DNS answers for STRICT_DNS / LOGICAL_DNS hosts (lower-case names).
pub type NameTable = BTreeMap<String, Vec<IpAddr>>;

/// What the request/connection contributes to ORIGINAL_DST host selection.
#[derive(Debug, Clone, Default)]
pub struct UpstreamContext<'r> {
    /// The downstream local address, if `original_dst` restored it.
    pub restored_destination: Option<SocketAddr>,
    /// Request headers (lower-case names), for `use_http_header`.
    pub headers: &'r [(String, String)],
}

/// The upstream chosen for one cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Upstream {
    /// A host was chosen.
    Endpoint {
        address: EndpointAddress,
        #[serde(skip_serializing_if = "Option::is_none")]
        source_address: Option<IpAddr>,
        /// How the host was chosen (e.g. "restored destination", "EDS priority 0").
        via: String,
        /// Healthy hosts Envoy balances over in that priority (the first is reported); written
        /// as `ip:port` strings in JSON.
        #[serde(serialize_with = "as_strings")]
        candidates: Vec<EndpointAddress>,
        /// The transport socket of each candidate, in the same order.
        #[serde(skip)]
        transports: Vec<TransportPick>,
    },
    /// Cluster unknown: NC.
    ClusterNotFound,
    /// No healthy host: UH.
    NoHealthyHost { reason: String },
    /// A DNS name the caller's table does not resolve.
    Unresolved { host: String },
    /// An EDS cluster whose endpoints are not in the dump (taken without `?include_eds`).
    EndpointsUnknown { service_name: String },
    /// A cluster type meshpath does not model.
    Unsupported { reason: String },
}

impl Upstream {
    /// Envoy's response flag when no host is available.
    pub fn flag(&self) -> Option<&'static str> {
        match self {
            Upstream::ClusterNotFound => Some("NC"),
            Upstream::NoHealthyHost { .. } => Some("UH"),
            _ => None,
        }
    }
}

const DEFAULT_ORIGINAL_DST_HEADER: &str = "x-envoy-original-dst-host";

pub fn choose(cfg: &EnvoyConfig, cluster_name: &str, ctx: &UpstreamContext<'_>, dns: &NameTable) -> Upstream {
    let Some(cluster) = cfg.cluster(cluster_name) else {
        if !cfg.has_clusters() {
            return Upstream::Unsupported {
                reason: format!("cluster {cluster_name:?} is not in the dump (it has no clusters section)"),
            };
        }
        return Upstream::ClusterNotFound;
    };
    let bind = |dst: IpAddr| cluster.upstream_bind.as_ref().and_then(|b| b.for_destination(dst));
    match &cluster.discovery {
        DiscoveryType::OriginalDst => original_dst(cluster, ctx, bind),
        DiscoveryType::Eds => {
            let service = cluster.eds_service_name.clone().unwrap_or_else(|| cluster.name.clone());
            match cfg.eds_assignment(&service).or(cluster.load_assignment.as_ref()) {
                Some(a) => from_assignment(cluster, a, "EDS", dns, false, bind),
                // With `?include_eds` every assignment is in the dump: none means no hosts.
                None if cfg.has_endpoints() => {
                    Upstream::NoHealthyHost { reason: format!("EDS has no endpoints for {service}") }
                }
                None => Upstream::EndpointsUnknown { service_name: service },
            }
        }
        DiscoveryType::Static => match &cluster.load_assignment {
            Some(a) => from_assignment(cluster, a, "STATIC", dns, false, bind),
            None => Upstream::NoHealthyHost { reason: "STATIC cluster without endpoints".into() },
        },
        DiscoveryType::StrictDns | DiscoveryType::LogicalDns => match &cluster.load_assignment {
            Some(a) => from_assignment(cluster, a, cluster.discovery.label(), dns, true, bind),
            None => Upstream::NoHealthyHost { reason: "DNS cluster without hosts".into() },
        },
        DiscoveryType::Custom(t) => Upstream::Unsupported { reason: format!("cluster type {t}") },
    }
}

fn original_dst(
    cluster: &Cluster,
    ctx: &UpstreamContext<'_>,
    bind: impl Fn(IpAddr) -> Option<IpAddr>,
) -> Upstream {
    let od = &cluster.original_dst;
    let mut chosen: Option<(SocketAddr, String)> = None;
    if od.use_http_header {
        let header =
            od.http_header_name.as_deref().unwrap_or(DEFAULT_ORIGINAL_DST_HEADER).to_ascii_lowercase();
        if let Some((_, v)) = ctx.headers.iter().find(|(k, _)| *k == header) {
            // Must be `IP:port`; an invalid value is ignored (stat original_dst_host_invalid).
            if let Ok(sa) = v.trim().parse::<SocketAddr>() {
                chosen = Some((sa, format!("header {header}")));
            }
        }
    }
    if chosen.is_none() {
        if let Some(d) = ctx.restored_destination {
            chosen = Some((d, "restored destination".into()));
        }
    }
    let Some((mut addr, mut via)) = chosen else {
        return Upstream::NoHealthyHost {
            reason: "ORIGINAL_DST without a restored destination or header".into(),
        };
    };
    if let Some(p) = od.upstream_port_override {
        addr.set_port(p);
        via.push_str(&format!(", port overridden to {p}"));
    }
    Upstream::Endpoint {
        address: EndpointAddress::Ip { ip: addr.ip(), port: addr.port() },
        source_address: bind(addr.ip()),
        via,
        candidates: vec![EndpointAddress::Ip { ip: addr.ip(), port: addr.port() }],
        // A host ORIGINAL_DST makes has no metadata.
        transports: vec![transport::resolve(&cluster.upstream_transport, &Vec::new(), &Vec::new())],
    }
}

/// Lowest priority with a healthy host; the first healthy host of it is reported.
fn from_assignment(
    cluster: &Cluster,
    a: &LoadAssignment,
    kind: &str,
    dns: &NameTable,
    resolve: bool,
    bind: impl Fn(IpAddr) -> Option<IpAddr>,
) -> Upstream {
    let mut priorities: Vec<u32> = a.localities.iter().map(|l| l.priority).collect();
    priorities.sort_unstable();
    priorities.dedup();
    let mut unresolved: Option<String> = None;
    for p in priorities {
        let mut hosts: Vec<(EndpointAddress, HealthStatus)> = Vec::new();
        let mut sockets: Vec<TransportPick> = Vec::new();
        for l in a.localities.iter().filter(|l| l.priority == p) {
            for e in &l.endpoints {
                let socket = transport::resolve(
                    &cluster.upstream_transport,
                    &e.socket_match_labels,
                    &l.socket_match_labels,
                );
                let before = hosts.len();
                match &e.address {
                    EndpointAddress::Dns { host, port } if resolve => {
                        match dns.get(&host.to_ascii_lowercase()) {
                            Some(ips) if !ips.is_empty() => {
                                // STRICT_DNS: every address is a host; LOGICAL_DNS: the first.
                                let take = if kind == "LOGICAL_DNS" { 1 } else { ips.len() };
                                for ip in ips.iter().take(take) {
                                    hosts.push((EndpointAddress::Ip { ip: *ip, port: *port }, e.health));
                                }
                            }
                            _ => {
                                unresolved.get_or_insert_with(|| host.clone());
                            }
                        }
                    }
                    other => hosts.push((other.clone(), e.health)),
                }
                sockets.extend(std::iter::repeat_n(socket, hosts.len() - before));
            }
        }
        let healthy: Vec<&EndpointAddress> =
            hosts.iter().filter(|(_, h)| h.is_healthy()).map(|(a, _)| a).collect();
        let transports: Vec<TransportPick> =
            hosts.iter().zip(sockets).filter(|((_, h), _)| h.is_healthy()).map(|(_, s)| s).collect();
        if let Some(first) = healthy.first() {
            let source_address = match first {
                EndpointAddress::Ip { ip, .. } => bind(*ip),
                _ => None,
            };
            return Upstream::Endpoint {
                address: (*first).clone(),
                source_address,
                via: format!("{kind} priority {p}"),
                candidates: healthy.iter().map(|a| (*a).clone()).collect(),
                transports,
            };
        }
    }
    if let Some(host) = unresolved {
        return Upstream::Unresolved { host };
    }
    Upstream::NoHealthyHost {
        reason: if a.endpoint_count() == 0 {
            format!("{kind} cluster has no endpoints")
        } else {
            "no healthy endpoint".into()
        },
    }
}

/// Endpoint addresses as their `ip:port` (or name) strings.
fn as_strings<S: serde::Serializer>(v: &[EndpointAddress], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|a| a.to_string()))
}
