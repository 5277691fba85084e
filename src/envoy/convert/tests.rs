//! Dump shapes and spellings (docs/envoy.md "Input shapes").

use crate::envoy::model::{ListenerAddress, NetworkFilterKind, ResourceState, RouteSource};
use crate::envoy::parse_dump;

fn parse(text: &str) -> crate::envoy::model::EnvoyConfig {
    parse_dump(text.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
}

const SNAKE: &str = r#"{"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
  "dynamic_listeners": [{"name": "l", "active_state": {"listener": {"@type": "type.googleapis.com/envoy.config.listener.v3.Listener",
    "name": "l", "address": {"socket_address": {"address": "10.0.0.1", "port_value": "8080"}},
    "bind_to_port": false, "use_original_dst": true,
    "filter_chains": [{"filter_chain_match": {"destination_port": 8080, "application_protocols": ["h2c"]},
      "filters": [{"name": "envoy.filters.network.tcp_proxy", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", "cluster": "c"}}],
      "metadata": {"filter_metadata": {"istio": {"config": "/apis/networking.istio.io/v1alpha3/namespaces/default/service-entry/se"}}}}]}}}]}]}"#;

const CAMEL: &str = r#"{"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
  "dynamicListeners": [{"name": "l", "activeState": {"listener": {"@type": "type.googleapis.com/envoy.config.listener.v3.Listener",
    "name": "l", "address": {"socketAddress": {"address": "10.0.0.1", "portValue": 8080}},
    "bindToPort": false, "useOriginalDst": true,
    "filterChains": [{"filterChainMatch": {"destinationPort": 8080, "applicationProtocols": ["h2c"]},
      "filters": [{"name": "envoy.filters.network.tcp_proxy", "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", "cluster": "c"}}],
      "metadata": {"filterMetadata": {"istio": {"config": "/apis/networking.istio.io/v1alpha3/namespaces/default/service-entry/se"}}}}]}}}]}]}"#;

#[test]
fn snake_and_camel_case_give_the_same_model() {
    let (a, b) = (parse(SNAKE), parse(CAMEL));
    for cfg in [&a, &b] {
        let l = &cfg.listeners[0];
        assert_eq!(
            l.address,
            ListenerAddress::Socket("10.0.0.1:8080".parse().unwrap_or_else(|_| unreachable!()))
        );
        assert!(!l.bind_to_port && l.use_original_dst);
        let c = &l.filter_chains[0];
        assert_eq!(c.filter_chain_match.destination_port, Some(8080));
        assert_eq!(c.origin.path, "configs[0].dynamic_listeners[0].active_state.listener.filter_chains[0]");
        assert_eq!(
            c.origin.istio_config.as_deref(),
            Some("/apis/networking.istio.io/v1alpha3/namespaces/default/service-entry/se")
        );
        assert!(
            matches!(&c.filters[0].kind, NetworkFilterKind::TcpProxy(t) if t.cluster.as_deref() == Some("c"))
        );
    }
    assert_eq!(a.listeners[0].origin.line, Some(3));
}

#[test]
fn v2alpha_inline_listener_deprecated_v1_and_untyped_config() {
    let text = r#"{"configs": [{"@type": "type.googleapis.com/envoy.admin.v2alpha.ListenersConfigDump",
      "dynamic_active_listeners": [{"listener": {"name": "10.0.0.2_80", "address": {"socket_address": {"address": "10.0.0.2", "port_value": 80}},
        "deprecated_v1": {"bind_to_port": false},
        "filter_chains": [{"filters": [{"name": "envoy.http_connection_manager", "config": {"rds": {"route_config_name": "80"}, "http_filters": {"name": "envoy.router"}}}]}]}}],
      "dynamic_warming_listeners": [{"listener": {"name": "w", "address": {"socket_address": {"address": "0.0.0.0", "port_value": 81}}}}]}]}"#;
    let cfg = parse(text);
    let l = &cfg.listeners[0];
    assert!(!l.bind_to_port);
    assert!(
        matches!(&l.filter_chains[0].filters[0].kind, NetworkFilterKind::HttpConnectionManager(h) if matches!(&h.route_source, RouteSource::Rds(n) if n == "80"))
    );
    assert_eq!(cfg.listeners[1].state, ResourceState::Warming);
}

#[test]
fn typed_struct_type_not_first_trailing_comma_and_yaml() {
    let ts = r#"[{"name": "l", "address": {"socket_address": {"address": "0.0.0.0", "port_value": 1}},
      "filter_chains": [{"filters": [
        {"name": "a", "typed_config": {"@type": "type.googleapis.com/udpa.type.v1.TypedStruct",
           "type_url": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", "value": {"cluster": "ts"}}},
        {"name": "b", "typed_config": {"cluster": "late", "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"}},
      ]}],
    }]"#;
    let cfg = parse(ts);
    let clusters: Vec<Option<String>> = cfg.listeners[0].filter_chains[0]
        .filters
        .iter()
        .map(|f| match &f.kind {
            NetworkFilterKind::TcpProxy(t) => t.cluster.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(clusters, vec![Some("ts".to_string()), Some("late".to_string())]);
    let yaml = "configs:\n- '@type': type.googleapis.com/envoy.admin.v3.ClustersConfigDump\n  static_clusters:\n  - cluster:\n      name: x\n      type: STRICT_DNS\n";
    let cfg = parse(yaml);
    assert_eq!(cfg.clusters[0].name, "x");
}

#[test]
fn malformed_needed_field_is_a_note_with_path_and_line() {
    let text = "[{\"name\": \"l\",\n \"address\": {\"socket_address\": {\"address\": \"10.0.0.1\",\n \"port_value\": \"eighty\"}}}]";
    let cfg = parse(text);
    assert_eq!(cfg.listeners[0].address, ListenerAddress::None);
    let n = &cfg.notes[0];
    assert_eq!(n.path, "[0].address.socket_address.port_value");
    assert_eq!(n.line, Some(3));
    assert!(n.message.contains("eighty"), "{}", n.message);
    // A syntax error is an error with line and column.
    let e = parse_dump(b"{\"configs\": [\n  {\"@type\": 1,}\n").err();
    assert!(matches!(e.and_then(|e| e.position()), Some((2, _))));
}

#[test]
fn error_state_listener_never_serves() {
    let text = r#"{"dynamic_listeners": [{"name": "bad", "error_state": {"failed_configuration": {"@type": "x", "name": "bad",
        "address": {"socket_address": {"address": "0.0.0.0", "port_value": 1}}}, "details": "duplicate"}}]}"#;
    let cfg = parse(text);
    assert_eq!(cfg.listeners[0].state, ResourceState::Error);
    assert!(!cfg.listeners[0].state.serves());
    assert!(cfg.findings.iter().any(|f| f.reason == "duplicate" && f.listener == Some(0)));
}
