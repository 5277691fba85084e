//! Cluster and load assignment conversion.

use std::net::IpAddr;

use super::super::model::{
    Cluster, DiscoveryType, EndpointAddress, HealthStatus, LbEndpoint, LoadAssignment, LocalityEndpoints,
    OriginalDstConfig, ResourceState, UpstreamBind,
};
use super::super::raw::cluster as raw;
use super::super::raw::Address;
use super::{owned, Ctx};

pub fn cluster(c: &raw::Cluster<'_>, path: &str, state: ResourceState, ctx: &mut Ctx<'_>) -> Option<Cluster> {
    let origin = ctx.origin(c.name.as_ref(), path, c.metadata.as_ref());
    let name = owned(&c.name).unwrap_or_default();
    let discovery = match (&c.cluster_type, &c.discovery_type) {
        (Some(ct), _) => DiscoveryType::Custom(owned(&ct.name).unwrap_or_else(|| "cluster_type".into())),
        // proto3 default of `type` is STATIC.
        (None, None) => DiscoveryType::Static,
        (None, Some(t)) => DiscoveryType::parse(t.as_str()),
    };
    if let DiscoveryType::Custom(t) = &discovery {
        let line = origin.line;
        ctx.note(path, line, format!("cluster {name:?}: discovery type {t:?} is not modelled"));
    }
    let mut load_assignment =
        c.load_assignment.as_ref().map(|a| load_assignment(a, &format!("{path}.load_assignment"), ctx));
    if load_assignment.is_none() && !c.hosts.is_empty() {
        let endpoints = c
            .hosts
            .iter()
            .enumerate()
            .map(|(i, h)| LbEndpoint {
                address: endpoint_address(h, &format!("{path}.hosts[{i}]"), ctx),
                health: HealthStatus::Unknown,
                weight: None,
                hostname: None,
                istio_workload: None,
                socket_match_labels: Vec::new(),
            })
            .collect();
        load_assignment = Some(LoadAssignment {
            origin: super::super::model::Origin {
                name: Some(name.clone()),
                path: format!("{path}.hosts"),
                line: None,
                istio_config: None,
            },
            cluster_name: name.clone(),
            localities: vec![LocalityEndpoints {
                locality: None,
                priority: 0,
                weight: None,
                endpoints,
                socket_match_labels: Vec::new(),
            }],
        });
    }
    let upstream_bind = c.upstream_bind_config.as_ref().map(|b| {
        let p = format!("{path}.upstream_bind_config");
        let mut source_addresses: Vec<IpAddr> = Vec::new();
        if let Some(sa) = &b.source_address {
            if let Some(ip) = ctx.ip_of(sa, &format!("{p}.source_address")) {
                source_addresses.push(ip);
            }
        }
        for (i, e) in b.extra_source_addresses.iter().enumerate() {
            if let Some(sa) = &e.address {
                if let Some(ip) = ctx.ip_of(sa, &format!("{p}.extra_source_addresses[{i}].address")) {
                    source_addresses.push(ip);
                }
            }
        }
        for (i, sa) in b.additional_source_addresses.iter().enumerate() {
            if let Some(ip) = ctx.ip_of(sa, &format!("{p}.additional_source_addresses[{i}]")) {
                source_addresses.push(ip);
            }
        }
        UpstreamBind { source_addresses, freebind: ctx.bool(&b.freebind, &p, "freebind", false) }
    });
    let original_dst = c
        .original_dst_lb_config
        .as_ref()
        .map(|o| {
            let p = format!("{path}.original_dst_lb_config");
            OriginalDstConfig {
                use_http_header: ctx.bool(&o.use_http_header, &p, "use_http_header", false),
                http_header_name: owned(&o.http_header_name).filter(|h| !h.is_empty()),
                upstream_port_override: ctx
                    .uint(&o.upstream_port_override, &p, "upstream_port_override", u64::from(u16::MAX))
                    .map(|v| v as u16),
            }
        })
        .unwrap_or_default();
    let transport_socket = match (&c.transport_socket, &c.tls_context) {
        (Some(ts), _) => owned(&ts.name)
            .or_else(|| ts.typed_config.as_ref().or(ts.config.as_ref()).and_then(|t| owned(&t.type_url))),
        (None, Some(_)) => Some("tls_context".into()),
        _ => None,
    };
    Some(Cluster {
        origin,
        name,
        state,
        discovery,
        lb_policy: owned(&c.lb_policy),
        eds_service_name: c.eds_cluster_config.as_ref().and_then(|e| owned(&e.service_name)),
        load_assignment,
        upstream_bind,
        original_dst,
        transport_socket,
        transport_socket_matches: c.transport_socket_matches.len(),
        upstream_transport: super::transport::upstream_transport(c),
    })
}

