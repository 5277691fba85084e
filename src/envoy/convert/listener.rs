//! Listener conversion.

use super::super::model::{
    DisablePredicate, FilterChain, FilterChainMatch, HttpConnectionManager, Listener, ListenerAddress,
    ListenerFilter, ListenerFilterKind, NetworkFilter, NetworkFilterKind, ResourceState, RouteConfigKind,
    RouteSource, SourceType, TcpProxy, TcpV1Route, WeightedCluster,
};
use super::super::raw::filter::{
    CidrOrText, FilterConfig, NetConfig, NetworkFilter as RawFilter, TcpV1Route as RawV1,
};
use super::super::raw::listener as raw;
use super::super::raw::Address;
use super::{owned, route_config, Ctx};

pub fn listener(
    l: &raw::Listener<'_>,
    path: &str,
    state: ResourceState,
    ctx: &mut Ctx<'_>,
) -> Option<Listener> {
    let origin = ctx.origin(l.name.as_ref(), path, l.metadata.as_ref());
    let name = owned(&l.name).unwrap_or_default();
    let address = match &l.address {
        Some(a) => address(a, &format!("{path}.address"), ctx),
        None if l.internal_listener.is_some() => ListenerAddress::Internal,
        None => {
            if l.api_listener.is_none() {
                let line = origin.line;
                ctx.note(path, line, format!("listener {name:?} has no address"));
            }
            ListenerAddress::None
        }
    };
    let additional_addresses = l
        .additional_addresses
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            let sa = a.address.as_ref()?.socket_address.as_ref()?;
            ctx.socket(sa, &format!("{path}.additional_addresses[{i}].address.socket_address"))
        })
        .collect();
    let mut bind_to_port = ctx.bind_scalar(&l.bind_to_port, path, "bind_to_port");
    if let Some(v1) = &l.deprecated_v1 {
        let p = format!("{path}.deprecated_v1");
        if let Some(b) = ctx.bind_scalar(&v1.bind_to_port, &p, "bind_to_port") {
            bind_to_port = Some(b);
        }
    }
    let listener_filters = l
        .listener_filters
        .iter()
        .enumerate()
        .map(|(i, f)| listener_filter(f, &format!("{path}.listener_filters[{i}]"), ctx))
        .collect();
    let filter_chains = l
        .filter_chains
        .iter()
        .enumerate()
        .map(|(i, c)| filter_chain(c, &format!("{path}.filter_chains[{i}]"), ctx))
        .collect();
    let default_filter_chain = l
        .default_filter_chain
        .as_ref()
        .map(|c| filter_chain(c, &format!("{path}.default_filter_chain"), ctx));
    let filter_chain_matcher = l
        .filter_chain_matcher
        .as_ref()
        .map(|m| super::matcher::matcher(m, &format!("{path}.filter_chain_matcher"), ctx));
    Some(Listener {
        origin,
        name,
        state,
        address,
        additional_addresses,
        bind_to_port: bind_to_port.unwrap_or(true),
        use_original_dst: ctx.bool(&l.use_original_dst, path, "use_original_dst", false),
        transparent: ctx.bool(&l.transparent, path, "transparent", false),
        listener_filters,
        continue_on_listener_filters_timeout: ctx.bool(
            &l.continue_on_listener_filters_timeout,
            path,
            "continue_on_listener_filters_timeout",
            false,
        ),
        listener_filters_timeout: owned(&l.listener_filters_timeout),
        filter_chains,
        default_filter_chain,
        filter_chain_matcher,
        traffic_direction: owned(&l.traffic_direction),
    })
}

impl Ctx<'_> {
    fn bind_scalar(&mut self, s: &super::Scalar<'_>, path: &str, field: &str) -> Option<bool> {
        match s.as_bool() {
            Ok(v) => v,
            Err(_) => Some(self.bool(s, path, field, true)),
        }
    }
}

