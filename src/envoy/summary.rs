//! A text summary of a dump, in the spirit of `istioctl proxy-config all`: listeners with their
//! chains, route configurations, clusters, EDS endpoints, and everything not understood.

use std::fmt::Write;

use super::model::{
    Cluster, EnvoyConfig, FilterChain, FilterChainMatch, Listener, NetworkFilterKind, RouteSource, SourceType,
};
use super::route::{Action, PathSpecifier, RouteConfig};
use super::validate::{Finding, Instead};

/// Renders the summary (deterministic: document order).
pub fn render(cfg: &EnvoyConfig) -> String {
    let mut o = String::new();
    let _ = write_all(&mut o, cfg);
    o
}

fn write_all(o: &mut String, cfg: &EnvoyConfig) -> std::fmt::Result {
    // What Envoy refuses comes first: everything below it is read as if it were live.
    let refused = cfg.findings.iter().filter(|f| f.rejects()).count();
    writeln!(o, "REJECTED BY ENVOY ({refused})")?;
    for f in cfg.findings.iter().filter(|f| f.rejects()) {
        finding(o, f)?;
    }
    let warnings = cfg.findings.len() - refused;
    if warnings > 0 {
        writeln!(o, "SERVED OTHERWISE BY ENVOY ({warnings})")?;
        for f in cfg.findings.iter().filter(|f| !f.rejects()) {
            finding(o, f)?;
        }
    }
    writeln!(o)?;
    writeln!(o, "SECTIONS ({})", cfg.sections.len())?;
    for s in &cfg.sections {
        let m = if s.modelled { "" } else { "  (not modelled)" };
        writeln!(o, "  {}  at {}{m}", s.kind, s.path)?;
    }
    writeln!(o)?;
    writeln!(o, "LISTENERS ({})", cfg.listeners.len())?;
    for l in &cfg.listeners {
        listener(o, l)?;
    }
    writeln!(o)?;
    writeln!(o, "ROUTES ({})", cfg.route_configs.len())?;
    for r in &cfg.route_configs {
        let kind = serde_json::to_string(&r.kind).unwrap_or_default();
        writeln!(o, "  route config {:?} [{}]", r.name, kind.trim_matches('"'))?;
        route_table(o, &r.config, "    ")?;
    }
    writeln!(o)?;
    writeln!(o, "CLUSTERS ({})", cfg.clusters.len())?;
    for c in &cfg.clusters {
        cluster(o, c)?;
    }
    writeln!(o)?;
    writeln!(o, "ENDPOINTS ({} load assignments)", cfg.load_assignments.len())?;
    for a in &cfg.load_assignments {
        writeln!(o, "  {}", a.cluster_name)?;
        for l in &a.localities {
            for e in &l.endpoints {
                let loc = l.locality.as_deref().unwrap_or("");
                writeln!(
                    o,
                    "    {}  {}  priority={}  locality={loc}",
                    e.address,
                    e.health.as_str(),
                    l.priority
                )?;
            }
        }
    }
    writeln!(o)?;
    writeln!(o, "NOT UNDERSTOOD ({})", cfg.notes.len())?;
    for n in &cfg.notes {
        let line = n.line.map(|l| format!(":{l}")).unwrap_or_default();
        writeln!(o, "  {}{line}: {}", n.path, n.message)?;
    }
    Ok(())
}

fn finding(o: &mut String, f: &Finding) -> std::fmt::Result {
    let line = f.line.map(|l| format!(":{l}")).unwrap_or_default();
    let problem = serde_json::to_string(&f.problem).unwrap_or_default();
    writeln!(o, "  {} {:?} [{}]  at {}{line}", f.object.as_str(), f.name, problem.trim_matches('"'), f.path)?;
    if !f.reason.is_empty() {
        writeln!(o, "    envoy: {}", f.reason)?;
    }
    writeln!(o, "    serves instead: {}", instead_words(&f.instead))
}

/// What Envoy serves in place of a refused object, in words.
pub fn instead_words(i: &Instead) -> String {
    match i {
        Instead::LastGood { path } => format!("the last version it accepted ({path})"),
        Instead::Nothing => "nothing (it never accepted a version of it)".into(),
        Instead::PreviousIfAny => {
            "the version it had before, if it had one (not in this dump); else nothing".into()
        }
        Instead::EnvoyDoesNotStart => {
            "nothing: a static resource, Envoy refuses its bootstrap and does not start".into()
        }
        Instead::WarmingThenNoRoute => {
            "the listener waits (warming) for RDS, then routes nothing: every request 404 NR".into()
        }
    }
}