pub fn load_assignment(a: &raw::LoadAssignment<'_>, path: &str, ctx: &mut Ctx<'_>) -> LoadAssignment {
    let origin = ctx.origin(a.cluster_name.as_ref(), path, None);
    let localities = a
        .endpoints
        .iter()
        .enumerate()
        .map(|(i, le)| {
            let p = format!("{path}.endpoints[{i}]");
            let locality = le
                .locality
                .as_ref()
                .map(|l| {
                    [&l.region, &l.zone, &l.sub_zone]
                        .iter()
                        .map(|s| s.as_ref().map(|s| s.as_str()).unwrap_or(""))
                        .collect::<Vec<_>>()
                        .join("/")
                })
                .filter(|l| l != "//");
            let endpoints = le
                .lb_endpoints
                .iter()
                .enumerate()
                .map(|(j, e)| {
                    let pp = format!("{p}.lb_endpoints[{j}]");
                    let ep = e.endpoint.as_ref();
                    let address = match ep.and_then(|e| e.address.as_ref()) {
                        Some(addr) => endpoint_address(addr, &format!("{pp}.endpoint.address"), ctx),
                        None => {
                            ctx.note(&pp, None, "lb_endpoint without endpoint.address");
                            EndpointAddress::Unknown
                        }
                    };
                    LbEndpoint {
                        address,
                        health: HealthStatus::parse(e.health_status.as_ref().map(|h| h.as_str())),
                        weight: ctx
                            .uint(&e.load_balancing_weight, &pp, "load_balancing_weight", u64::from(u32::MAX))
                            .map(|w| w as u32),
                        hostname: ep.and_then(|e| owned(&e.hostname)),
                        istio_workload: e
                            .metadata
                            .as_ref()
                            .and_then(|m| m.filter_metadata.as_ref()?.istio.as_ref()?.workload.as_ref())
                            .map(|w| w.as_str().to_string()),
                        socket_match_labels: super::transport::socket_match_labels(e.metadata.as_ref()),
                    }
                })
                .collect();
            LocalityEndpoints {
                locality,
                priority: ctx.uint(&le.priority, &p, "priority", u64::from(u32::MAX)).unwrap_or(0) as u32,
                weight: ctx
                    .uint(&le.load_balancing_weight, &p, "load_balancing_weight", u64::from(u32::MAX))
                    .map(|w| w as u32),
                endpoints,
                socket_match_labels: super::transport::socket_match_labels(le.metadata.as_ref()),
            }
        })
        .collect();
    LoadAssignment { origin, cluster_name: owned(&a.cluster_name).unwrap_or_default(), localities }
}

fn endpoint_address(a: &Address<'_>, path: &str, ctx: &mut Ctx<'_>) -> EndpointAddress {
    if let Some(sa) = &a.socket_address {
        let p = format!("{path}.socket_address");
        let port = ctx.uint(&sa.port_value, &p, "port_value", u64::from(u16::MAX)).unwrap_or(0) as u16;
        let Some(host) = sa.address.as_ref() else {
            ctx.note(&p, None, "socket_address without address");
            return EndpointAddress::Unknown;
        };
        return match host.as_str().parse::<IpAddr>() {
            Ok(ip) => EndpointAddress::Ip { ip, port },
            Err(_) => EndpointAddress::Dns { host: host.as_str().to_string(), port },
        };
    }
    if let Some(p) = &a.pipe {
        return EndpointAddress::Pipe { path: owned(&p.path).unwrap_or_default() };
    }
    if let Some(i) = &a.envoy_internal_address {
        return EndpointAddress::Internal {
            server_listener_name: owned(&i.server_listener_name).unwrap_or_default(),
        };
    }
    ctx.note(path, None, "endpoint address not understood");
    EndpointAddress::Unknown
}
