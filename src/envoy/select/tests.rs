//! Matching rules, each against a small hand-written dump (envoy-semantics.md §1–§7).

use std::net::SocketAddr;

use super::*;
use crate::envoy::parse_dump;

fn dump(listeners: &str, clusters: &str, routes: &str) -> EnvoyConfig {
    let text = format!(
        r#"{{"configs": [
  {{"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump", "dynamic_active_clusters": [{clusters}]}},
  {{"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump", "dynamic_listeners": [{listeners}]}},
  {{"@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump", "dynamic_route_configs": [{routes}]}}
]}}"#
    );
    match parse_dump(text.as_bytes()) {
        Ok(c) => c,
        Err(e) => panic!("test dump does not parse: {e}\n{text}"),
    }
}

fn listener(name: &str, addr: &str, port: u16, extra: &str) -> String {
    format!(
        r#"{{"name": "{name}", "active_state": {{"listener": {{"@type": "type.googleapis.com/envoy.config.listener.v3.Listener",
  "name": "{name}", "address": {{"socket_address": {{"address": "{addr}", "port_value": {port}}}}} {extra}}}}}}}"#
    )
}

fn tcp(cluster: &str) -> String {
    format!(
        r#"{{"name": "envoy.filters.network.tcp_proxy", "typed_config": {{"@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", "stat_prefix": "{cluster}", "cluster": "{cluster}"}}}}"#
    )
}

fn chain(name: &str, m: &str, cluster: &str) -> String {
    format!(
        r#"{{"name": "{name}", "filter_chain_match": {m}, "filters": [{}]}}"#,
        tcp(cluster)
    )
}

fn cluster(name: &str, body: &str) -> String {
    format!(
        r#"{{"cluster": {{"@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster", "name": "{name}" {body}}}}}"#
    )
}