fn listener(o: &mut String, l: &Listener) -> std::fmt::Result {
    let mut flags = vec![l.state.as_str().to_string()];
    if l.state == super::model::ResourceState::Error {
        flags[0] = "rejected update (error_state)".into();
    }
    if !l.bind_to_port {
        flags.push("bind_to_port=false".into());
    }
    if l.use_original_dst {
        flags.push("use_original_dst".into());
    }
    if l.transparent {
        flags.push("transparent".into());
    }
    if let Some(d) = &l.traffic_direction {
        flags.push(d.to_ascii_lowercase());
    }
    writeln!(o, "  {} {} [{}]", display_name(&l.name), l.address, flags.join(", "))?;
    if let Some(ic) = &l.origin.istio_config {
        writeln!(o, "    istio: {ic}")?;
    }
    if !l.listener_filters.is_empty() {
        let names: Vec<String> =
            l.listener_filters
                .iter()
                .map(|f| {
                    if f.disabled.is_some() {
                        format!("{} (filter_disabled)", f.name)
                    } else {
                        f.name.clone()
                    }
                })
                .collect();
        writeln!(o, "    listener filters: {}", names.join(", "))?;
    }
    if l.filter_chain_matcher.is_some() {
        writeln!(o, "    filter_chain_matcher: yes (chains selected by name)")?;
    }
    for (i, c) in l.filter_chains.iter().enumerate() {
        chain(o, &format!("#{i}"), c)?;
    }
    if let Some(d) = &l.default_filter_chain {
        chain(o, "default", d)?;
    }
    Ok(())
}

fn display_name(n: &str) -> &str {
    if n.is_empty() {
        "(unnamed)"
    } else {
        n
    }
}

fn chain(o: &mut String, label: &str, c: &FilterChain) -> std::fmt::Result {
    let name = c.name.as_deref().map(|n| format!(" {n}")).unwrap_or_default();
    let tls = c.transport_socket.as_deref().map(|t| format!(" tls={t}")).unwrap_or_default();
    writeln!(
        o,
        "    chain {label}{name}: match {}{tls} -> {}",
        chain_match(&c.filter_chain_match),
        terminal(c)
    )
}

fn chain_match(m: &FilterChainMatch) -> String {
    if m.is_empty() {
        return "(any)".into();
    }
    let mut p = Vec::new();
    let nets = |v: &[ipnet::IpNet]| v.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(",");
    if let Some(x) = m.destination_port {
        p.push(format!("dst_port={x}"));
    }
    if !m.prefix_ranges.is_empty() {
        p.push(format!("dst={}", nets(&m.prefix_ranges)));
    }
    if !m.server_names.is_empty() {
        p.push(format!("sni={}", m.server_names.join(",")));
    }
    if let Some(t) = &m.transport_protocol {
        p.push(format!("transport={t}"));
    }
    if !m.application_protocols.is_empty() {
        p.push(format!("alpn={}", m.application_protocols.join(",")));
    }
    if !m.direct_source_prefix_ranges.is_empty() {
        p.push(format!("direct_src={}", nets(&m.direct_source_prefix_ranges)));
    }
    if m.source_type != SourceType::Any {
        p.push(format!("source_type={:?}", m.source_type));
    }
    if !m.source_prefix_ranges.is_empty() {
        p.push(format!("src={}", nets(&m.source_prefix_ranges)));
    }
    if !m.source_ports.is_empty() {
        let ports: Vec<String> = m.source_ports.iter().map(|p| p.to_string()).collect();
        p.push(format!("src_port={}", ports.join(",")));
    }
    p.join(" ")
}

