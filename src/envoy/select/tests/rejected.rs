//! Listeners and clusters Envoy refuses: a connection they would take ends `Rejected`.

use super::super::*;
use super::*;
use crate::envoy::validate::Instead;

fn tcp_listener(name: &str, port: u16, chains: &[String]) -> String {
    listener(name, "0.0.0.0", port, &format!(r#", "filter_chains": [{}]"#, chains.join(",")))
}

/// filter_chain_manager_impl.cc `addFilterChains` refuses a listener whose two chains have the
/// same `filter_chain_match`; Envoy never binds it, so nothing of it serves the connection.
#[test]
fn listener_with_identical_chain_matches_is_rejected() {
    let m = r#"{"transport_protocol": "raw_buffer"}"#;
    let l = tcp_listener("0.0.0.0_3306", 3306, &[chain("a", m, "db"), chain("b", m, "db")]);
    let cfg = dump(&l, &static_cluster("db", "10.1.1.1", 3306), "");
    let t = evaluate(&cfg, &query("0.0.0.0:3306", "10.96.0.7:3306"));
    let Outcome::Rejected { object, resource, reason, instead } = &t.outcome else {
        panic!("{:?}", t.outcome);
    };
    assert_eq!((*object, resource.name.as_str()), (ObjectKind::Listener, "0.0.0.0_3306"));
    assert_eq!(
        reason,
        "error adding listener '0.0.0.0:3306': filter chain 'b' has the same matching rules defined as 'a'"
    );
    assert_eq!(*instead, Instead::PreviousIfAny);
    assert!(t.accepted_by.is_none());
}

/// A rejected update (`error_state`) beside an `active_state`: Envoy serves the active one
/// (listener_manager_impl.cc keeps the old listener when `addOrUpdateListener` throws); with no
/// active one there is no listener at all.
#[test]
fn rejected_update_serves_the_last_good_version_or_nothing() {
    let good = format!(
        r#""name": "l", "address": {{"socket_address": {{"address": "0.0.0.0", "port_value": 80}}}}, "filter_chains": [{}]"#,
        chain("c", "{}", "web")
    );
    let error = r#""error_state": {"failed_configuration": {"name": "l", "address": {"socket_address": {"address": "0.0.0.0", "port_value": 80}}},
        "details": "error adding listener '0.0.0.0:80': multiple filter chains with the same matching rules are defined"}"#;
    let both = format!(r#"{{"name": "l", "active_state": {{"listener": {{{good}}}}}, {error}}}"#);
    let cfg = dump(&both, &static_cluster("web", "10.1.1.1", 80), "");
    let t = evaluate(&cfg, &query("0.0.0.0:80", "10.96.0.8:80"));
    assert!(matches!(t.outcome, Outcome::Forwarded { .. }), "{:?}", t.outcome);
    let only_error = format!(r#"{{"name": "l", {error}}}"#);
    let cfg = dump(&only_error, &static_cluster("web", "10.1.1.1", 80), "");
    let t = evaluate(&cfg, &query("0.0.0.0:80", "10.96.0.8:80"));
    let Outcome::Rejected { reason, instead, .. } = &t.outcome else { panic!("{:?}", t.outcome) };
    assert!(reason.contains("multiple filter chains"), "{reason}");
    assert_eq!(*instead, Instead::Nothing);
}

/// api/envoy/config/core/v3/address.proto: `BindConfig.source_address` is a SocketAddress;
/// `{"socket_address": {...}}` inside it is a field SocketAddress does not have, so Envoy
/// refuses the cluster (protobuf/utility.cc `MessageUtil::loadFromJson`) instead of binding
/// 127.0.0.6.
#[test]
fn cluster_with_an_unknown_field_is_rejected() {
    let l = tcp_listener("0.0.0.0_9080", 9080, &[chain("c", "{}", "inbound|9080||")]);
    let body = r#", "type": "ORIGINAL_DST", "lb_policy": "CLUSTER_PROVIDED",
        "upstream_bind_config": {"source_address": {"socket_address": {"address": "127.0.0.6", "port_value": 0}}}"#;
    let cfg = dump(&l, &cluster("inbound|9080||", body), "");
    let t = evaluate(&cfg, &query("0.0.0.0:9080", "10.1.1.5:9080"));
    let Outcome::Rejected { object, resource, reason, .. } = &t.outcome else { panic!("{:?}", t.outcome) };
    assert_eq!(*object, ObjectKind::Cluster);
    assert!(
        resource.path.ends_with(".cluster.upstream_bind_config.source_address.socket_address"),
        "{}",
        resource.path
    );
    assert!(reason.contains("socket_address: Cannot find field."), "{reason}");
}

/// A hand-off whose only target is a rejected update: Envoy never added the listener
/// (listener_manager_impl.cc `addOrUpdateListener` throws before it is added), so
/// `getBalancedHandlerByAddress` (connection_handler_impl.cc) finds none and the connection
/// stays on virtualOutbound; the path that needed it meets the rejection (istio/istio#16935,
/// a `bind_to_port: false` outbound listener with two identical chain matches).
#[test]
fn hand_off_to_a_rejected_update_meets_the_rejection() {
    let error = r#"{"name": "0.0.0.0_9100", "error_state": {"failed_configuration": {"name": "0.0.0.0_9100",
        "address": {"socket_address": {"address": "0.0.0.0", "port_value": 9100}}, "bind_to_port": false},
        "details": "error adding listener '0.0.0.0:9100': multiple filter chains with the same matching rules are defined"}}"#;
    let listeners = format!("{},{error}", virtual_outbound());
    let cfg = dump(&listeners, &passthrough_clusters(), "");
    let t = evaluate(&cfg, &query("0.0.0.0:15001", "10.0.0.12:9100"));
    let Outcome::Rejected { object, resource, instead, .. } = &t.outcome else {
        panic!("{:?}", t.outcome);
    };
    assert_eq!((*object, resource.name.as_str()), (ObjectKind::Listener, "0.0.0.0_9100"));
    assert_eq!(*instead, Instead::Nothing);
    let h = t.handoff.as_ref().expect("hand-off");
    assert_eq!((h.matched, h.target.name.as_str()), (None, "virtualOutbound"));
}
