//! Each expectation follows the Envoy source named in the test.

use super::*;
use crate::envoy::parse_dump;

fn listeners(ls: &[String]) -> EnvoyConfig {
    let text = format!(
        r#"{{"configs": [{{"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump", "dynamic_listeners": [{}]}}]}}"#,
        ls.join(",")
    );
    parse_dump(text.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn listener(name: &str, port: u16, chains: &[&str]) -> String {
    let chains: Vec<String> = chains
        .iter()
        .enumerate()
        .map(|(i, m)| format!(r#"{{"name": "c{i}", "filter_chain_match": {m}, "filters": []}}"#))
        .collect();
    format!(
        r#"{{"name": "{name}", "active_state": {{"listener": {{"name": "{name}",
  "address": {{"socket_address": {{"address": "0.0.0.0", "port_value": {port}}}}},
  "filter_chains": [{}]}}}}}}"#,
        chains.join(",")
    )
}

fn only(cfg: &EnvoyConfig) -> &Finding {
    assert_eq!(cfg.findings.len(), 1, "{:#?}", cfg.findings);
    &cfg.findings[0]
}

/// filter_chain_manager_impl.cc `addFilterChains`: a FilterChainMatch equal to an earlier
/// chain's throws "filter chain '<name>' has the same matching rules defined as '<first>'".
#[test]
fn identical_chain_matches_reject_the_listener() {
    let m = r#"{"destination_port": 9080, "transport_protocol": "raw_buffer"}"#;
    let cfg = listeners(&[listener("l", 80, &[m, m])]);
    let f = only(&cfg);
    assert_eq!(f.problem, Problem::IdenticalChainMatch);
    assert_eq!(
        f.reason,
        "error adding listener '0.0.0.0:80': filter chain 'c1' has the same matching rules defined as 'c0'"
    );
    assert!(f.path.ends_with("active_state.listener.filter_chains[1].filter_chain_match"), "{}", f.path);
    assert_eq!(f.instead, Instead::PreviousIfAny);
    assert_eq!(rejection(&cfg, 0).map(|f| f.problem), Some(Problem::IdenticalChainMatch));
}

/// filter_chain_manager_impl.cc `addFilterChainForSourcePorts`: a leaf of the match tree that
/// another chain already holds throws "multiple filter chains with overlapping matching
/// rules are defined" (server names are keyed lower-case, one key per name).
#[test]
fn overlapping_server_names_reject_the_listener() {
    let a = r#"{"server_names": ["a.example.com", "b.example.com"]}"#;
    let b = r#"{"server_names": ["B.example.com"]}"#;
    let cfg = listeners(&[listener("l", 443, &[a, b])]);
    let f = only(&cfg);
    assert_eq!(f.problem, Problem::OverlappingChainMatch);
    assert!(
        f.reason.ends_with("multiple filter chains with overlapping matching rules are defined"),
        "{}",
        f.reason
    );
    // Disjoint names, and a chain without names beside them, are fine (its key is "").
    let c = r#"{"server_names": ["c.example.com"]}"#;
    let cfg = listeners(&[listener("l", 443, &[a, c, "{}"])]);
    assert!(cfg.findings.is_empty(), "{:#?}", cfg.findings);
}

/// Same tree, destination IPs: `addFilterChainForDestinationIPs` keys each CIDR by its text,
/// so 10.0.0.0/8 listed twice overlaps; /8 and /16 are different keys.
#[test]
fn overlapping_prefix_ranges_reject_the_listener() {
    let a = r#"{"prefix_ranges": [{"address_prefix": "10.0.0.0", "prefix_len": 8}, {"address_prefix": "192.168.0.0", "prefix_len": 16}]}"#;
    let b = r#"{"prefix_ranges": [{"address_prefix": "10.0.0.0", "prefix_len": 8}]}"#;
    let cfg = listeners(&[listener("l", 80, &[a, b])]);
    assert_eq!(only(&cfg).problem, Problem::OverlappingChainMatch);
    let c = r#"{"prefix_ranges": [{"address_prefix": "10.1.0.0", "prefix_len": 16}]}"#;
    assert!(listeners(&[listener("l", 80, &[b, c])]).findings.is_empty());
}

/// listener_manager_impl.cc `addOrUpdateListenerInternal`: "error adding listener: '<name>'
/// has duplicate address '<addr>' as existing listener".
#[test]
fn two_listeners_on_one_address_reject_the_second() {
    let cfg = listeners(&[listener("first", 80, &["{}"]), listener("second", 80, &["{}"])]);
    let f = only(&cfg);
    assert_eq!(f.problem, Problem::DuplicateAddress);
    assert_eq!(f.name, "second");
    assert_eq!(
        f.reason,
        "error adding listener: 'second' has duplicate address '0.0.0.0:80' as existing listener"
    );
    assert_eq!(f.listener, Some(1));
}