fn static_cluster(name: &str, ip: &str, port: u16) -> String {
    cluster(
        name,
        &format!(
            r#", "type": "STATIC", "load_assignment": {{"cluster_name": "{name}", "endpoints": [{{"lb_endpoints": [{{"endpoint": {{"address": {{"socket_address": {{"address": "{ip}", "port_value": {port}}}}}}}}}]}}]}}"#
        ),
    )
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn query(listener: &str, dst: &str) -> Query {
    Query {
        listener_addr: sa(listener),
        dst: sa(dst),
        src: sa("10.0.0.9:40000"),
        client: ClientBytes::Opaque,
        request: None,
        dns: NameTable::new(),
        random_value: None,
    }
}

fn chain_name(t: &Trace) -> Option<String> {
    t.filter_chain.as_ref().map(|c| c.chain.name.clone())
}

/// Istio's virtualOutbound: use_original_dst, blackhole on 15001, catch-all passthrough.
fn virtual_outbound() -> String {
    listener(
        "virtualOutbound",
        "0.0.0.0",
        15001,
        &format!(
            r#", "use_original_dst": true, "filter_chains": [{}, {}]"#,
            chain(
                "virtualOutbound-blackhole",
                r#"{"destination_port": 15001}"#,
                "BlackHoleCluster"
            ),
            chain("virtualOutbound-catchall-tcp", "{}", "PassthroughCluster")
        ),
    )
}

fn passthrough_clusters() -> String {
    [
        cluster(
            "PassthroughCluster",
            r#", "type": "ORIGINAL_DST", "lb_policy": "CLUSTER_PROVIDED""#,
        ),
        cluster("BlackHoleCluster", r#", "type": "STATIC""#),
    ]
    .join(",")
}

#[test]
fn handoff_prefers_exact_listener_even_without_bind_to_port() {
    let ls = [
        virtual_outbound(),
        listener(
            "10.96.0.10_53",
            "10.96.0.10",
            53,
            &format!(
                r#", "bind_to_port": false, "filter_chains": [{}]"#,
                chain("c", "{}", "dns")
            ),
        ),
        listener(
            "0.0.0.0_53",
            "0.0.0.0",
            53,
            &format!(
                r#", "bind_to_port": false, "filter_chains": [{}]"#,
                chain("w", "{}", "wild")
            ),
        ),
    ]
    .join(",");
    let cs = [
        passthrough_clusters(),
        static_cluster("dns", "10.1.1.1", 53),
        static_cluster("wild", "10.1.1.2", 53),
    ]
    .join(",");
    let cfg = dump(&ls, &cs, "");
    let t = evaluate(&cfg, &query("10.0.0.5:15001", "10.96.0.10:53"));
    let h = t
        .handoff
        .as_ref()
        .map(|h| (h.target.name.as_str(), h.matched));
    assert_eq!(h, Some(("10.96.0.10_53", Some(HandoffMatch::Exact))));
    assert_eq!(
        t.outcome,
        Outcome::Forwarded {
            cluster: "dns".into(),
            endpoint: "10.1.1.1:53".into(),
            source_address: None
        }
    );
    // Another IP on port 53: same-family wildcard.
    let t = evaluate(&cfg, &query("10.0.0.5:15001", "10.96.0.99:53"));
    assert_eq!(
        t.handoff.and_then(|h| h.matched),
        Some(HandoffMatch::Wildcard)
    );
    // No listener for the port: stays on virtualOutbound → PassthroughCluster to the original dst.
    let t = evaluate(&cfg, &query("10.0.0.5:15001", "93.184.216.34:443"));
    assert_eq!(t.handoff.as_ref().and_then(|h| h.matched), None);
    assert_eq!(
        chain_name(&t).as_deref(),
        Some("virtualOutbound-catchall-tcp")
    );
    assert_eq!(
        t.outcome,
        Outcome::Forwarded {
            cluster: "PassthroughCluster".into(),
            endpoint: "93.184.216.34:443".into(),
            source_address: None
        }
    );
}

#[test]
fn handoff_target_without_matching_chain_does_not_fall_back() {
    // The 0.0.0.0_9080 listener only takes HTTP; an opaque connection finds no chain there and
    // is closed, although virtualOutbound's catch-all would have matched.
    let http_only = chain(
        "http",
        r#"{"transport_protocol": "raw_buffer", "application_protocols": ["http/1.1", "h2c"]}"#,
        "web",
    );
    let ls = [
        virtual_outbound(),
        listener(
            "0.0.0.0_9080",
            "0.0.0.0",
            9080,
            &format!(
                r#", "bind_to_port": false, "listener_filters": [{{"name": "envoy.filters.listener.http_inspector"}}], "filter_chains": [{http_only}]"#
            ),
        ),
    ]
    .join(",");
    let cfg = dump(
        &ls,
        &[
            passthrough_clusters(),
            static_cluster("web", "10.2.2.2", 9080),
        ]
        .join(","),
        "",
    );
    let t = evaluate(&cfg, &query("10.0.0.5:15001", "10.96.3.3:9080"));
    assert_eq!(
        t.outcome,
        Outcome::Closed {
            flag: Some("NR".into()),
            details: "filter_chain_not_found (listener 0.0.0.0_9080)".into()
        }
    );
    let mut q = query("10.0.0.5:15001", "10.96.3.3:9080");
    q.client = ClientBytes::Http1;
    let t = evaluate(&cfg, &q);
    assert_eq!(chain_name(&t).as_deref(), Some("http"));
}

#[test]
fn exact_destination_port_wins_and_then_fails_without_backtracking() {
    // Chain "p" names port 8080 but wants TLS; chain "any" has no port. A plaintext connection
    // to 8080 picks the port subtree, fails there, and does NOT try "any": default chain.
    let chains = [
        chain(
            "p",
            r#"{"destination_port": 8080, "transport_protocol": "tls"}"#,
            "tls",
        ),
        chain("any", "{}", "plain"),
    ]
    .join(",");
    let dflt = chain("fallback", "{}", "dflt");
    let with_default = listener(
        "l",
        "0.0.0.0",
        8080,
        &format!(r#", "filter_chains": [{chains}], "default_filter_chain": {dflt}"#),
    );
    let cs = [
        static_cluster("tls", "10.0.0.1", 1),
        static_cluster("plain", "10.0.0.2", 2),
        static_cluster("dflt", "10.0.0.3", 3),
    ]
    .join(",");
    let cfg = dump(&with_default, &cs, "");
    let t = evaluate(&cfg, &query("10.0.0.5:8080", "10.0.0.5:8080"));
    let fc = t
        .filter_chain
        .as_ref()
        .map(|c| (c.via, c.chain.name.as_str()));
    assert_eq!(fc, Some(("default_filter_chain", "fallback")));
    // Without a default chain the connection is closed with NR.
    let no_default = listener(
        "l",
        "0.0.0.0",
        8080,
        &format!(r#", "filter_chains": [{chains}]"#),
    );
    let cfg = dump(&no_default, &cs, "");
    let t = evaluate(&cfg, &query("10.0.0.5:8080", "10.0.0.5:8080"));
    assert!(matches!(t.outcome, Outcome::Closed { ref flag, .. } if flag.as_deref() == Some("NR")));
    // Another port uses the port-less chain.
    let l2 = listener(
        "l",
        "0.0.0.0",
        9090,
        &format!(r#", "filter_chains": [{chains}]"#),
    );
    let cfg = dump(&l2, &cs, "");
    let t = evaluate(&cfg, &query("10.0.0.5:9090", "10.0.0.5:9090"));
    assert_eq!(chain_name(&t).as_deref(), Some("any"));
}

fn sni_listener() -> EnvoyConfig {
    let chains = [
        chain("exact", r#"{"server_names": ["api.foo.com"]}"#, "a"),
        chain("foo", r#"{"server_names": ["*.foo.com"]}"#, "b"),
        chain("com", r#"{"server_names": ["*.com"]}"#, "c"),
        chain("none", "{}", "d"),
    ]
    .join(",");
    let l = listener(
        "tls",
        "0.0.0.0",
        443,
        &format!(
            r#", "listener_filters": [{{"name": "envoy.filters.listener.tls_inspector"}}], "filter_chains": [{chains}]"#
        ),
    );
    dump(&l, "", "")
}

fn sni(cfg: &EnvoyConfig, name: Option<&str>) -> Option<String> {
    let mut q = query("10.0.0.5:443", "10.0.0.5:443");
    q.client = ClientBytes::Tls {
        sni: name.map(str::to_string),
        alpn: vec![],
    };
    chain_name(&evaluate(cfg, &q))
}

#[test]
fn server_names_exact_then_longest_wildcard_then_none() {
    let cfg = sni_listener();
    assert_eq!(sni(&cfg, Some("api.foo.com")).as_deref(), Some("exact"));
    assert_eq!(sni(&cfg, Some("API.Foo.com")).as_deref(), Some("exact"));
    assert_eq!(sni(&cfg, Some("www.foo.com")).as_deref(), Some("foo"));
    // `*.foo.com` also matches several labels, never `foo.com` itself.
    assert_eq!(sni(&cfg, Some("a.b.foo.com")).as_deref(), Some("foo"));
    assert_eq!(sni(&cfg, Some("foo.com")).as_deref(), Some("com"));
    assert_eq!(sni(&cfg, Some("bar.org")).as_deref(), Some("none"));
    assert_eq!(sni(&cfg, None).as_deref(), Some("none"));
    assert_eq!(
        chain::wildcards("a.b.c.com"),
        vec!["*.b.c.com", "*.c.com", "*.com"]
    );
}

#[test]
fn prefix_ranges_longest_prefix_and_alpn_in_client_order() {
    let chains = [
        chain("wide", r#"{"prefix_ranges": [{"address_prefix": "10.0.0.0", "prefix_len": 8}]}"#, "w"),
        chain("narrow", r#"{"prefix_ranges": [{"address_prefix": "10.1.0.0", "prefix_len": 16}], "application_protocols": ["h2"]}"#, "n"),
        chain("narrow-h1", r#"{"prefix_ranges": [{"address_prefix": "10.1.0.0", "prefix_len": 16}], "application_protocols": ["http/1.1"]}"#, "n1"),
    ]
    .join(",");
    let l = listener(
        "l",
        "0.0.0.0",
        80,
        &format!(
            r#", "listener_filters": [{{"name": "envoy.listener.tls_inspector"}}], "filter_chains": [{chains}]"#
        ),
    );
    let cfg = dump(&l, "", "");
    let mut q = query("10.1.2.3:80", "10.1.2.3:80");
    q.client = ClientBytes::Tls {
        sni: None,
        alpn: vec!["http/1.1".into(), "h2".into()],
    };
    assert_eq!(
        chain_name(&evaluate(&cfg, &q)).as_deref(),
        Some("narrow-h1")
    );
    q.client = ClientBytes::Tls {
        sni: None,
        alpn: vec!["h2".into(), "http/1.1".into()],
    };
    assert_eq!(chain_name(&evaluate(&cfg, &q)).as_deref(), Some("narrow"));
    // 10.1/16 is most specific but neither ALPN matches: no backtracking to 10/8.
    q.client = ClientBytes::Tls {
        sni: None,
        alpn: vec!["istio".into()],
    };
    assert!(evaluate(&cfg, &q).filter_chain.is_none());
    let q = query("10.9.9.9:80", "10.9.9.9:80");
    assert_eq!(chain_name(&evaluate(&cfg, &q)).as_deref(), Some("wide"));
}

#[test]
fn source_type_and_source_ports() {
    let chains = [
        chain("local", r#"{"source_type": "SAME_IP_OR_LOOPBACK"}"#, "l"),
        chain("any", "{}", "a"),
    ]
    .join(",");
    let cfg = dump(
        &listener(
            "l",
            "0.0.0.0",
            80,
            &format!(r#", "filter_chains": [{chains}]"#),
        ),
        "",
        "",
    );
    let mut q = query("10.0.0.5:80", "10.0.0.5:80");
    q.src = sa("127.0.0.1:5000");
    assert_eq!(chain_name(&evaluate(&cfg, &q)).as_deref(), Some("local"));
    q.src = sa("10.0.0.5:5000");
    assert_eq!(chain_name(&evaluate(&cfg, &q)).as_deref(), Some("local"));
    q.src = sa("10.0.0.7:5000");
    assert_eq!(chain_name(&evaluate(&cfg, &q)).as_deref(), Some("any"));
}

#[test]
fn http_inspector_is_a_noop_after_tls_and_filter_disabled_skips_filters() {
    let l = listener(
        "virtualInbound",
        "0.0.0.0",
        15006,
        r#", "listener_filters": [
            {"name": "envoy.filters.listener.original_dst"},
            {"name": "envoy.filters.listener.tls_inspector", "filter_disabled": {"destination_port_range": {"start": 3306, "end": 3307}}},
            {"name": "envoy.filters.listener.http_inspector"}],
          "filter_chains": [{"filters": []}]"#,
    );
    let cfg = dump(&l, "", "");
    let mut q = query("10.0.0.5:15006", "10.0.0.5:8080");
    q.client = ClientBytes::Tls {
        sni: Some("x".into()),
        alpn: vec!["istio".into()],
    };
    let t = evaluate(&cfg, &q);
    let st = t
        .socket
        .clone()
        .unwrap_or_else(|| panic!("no socket state"));
    assert_eq!(
        (
            st.transport_protocol.as_str(),
            st.application_protocols.clone()
        ),
        ("tls", vec!["istio".to_string()])
    );
    assert_eq!(st.local, sa("10.0.0.5:8080"));
    assert_eq!(
        t.outcome,
        Outcome::Closed {
            flag: None,
            details: "filter chain has no filters".into()
        }
    );
    // Port 3306: TLS inspection disabled, so the transport stays raw_buffer.
    q.dst = sa("10.0.0.5:3306");
    let t = evaluate(&cfg, &q);
    assert_eq!(
        t.socket.map(|s| s.transport_protocol),
        Some("raw_buffer".to_string())
    );
    assert!(t.listener_filters.iter().any(|s| s.status == "disabled"));
}

#[test]
fn filter_chain_matcher_tree_selects_by_name() {
    let named = |n: &str| {
        format!(
            r#"{{"action": {{"name": "{n}", "typed_config": {{"@type": "type.googleapis.com/google.protobuf.StringValue", "value": "{n}"}}}}}}"#
        )
    };
    let input = |t: &str| {
        format!(
            r#"{{"name": "x", "typed_config": {{"@type": "type.googleapis.com/envoy.extensions.matching.common_inputs.network.v3.{t}"}}}}"#
        )
    };
    let matcher = format!(
        r#"{{"matcher_tree": {{"input": {ip}, "custom_match": {{"name": "ip", "typed_config": {{"@type": "type.googleapis.com/xds.type.matcher.v3.IPMatcher",
            "range_matchers": [{{"ranges": [{{"address_prefix": "10.0.0.5", "prefix_len": 32}}],
              "on_match": {{"matcher": {{"matcher_tree": {{"input": {port}, "exact_match_map": {{"map": {{"8000": {p8000}, "9000": {ghost}}}}}}}}}}}}}]}}}}}},
          "on_no_match": {nomatch}}}"#,
        ip = input("DestinationIPInput"),
        port = input("DestinationPortInput"),
        p8000 = named("http-8000"),
        ghost = named("missing-chain"),
        nomatch = named("tcp-any"),
    );
    let chains = [chain("http-8000", "{}", "a"), chain("tcp-any", "{}", "b")].join(",");
    let l = listener(
        "main",
        "0.0.0.0",
        15008,
        &format!(
            r#", "listener_filters": [{{"name": "envoy.filters.listener.original_dst"}}], "filter_chain_matcher": {matcher}, "filter_chains": [{chains}]"#
        ),
    );
    let cfg = dump(&l, "", "");
    let t = evaluate(&cfg, &query("10.0.0.5:15008", "10.0.0.5:8000"));
    assert_eq!(
        t.filter_chain
            .as_ref()
            .map(|c| (c.via, c.chain.name.as_str())),
        Some(("filter_chain_matcher", "http-8000"))
    );
    // Unknown port under the matched IP: the nested matcher fails → outer on_no_match.
    let t = evaluate(&cfg, &query("10.0.0.5:15008", "10.0.0.5:7000"));
    assert_eq!(chain_name(&t).as_deref(), Some("tcp-any"));
    // A name no chain has: closed.
    let t = evaluate(&cfg, &query("10.0.0.5:15008", "10.0.0.5:9000"));
    assert!(matches!(t.outcome, Outcome::Closed { .. }));
}

#[test]
fn blackhole_is_uh_close_and_unknown_cluster_is_nc() {
    let cfg = dump(&virtual_outbound(), &passthrough_clusters(), "");
    let t = evaluate(&cfg, &query("10.0.0.5:15001", "10.0.0.5:15001"));
    assert_eq!(
        t.outcome,
        Outcome::Closed {
            flag: Some("UH".into()),
            details: "no_healthy_upstream".into()
        }
    );
    let cfg = dump(
        &virtual_outbound(),
        &cluster("other", r#", "type": "STATIC""#),
        "",
    );
    let t = evaluate(&cfg, &query("10.0.0.5:15001", "1.2.3.4:80"));
    assert_eq!(
        t.outcome,
        Outcome::Closed {
            flag: Some("NC".into()),
            details: "cluster_not_found".into()
        }
    );
}

#[test]
fn original_dst_cluster_bind_port_override_and_header() {
    let c = cluster(
        "InboundPassthroughCluster",
        r#", "type": "ORIGINAL_DST", "lb_policy": "CLUSTER_PROVIDED",
           "upstream_bind_config": {"source_address": {"address": "127.0.0.6", "port_value": 0},
             "extra_source_addresses": [{"address": {"address": "::6", "port_value": 0}}]},
           "original_dst_lb_config": {"use_http_header": true, "upstream_port_override": "8443"}"#,
    );
    let l = listener(
        "virtualInbound",
        "0.0.0.0",
        15006,
        &format!(
            r#", "listener_filters": [{{"name": "envoy.filters.listener.original_dst"}}], "filter_chains": [{}]"#,
            chain("pt", "{}", "InboundPassthroughCluster")
        ),
    );
    let cfg = dump(&l, &c, "");
    let t = evaluate(&cfg, &query("10.0.0.5:15006", "10.0.0.5:8080"));
    assert_eq!(
        t.outcome,
        Outcome::Forwarded {
            cluster: "InboundPassthroughCluster".into(),
            endpoint: "10.0.0.5:8443".into(),
            source_address: Some("127.0.0.6".parse().unwrap_or_else(|_| unreachable!()))
        }
    );
    // A 0.0.0.0 listener does not accept IPv6; the cluster binds ::6 for a v6 destination.
    assert_eq!(
        evaluate(&cfg, &query("[fd00::5]:15006", "[fd00::5]:80")).outcome,
        Outcome::NoListener
    );
    let v6 = UpstreamContext {
        restored_destination: Some(sa("[fd00::5]:80")),
        headers: &[],
    };
    let up = upstream::choose(&cfg, "InboundPassthroughCluster", &v6, &NameTable::new());
    assert!(
        matches!(up, Upstream::Endpoint { source_address: Some(ip), .. } if ip.to_string() == "::6")
    );
    // The header wins over the restored destination (HTTP only).
    let up = upstream::choose(
        &cfg,
        "InboundPassthroughCluster",
        &UpstreamContext {
            restored_destination: Some(sa("10.0.0.5:8080")),
            headers: &[("x-envoy-original-dst-host".into(), "10.7.7.7:80".into())],
        },
        &NameTable::new(),
    );
    assert!(
        matches!(up, Upstream::Endpoint { ref address, .. } if address.to_string() == "10.7.7.7:8443")
    );
}

#[test]
fn eds_priorities_health_and_dns_name_table() {
    let eds = r#"{"@type": "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump", "dynamic_endpoint_configs": [{"endpoint_config": {
        "@type": "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment", "cluster_name": "outbound|80||web",
        "endpoints": [
          {"priority": 1, "lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "10.0.1.1", "port_value": 80}}}, "health_status": "HEALTHY"}]},
          {"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "10.0.0.1", "port_value": 80}}}, "health_status": "UNHEALTHY"},
                            {"endpoint": {"address": {"socket_address": {"address": "10.0.0.2", "port_value": 80}}}, "health_status": "HEALTHY"}]}]}}]}"#;
    let clusters = r#"{"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump", "dynamic_active_clusters": [
        {"cluster": {"name": "outbound|80||web", "type": "EDS", "eds_cluster_config": {"service_name": "outbound|80||web"}}},
        {"cluster": {"name": "dns", "type": "STRICT_DNS", "load_assignment": {"endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "Example.com", "port_value": "443"}}}}]}]}}}]}"#;
    let text = format!(r#"{{"configs": [{clusters}, {eds}]}}"#);
    let cfg = parse_dump(text.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let up = upstream::choose(
        &cfg,
        "outbound|80||web",
        &UpstreamContext::default(),
        &NameTable::new(),
    );
    assert!(
        matches!(up, Upstream::Endpoint { ref address, ref via, .. } if address.to_string() == "10.0.0.2:80" && via == "EDS priority 0")
    );
    let up = upstream::choose(&cfg, "dns", &UpstreamContext::default(), &NameTable::new());
    assert_eq!(
        up,
        Upstream::Unresolved {
            host: "Example.com".into()
        }
    );
    let mut dns = NameTable::new();
    dns.insert(
        "example.com".into(),
        vec!["93.184.216.34".parse().unwrap_or_else(|_| unreachable!())],
    );
    let up = upstream::choose(&cfg, "dns", &UpstreamContext::default(), &dns);
    assert!(
        matches!(up, Upstream::Endpoint { ref address, .. } if address.to_string() == "93.184.216.34:443")
    );
}

#[test]
fn weighted_tcp_clusters_pick_by_random_value() {
    let w = r#"{"name": "envoy.filters.network.tcp_proxy", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
        "stat_prefix": "w", "weighted_clusters": {"clusters": [{"name": "a", "weight": 80}, {"name": "b", "weight": 20}]}}}"#;
    let l = listener(
        "l",
        "0.0.0.0",
        80,
        &format!(r#", "filter_chains": [{{"filters": [{w}]}}]"#),
    );
    let cfg = dump(
        &l,
        &[
            static_cluster("a", "10.0.0.1", 80),
            static_cluster("b", "10.0.0.2", 80),
        ]
        .join(","),
        "",
    );
    let mut q = query("10.0.0.5:80", "10.0.0.5:80");
    assert_eq!(evaluate(&cfg, &q).outcome, Outcome::Weighted);
    q.random_value = Some(79);
    assert!(
        matches!(evaluate(&cfg, &q).outcome, Outcome::Forwarded { ref cluster, .. } if cluster == "a")
    );
    q.random_value = Some(180);
    assert!(
        matches!(evaluate(&cfg, &q).outcome, Outcome::Forwarded { ref cluster, .. } if cluster == "b")
    );
}

fn http_listener(route: &str) -> String {
    let hcm = format!(
        r#"{{"name": "envoy.filters.network.http_connection_manager", "typed_config": {{"@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
          "stat_prefix": "x", "strip_matching_host_port": true, "rds": {{"route_config_name": "{route}"}}}}}}"#
    );
    listener(
        "0.0.0.0_80",
        "0.0.0.0",
        80,
        &format!(r#", "filter_chains": [{{"filters": [{hcm}]}}]"#),
    )
}

#[test]
fn http_routes_block_all_502_nc_and_host_port_stripping() {
    let routes = r#"{"route_config": {"@type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration", "name": "80",
        "virtual_hosts": [
          {"name": "web.svc:80", "domains": ["web.svc"], "routes": [
             {"match": {"prefix": "/gone"}, "route": {"cluster": "outbound|80||missing"}},
             {"match": {"prefix": "/"}, "route": {"cluster": "web"}}]},
          {"name": "block_all", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "direct_response": {"status": 502}}]}]}}"#;
    let cfg = dump(
        &http_listener("80"),
        &static_cluster("web", "10.3.3.3", 8080),
        routes,
    );
    let mut q = query("10.0.0.5:80", "10.96.0.20:80");
    q.client = ClientBytes::Http1;
    q.request = Some(HttpRequest {
        host: Some("web.svc:80".into()),
        path: "/x".into(),
        method: "GET".into(),
        headers: vec![],
    });
    let t = evaluate(&cfg, &q);
    assert_eq!(
        t.http.as_ref().map(|h| h.authority.as_str()),
        Some("web.svc")
    );
    assert!(
        matches!(t.outcome, Outcome::Forwarded { ref endpoint, .. } if endpoint == "10.3.3.3:8080")
    );
    q.request = Some(HttpRequest {
        host: Some("web.svc".into()),
        path: "/gone".into(),
        method: "GET".into(),
        headers: vec![],
    });
    assert!(
        matches!(evaluate(&cfg, &q).outcome, Outcome::HttpResponse { status: 503, ref flag, .. } if flag.as_deref() == Some("NC"))
    );
    q.request = Some(HttpRequest {
        host: Some("elsewhere.com".into()),
        path: "/".into(),
        method: "GET".into(),
        headers: vec![],
    });
    assert!(matches!(
        evaluate(&cfg, &q).outcome,
        Outcome::HttpResponse {
            status: 502,
            flag: None,
            ..
        }
    ));
    // An RDS name the routes section lacks: 404 NR.
    let cfg = dump(&http_listener("81"), "", routes);
    assert!(
        matches!(evaluate(&cfg, &q).outcome, Outcome::HttpResponse { status: 404, ref flag, .. } if flag.as_deref() == Some("NR"))
    );
}