fn terminal(c: &FilterChain) -> String {
    let Some(f) = c.terminal() else {
        let names: Vec<&str> = c.filters.iter().map(|f| f.name.as_str()).collect();
        return format!("[{}]", names.join(", "));
    };
    match &f.kind {
        NetworkFilterKind::TcpProxy(t) => {
            if !t.weighted_clusters.is_empty() {
                let w: Vec<String> =
                    t.weighted_clusters.iter().map(|w| format!("{}={}", w.name, w.weight)).collect();
                format!("tcp_proxy weighted {}", w.join(", "))
            } else if let Some(cl) = &t.cluster {
                format!("tcp_proxy {cl}")
            } else {
                let r: Vec<&str> = t.v1_routes.iter().map(|r| r.cluster.as_str()).collect();
                format!("tcp_proxy v1 routes {}", r.join(", "))
            }
        }
        NetworkFilterKind::HttpConnectionManager(h) => match &h.route_source {
            RouteSource::Rds(n) => format!("http rds {n:?}"),
            RouteSource::Inline(r) => format!("http inline route {:?}", r.name),
            RouteSource::Scoped => "http scoped_routes".into(),
            RouteSource::Missing => "http (no route source)".into(),
        },
        NetworkFilterKind::Other => f.name.clone(),
    }
}

fn route_table(o: &mut String, rc: &RouteConfig, indent: &str) -> std::fmt::Result {
    for vh in &rc.virtual_hosts {
        writeln!(o, "{indent}vhost {:?} domains=[{}]", vh.name, vh.domains.join(", "))?;
        for r in &vh.routes {
            let m = match &r.r#match.path {
                PathSpecifier::Prefix(p) => format!("prefix {p}"),
                PathSpecifier::Path(p) => format!("path {p}"),
                PathSpecifier::SafeRegex(re) => format!("regex {}", re.pattern()),
                PathSpecifier::PathSeparatedPrefix(p) => format!("path_separated_prefix {p}"),
                PathSpecifier::Connect => "CONNECT".into(),
                PathSpecifier::Unsupported(u) => format!("unsupported {u}"),
            };
            let extra = if r.r#match.headers.is_empty() {
                String::new()
            } else {
                let n = r.r#match.headers.len();
                format!(" +{n} header{}", if n == 1 { "" } else { "s" })
            };
            let a = match &r.action {
                Action::Route(ra) => {
                    if let Some(c) = &ra.cluster {
                        format!("cluster {c}")
                    } else if let Some(h) = &ra.cluster_header {
                        format!("cluster_header {h}")
                    } else if let Some(w) = &ra.weighted_clusters {
                        let v: Vec<String> =
                            w.clusters.iter().map(|c| format!("{}={}", c.name, c.weight)).collect();
                        format!("weighted {}", v.join(", "))
                    } else {
                        "route (no cluster)".into()
                    }
                }
                Action::Redirect(_) => "redirect".into(),
                Action::DirectResponse(d) => format!("direct_response {}", d.status),
                Action::NonForwarding => "non_forwarding".into(),
            };
            writeln!(o, "{indent}  {m}{extra} -> {a}")?;
        }
    }
    for u in &rc.unsupported {
        writeln!(o, "{indent}not evaluated: {u}")?;
    }
    Ok(())
}

fn cluster(o: &mut String, c: &Cluster) -> std::fmt::Result {
    let mut extra = Vec::new();
    if c.state.as_str() != "active" {
        extra.push(c.state.as_str().to_string());
    }
    if let Some(s) = &c.eds_service_name {
        if *s != c.name {
            extra.push(format!("eds_service={s}"));
        }
    }
    if let Some(a) = &c.load_assignment {
        extra.push(format!("endpoints={}", a.endpoint_count()));
    }
    if let Some(b) = &c.upstream_bind {
        let v: Vec<String> = b.source_addresses.iter().map(|a| a.to_string()).collect();
        extra.push(format!("bind={}", v.join(",")));
    }
    if c.original_dst.use_http_header {
        extra.push("use_http_header".into());
    }
    if let Some(p) = c.original_dst.upstream_port_override {
        extra.push(format!("port_override={p}"));
    }
    if c.transport_socket.is_some() || c.transport_socket_matches > 0 {
        extra.push("tls".into());
    }
    if let Some(r) = c.istio_role() {
        extra.push(format!("istio={r}"));
    }
    writeln!(o, "  {}  {}  {}", display_name(&c.name), c.discovery.label(), extra.join(" "))?;
    if let Some(ic) = &c.origin.istio_config {
        writeln!(o, "    istio: {ic}")?;
    }
    Ok(())
}