fn address(a: &Address<'_>, path: &str, ctx: &mut Ctx<'_>) -> ListenerAddress {
    if let Some(sa) = &a.socket_address {
        return match ctx.socket(sa, &format!("{path}.socket_address")) {
            Some(s) => ListenerAddress::Socket(s),
            None => ListenerAddress::None,
        };
    }
    if let Some(p) = &a.pipe {
        return ListenerAddress::Pipe(owned(&p.path).unwrap_or_default());
    }
    if a.envoy_internal_address.is_some() {
        return ListenerAddress::Internal;
    }
    ctx.note(path, None, "address not understood (expected socket_address, pipe or envoy_internal_address)");
    ListenerAddress::None
}

fn listener_filter(f: &raw::ListenerFilter<'_>, path: &str, ctx: &mut Ctx<'_>) -> ListenerFilter {
    let name = owned(&f.name).unwrap_or_default();
    let type_url = f.typed_config.as_ref().and_then(|t| t.type_url.as_ref()).map(|t| t.as_str().to_string());
    let kind = ListenerFilterKind::classify(&name, type_url.as_deref());
    if kind == ListenerFilterKind::Other {
        let line = ctx.line_of(f.name.as_ref());
        ctx.note(
            path,
            line,
            format!("listener filter {name:?} is not modelled (assumed to pass the connection unchanged)"),
        );
    }
    let disabled = f.filter_disabled.as_ref().map(|p| predicate(p, &format!("{path}.filter_disabled"), ctx));
    ListenerFilter { name, type_url, kind, disabled }
}

fn predicate(p: &raw::Predicate<'_>, path: &str, ctx: &mut Ctx<'_>) -> DisablePredicate {
    if let Some(s) = &p.or_match {
        return DisablePredicate::Or(s.rules.iter().map(|r| predicate(r, path, ctx)).collect());
    }
    if let Some(s) = &p.and_match {
        return DisablePredicate::And(s.rules.iter().map(|r| predicate(r, path, ctx)).collect());
    }
    if let Some(n) = &p.not_match {
        return DisablePredicate::Not(Box::new(predicate(n, path, ctx)));
    }
    if let Some(r) = &p.destination_port_range {
        let start =
            ctx.uint(&r.start, path, "destination_port_range.start", u64::from(u32::MAX)).unwrap_or(0) as u32;
        let end =
            ctx.uint(&r.end, path, "destination_port_range.end", u64::from(u32::MAX)).unwrap_or(0) as u32;
        return DisablePredicate::DestinationPortRange { start, end };
    }
    if ctx.bool(&p.any_match, path, "any_match", false) {
        return DisablePredicate::Any;
    }
    ctx.note(path, None, "empty or unsupported filter_disabled predicate (treated as never matching)");
    DisablePredicate::Or(Vec::new())
}

fn filter_chain(c: &raw::FilterChain<'_>, path: &str, ctx: &mut Ctx<'_>) -> FilterChain {
    let origin = ctx.origin(c.name.as_ref(), path, c.metadata.as_ref());
    let filter_chain_match = c
        .filter_chain_match
        .as_ref()
        .map(|m| chain_match(m, &format!("{path}.filter_chain_match"), ctx))
        .unwrap_or_default();
    let filters = c
        .filters
        .iter()
        .enumerate()
        .map(|(i, f)| network_filter(f, &format!("{path}.filters[{i}]"), ctx))
        .collect();
    let transport_socket = match (&c.transport_socket, &c.tls_context) {
        (Some(ts), _) => Some(
            owned(&ts.name)
                .or_else(|| ts.typed_config.as_ref().or(ts.config.as_ref()).and_then(|t| owned(&t.type_url)))
                .unwrap_or_else(|| "transport_socket".into()),
        ),
        (None, Some(_)) => Some("tls_context".into()),
        (None, None) => None,
    };
    let downstream_tls = match (&c.transport_socket, &c.tls_context) {
        (Some(ts), _) => super::transport::socket(ts, false).tls,
        (None, Some(t)) => Some(super::transport::tls_context(t, false)),
        (None, None) => None,
    };
    FilterChain {
        origin,
        name: owned(&c.name),
        filter_chain_match,
        filters,
        transport_socket,
        downstream_tls,
    }
}