/// config/utility.h `getAndCheckFactory`: an input type with no registered factory
/// ("Didn't find a registered implementation ...") rejects the listener; the network inputs
/// meshpath models are all registered (source/extensions/matching/network/common/inputs.cc).
#[test]
fn matcher_naming_an_unknown_input_rejects_the_listener() {
    let tree = |input: &str| {
        format!(
            r#"{{"name": "l", "active_state": {{"listener": {{"name": "l",
  "address": {{"socket_address": {{"address": "0.0.0.0", "port_value": 80}}}},
  "filter_chains": [{{"name": "a", "filters": []}}],
  "filter_chain_matcher": {{"matcher_tree": {{"input": {{"name": "i", "typed_config": {{"@type": "{input}"}}}},
    "exact_match_map": {{"map": {{"80": {{"action": {{"name": "a", "typed_config": {{"@type": "type.googleapis.com/google.protobuf.StringValue", "value": "a"}}}}}}}}}}}}}}}}}}}}"#
        )
    };
    let bad = "type.googleapis.com/envoy.type.matcher.v3.HttpRequestHeaderMatchInput";
    let cfg = listeners(&[tree(bad)]);
    let f = only(&cfg);
    assert_eq!(f.problem, Problem::UnknownMatcherInput);
    assert!(f.reason.contains(bad), "{}", f.reason);
    let good = "type.googleapis.com/envoy.extensions.matching.common_inputs.network.v3.DestinationPortInput";
    assert!(listeners(&[tree(good)]).findings.is_empty());
}

/// admin/v3/config_dump_shared.proto `UpdateFailureState`: `details` is Envoy's message; the
/// `active_state` beside it is the version Envoy still serves.
#[test]
fn error_state_is_a_rejected_update_with_the_last_good_version() {
    let text = r#"{"dynamic_listeners": [{"name": "l",
      "active_state": {"listener": {"name": "l", "address": {"socket_address": {"address": "0.0.0.0", "port_value": 80}}}},
      "error_state": {"failed_configuration": {"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", "name": "l",
        "address": {"socket_address": {"address": "0.0.0.0", "port_value": 80}}},
        "details": "error adding listener '0.0.0.0:80': multiple filter chains with the same matching rules are defined"}}]}"#;
    let cfg = parse_dump(text.as_bytes()).unwrap();
    let f = only(&cfg);
    assert_eq!(f.problem, Problem::UpdateRejected);
    assert!(f.reason.contains("multiple filter chains"), "{}", f.reason);
    assert_eq!(f.instead, Instead::LastGood { path: "dynamic_listeners[0].active_state.listener".into() });
    assert_eq!(f.listener, Some(1));
}

/// Clusters and route configurations carry the same `error_state` (admin/v3/clusters.proto
/// `DynamicCluster`, routes.proto `DynamicRouteConfig`).
#[test]
fn cluster_and_route_error_states_are_read() {
    let text = r#"{"configs": [
      {"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump", "dynamic_active_clusters": [
        {"cluster": {"name": "c", "type": "STATIC"},
         "error_state": {"failed_configuration": {"name": "c"}, "details": "Proto constraint validation failed"}}]},
      {"@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump", "dynamic_route_configs": [
        {"error_state": {"failed_configuration": {"name": "80"}, "details": "duplicate virtual host"}}]}
    ]}"#;
    let cfg = parse_dump(text.as_bytes()).unwrap();
    assert_eq!(cfg.findings.len(), 2, "{:#?}", cfg.findings);
    let (c, r) = (&cfg.findings[0], &cfg.findings[1]);
    assert_eq!((c.object, c.name.as_str()), (ObjectKind::Cluster, "c"));
    assert_eq!(c.instead, Instead::LastGood { path: "configs[0].dynamic_active_clusters[0].cluster".into() });
    assert_eq!(
        (r.object, r.name.as_str(), &r.instead),
        (ObjectKind::RouteConfiguration, "80", &Instead::Nothing)
    );
    assert!(cfg.route_configs.is_empty());
}

/// An RDS name with no route configuration: Envoy's RDS subscription keeps the listener
/// warming until the route arrives or `initial_fetch_timeout` passes
/// (source/common/router/rds_impl.cc), then routes with an empty table; not a rejection.
#[test]
fn rds_name_not_delivered_is_a_warning() {
    let hcm = r#"{"name": "envoy.filters.network.http_connection_manager", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager", "rds": {"route_config_name": "9080"}}}"#;
    let text = format!(
        r#"{{"configs": [
      {{"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump", "dynamic_listeners": [{{"name": "l", "active_state": {{"listener": {{"name": "l",
        "address": {{"socket_address": {{"address": "0.0.0.0", "port_value": 9080}}}}, "filter_chains": [{{"filters": [{hcm}]}}]}}}}}}]}},
      {{"@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump"}}]}}"#
    );
    let cfg = parse_dump(text.as_bytes()).unwrap();
    let f = only(&cfg);
    assert_eq!(
        (f.problem, f.severity, f.name.as_str()),
        (Problem::RouteNotDelivered, Severity::Warning, "9080")
    );
    assert!(rejection(&cfg, 0).is_none());
}
