//! A client that sends nothing first, through listeners whose filters wait for client bytes.
//! envoy source/common/listener_manager/active_tcp_socket.cc: `startFilterChain` arms the
//! listener filter timer only when `listener_filters_timeout` is non-zero; `onTimeout` goes on
//! to `newConnection()` with `continue_on_listener_filters_timeout`, else closes the socket.
//! api/envoy/config/listener/v3/listener.proto: the time-out defaults to 15s.

use super::super::*;
use super::*;

const TLS_INSPECTOR: &str = r#"{"name": "envoy.filters.listener.tls_inspector", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"}}"#;

fn mysql(extra: &str) -> EnvoyConfig {
    let l = listener(
        "0.0.0.0_3306",
        "0.0.0.0",
        3306,
        &format!(
            r#", "listener_filters": [{TLS_INSPECTOR}], "filter_chains": [{}]{extra}"#,
            chain("tcp", "{}", "db")
        ),
    );
    dump(&l, &static_cluster("db", "10.1.1.1", 3306), "")
}

fn server_first() -> Query<'static> {
    Query { client: ClientBytes::ServerFirst, ..query("0.0.0.0:3306", "10.96.0.7:3306") }
}

/// Istio's sidecar listeners: `listener_filters_timeout: 0s` (meshConfig.protocolDetectionTimeout
/// default) and `continue_on_listener_filters_timeout: true`: no timer, the connection hangs.
#[test]
fn no_timeout_stalls_in_the_waiting_filter() {
    let cfg = mysql(r#", "listener_filters_timeout": "0s", "continue_on_listener_filters_timeout": true"#);
    let t = evaluate(&cfg, &server_first());
    let Outcome::Stalled { listener, filter } = &t.outcome else { panic!("{:?}", t.outcome) };
    assert_eq!(
        (listener.name.as_str(), filter.as_str()),
        ("0.0.0.0_3306", "envoy.filters.listener.tls_inspector")
    );
    assert!(t.filter_chain.is_none());
    // The same client sending first is served.
    let t = evaluate(&cfg, &query("0.0.0.0:3306", "10.96.0.7:3306"));
    assert!(matches!(t.outcome, Outcome::Forwarded { .. }), "{:?}", t.outcome);
}

#[test]
fn timeout_and_continue_go_on_after_the_delay() {
    let cfg = mysql(r#", "listener_filters_timeout": "5s", "continue_on_listener_filters_timeout": true"#);
    let t = evaluate(&cfg, &server_first());
    assert!(matches!(t.outcome, Outcome::Forwarded { .. }), "{:?}", t.outcome);
    let ft = t.listener_filters_timeout.as_ref().map(|f| (f.filter.as_str(), f.timeout.as_str()));
    assert_eq!(ft, Some(("envoy.filters.listener.tls_inspector", "5s")));
    // Nothing was detected: the chain is matched as raw_buffer.
    assert_eq!(t.socket.map(|s| s.transport_protocol), Some("raw_buffer".to_string()));
}

/// No `listener_filters_timeout`: Envoy's 15s default; without continue the socket is closed.
#[test]
fn timeout_without_continue_closes() {
    let t = evaluate(&mysql(""), &server_first());
    let Outcome::Closed { flag: None, details } = &t.outcome else { panic!("{:?}", t.outcome) };
    assert!(details.contains("15s"), "{details}");
}

/// A plain TCP listener (no inspector) waits for nothing: the server-first client is served.
#[test]
fn plain_tcp_listener_serves_a_server_first_client() {
    let l = listener(
        "0.0.0.0_3306",
        "0.0.0.0",
        3306,
        &format!(r#", "filter_chains": [{}]"#, chain("tcp", "{}", "db")),
    );
    let cfg = dump(&l, &static_cluster("db", "10.1.1.1", 3306), "");
    let t = evaluate(&cfg, &server_first());
    assert!(matches!(t.outcome, Outcome::Forwarded { .. }), "{:?}", t.outcome);
    // An inspector disabled for the port (filter_disabled, active_stream_listener_base.cc) too.
    let disabled = r#"{"name": "envoy.filters.listener.tls_inspector", "filter_disabled": {"destination_port_range": {"start": 3306, "end": 3307}}}"#;
    let l = listener(
        "0.0.0.0_3306",
        "0.0.0.0",
        3306,
        &format!(
            r#", "listener_filters": [{disabled}], "listener_filters_timeout": "0s", "filter_chains": [{}]"#,
            chain("tcp", "{}", "db")
        ),
    );
    let cfg = dump(&l, &static_cluster("db", "10.1.1.1", 3306), "");
    let t = evaluate(&cfg, &server_first());
    assert!(matches!(t.outcome, Outcome::Forwarded { .. }), "{:?}", t.outcome);
}