fn chain_match(m: &raw::FilterChainMatch<'_>, path: &str, ctx: &mut Ctx<'_>) -> FilterChainMatch {
    if m.address_suffix.is_some() || m.suffix_len.is_some() {
        ctx.note(
            path,
            None,
            "address_suffix/suffix_len are not implemented by Envoy (listener would be rejected)",
        );
    }
    let cidrs = |v: &[super::super::raw::CidrRange<'_>], f: &str, ctx: &mut Ctx<'_>| {
        v.iter().enumerate().filter_map(|(i, c)| ctx.cidr(c, &format!("{path}.{f}[{i}]"))).collect::<Vec<_>>()
    };
    let source_type = match m.source_type.as_ref().map(|s| s.as_str()) {
        None | Some("ANY") => SourceType::Any,
        Some("SAME_IP_OR_LOOPBACK") | Some("LOCAL") => SourceType::SameIpOrLoopback,
        Some("EXTERNAL") => SourceType::External,
        Some(other) => {
            let line = ctx.line_of(m.source_type.as_ref());
            ctx.note(
                format!("{path}.source_type"),
                line,
                format!("unknown source_type {other:?} (treated as ANY)"),
            );
            SourceType::Any
        }
    };
    FilterChainMatch {
        destination_port: ctx
            .uint(&m.destination_port, path, "destination_port", u64::from(u16::MAX))
            .map(|p| p as u16),
        prefix_ranges: cidrs(&m.prefix_ranges, "prefix_ranges", ctx),
        direct_source_prefix_ranges: cidrs(
            &m.direct_source_prefix_ranges,
            "direct_source_prefix_ranges",
            ctx,
        ),
        source_type,
        source_prefix_ranges: cidrs(&m.source_prefix_ranges, "source_prefix_ranges", ctx),
        source_ports: m
            .source_ports
            .iter()
            .filter_map(|p| ctx.uint(p, path, "source_ports", u64::from(u16::MAX)).map(|p| p as u16))
            .collect(),
        // Envoy compares server names case-insensitively (SNI is stored lower-case).
        server_names: m.server_names.iter().map(|s| s.as_str().to_ascii_lowercase()).collect(),
        transport_protocol: owned(&m.transport_protocol).filter(|s| !s.is_empty()),
        application_protocols: m.application_protocols.iter().map(|s| s.as_str().to_string()).collect(),
    }
}

const TCP_PROXY: &[&str] = &["envoy.filters.network.tcp_proxy", "envoy.tcp_proxy"];
const HCM: &[&str] = &["envoy.filters.network.http_connection_manager", "envoy.http_connection_manager"];

fn network_filter(f: &RawFilter<'_>, path: &str, ctx: &mut Ctx<'_>) -> NetworkFilter {
    let name = owned(&f.name).unwrap_or_default();
    let (type_url, config) = match &f.typed_config {
        Some(FilterConfig::Known { type_url, config }) => (Some(type_url.clone()), Some(&**config)),
        Some(FilterConfig::Other { type_url }) => (Some(type_url.clone()), None),
        None => (None, f.config.as_ref()),
    };
    let t = type_url.as_deref().unwrap_or("");
    let is_tcp = t.ends_with(".TcpProxy") || (type_url.is_none() && TCP_PROXY.contains(&name.as_str()));
    let is_hcm =
        t.ends_with(".HttpConnectionManager") || (type_url.is_none() && HCM.contains(&name.as_str()));
    let kind = match config {
        Some(cfg) if is_tcp => NetworkFilterKind::TcpProxy(tcp_proxy(cfg, path, ctx)),
        Some(cfg) if is_hcm => {
            let field = if f.typed_config.is_some() { "typed_config" } else { "config" };
            NetworkFilterKind::HttpConnectionManager(hcm(cfg, &format!("{path}.{field}"), ctx))
        }
        _ => {
            if TCP_PROXY.contains(&name.as_str()) || HCM.contains(&name.as_str()) {
                let line = ctx.line_of(f.name.as_ref());
                ctx.note(path, line, format!("{name}: configuration not understood"));
            }
            NetworkFilterKind::Other
        }
    };
    NetworkFilter { name, type_url, kind }
}

fn tcp_proxy(cfg: &NetConfig<'_>, path: &str, ctx: &mut Ctx<'_>) -> TcpProxy {
    // v1 filter JSON: `{"deprecated_v1": true, "value": {...}}`.
    let v1_value = cfg.value.as_ref();
    let mut v1_routes: Vec<TcpV1Route> = Vec::new();
    let v1 = cfg
        .deprecated_v1
        .routes
        .iter()
        .chain(v1_value.and_then(|v| v.route_config.as_ref()).into_iter().flat_map(|r| r.routes.iter()));
    for (i, r) in v1.enumerate() {
        v1_routes.push(v1_route(r, &format!("{path}.deprecated_v1.routes[{i}]"), ctx));
    }
    let weighted_clusters: Vec<WeightedCluster> = cfg
        .weighted_clusters
        .as_ref()
        .map(|w| {
            w.clusters
                .iter()
                .enumerate()
                .map(|(i, c)| WeightedCluster {
                    name: owned(&c.name).unwrap_or_default(),
                    weight: ctx
                        .uint(
                            &c.weight,
                            &format!("{path}.weighted_clusters.clusters[{i}]"),
                            "weight",
                            u64::from(u32::MAX),
                        )
                        .unwrap_or(0) as u32,
                })
                .collect()
        })
        .unwrap_or_default();
    let cluster = owned(&cfg.cluster);
    if cluster.is_none() && weighted_clusters.is_empty() && v1_routes.is_empty() {
        ctx.note(path, None, "tcp_proxy without cluster or weighted_clusters");
    }
    let stat_prefix = owned(&cfg.stat_prefix).or_else(|| v1_value.and_then(|v| owned(&v.stat_prefix)));
    TcpProxy { stat_prefix, cluster, weighted_clusters, v1_routes }
}

fn v1_route(r: &RawV1<'_>, path: &str, ctx: &mut Ctx<'_>) -> TcpV1Route {
    let list = |v: &[CidrOrText<'_>], f: &str, ctx: &mut Ctx<'_>| {
        v.iter()
            .enumerate()
            .filter_map(|(i, c)| match c {
                CidrOrText::Text(s) => ctx.cidr_text(s, &format!("{path}.{f}[{i}]")),
                CidrOrText::Range(c) => ctx.cidr(c, &format!("{path}.{f}[{i}]")),
            })
            .collect()
    };
    TcpV1Route {
        cluster: owned(&r.cluster).unwrap_or_default(),
        destination_ip_list: list(&r.destination_ip_list, "destination_ip_list", ctx),
        destination_ports: owned(&r.destination_ports),
        source_ip_list: list(&r.source_ip_list, "source_ip_list", ctx),
        source_ports: owned(&r.source_ports),
    }
}

fn hcm(cfg: &NetConfig<'_>, path: &str, ctx: &mut Ctx<'_>) -> HttpConnectionManager {
    let route_source = if let Some(rds) = &cfg.rds {
        match owned(&rds.route_config_name) {
            Some(n) => RouteSource::Rds(n),
            None => {
                ctx.note(format!("{path}.rds"), None, "rds without route_config_name");
                RouteSource::Missing
            }
        }
    } else if let Some(rc) = cfg.route_config {
        let p = format!("{path}.route_config");
        match route_config(rc, &p, RouteConfigKind::Inline, ctx) {
            Some(r) => RouteSource::Inline(Box::new(r)),
            None => RouteSource::Missing,
        }
    } else if cfg.scoped_routes.is_some() {
        ctx.note(path, None, "http_connection_manager uses scoped_routes (not modelled)");
        RouteSource::Scoped
    } else {
        ctx.note(path, None, "http_connection_manager without rds or route_config");
        RouteSource::Missing
    };
    HttpConnectionManager {
        stat_prefix: owned(&cfg.stat_prefix),
        route_source,
        http_filters: cfg.http_filters.0.iter().filter_map(|f| owned(&f.name)).collect(),
        strip_matching_host_port: ctx.bool(
            &cfg.strip_matching_host_port,
            path,
            "strip_matching_host_port",
            false,
        ),
        strip_any_host_port: ctx.bool(&cfg.strip_any_host_port, path, "strip_any_host_port", false),
    }
}
