//! Network filters, clusters, endpoints and HTTP outcomes.

use super::super::*;
use super::*;

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

#[test]
fn v1_tcp_proxy_route_table_first_match_and_additional_addresses() {
    // Envoy v1 filter JSON as in 2018 dumps: routes matched in order on destination IP/ports.
    let v1 = r#"{"name": "envoy.tcp_proxy", "config": {"deprecated_v1": true, "value": {"stat_prefix": "x",
        "route_config": {"routes": [
          {"destination_ip_list": ["10.9.0.0/16"], "destination_ports": "1000-2000,3306", "cluster": "db"},
          {"cluster": "rest"}]}}}}"#;
    let l = listener(
        "v1",
        "10.0.0.5",
        3306,
        &format!(
            r#", "additional_addresses": [{{"address": {{"socket_address": {{"address": "10.0.0.6", "port_value": 3306}}}}}}],
               "filter_chains": [{{"filters": [{v1}]}}]"#
        ),
    );
    let cfg = dump(
        &l,
        &[
            static_cluster("db", "10.9.1.1", 3306),
            static_cluster("rest", "10.8.1.1", 3306),
        ]
        .join(","),
        "",
    );
    let mut q = query("10.0.0.5:3306", "10.0.0.5:3306");
    assert!(
        matches!(evaluate(&cfg, &q).outcome, Outcome::Forwarded { ref cluster, .. } if cluster == "rest")
    );
    // Accepted on the additional address; local IP 10.0.0.6 still is not in 10.9/16.
    q.listener_addr = sa("10.0.0.6:3306");
    assert!(evaluate(&cfg, &q).accepted_by.is_some());
    assert!(super::super::v1_route_matches(
        &crate::envoy::model::TcpV1Route {
            cluster: "db".into(),
            destination_ip_list: vec!["10.9.0.0/16".parse().unwrap_or_else(|_| unreachable!())],
            destination_ports: Some("1000-2000,3306".into()),
            source_ip_list: vec![],
            source_ports: None,
        },
        sa("10.9.4.4:1500"),
        sa("1.1.1.1:1"),
    ));
}
