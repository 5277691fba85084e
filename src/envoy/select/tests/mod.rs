//! Matching rules, each against a small hand-written dump (each test cites the Envoy source it follows).

mod chains;
mod dual_stack;
mod rejected;
mod server_first;
mod transport_sockets;
mod upstreams;

use std::net::SocketAddr;

use super::*;
use crate::envoy::parse_dump;

pub(super) fn dump(listeners: &str, clusters: &str, routes: &str) -> EnvoyConfig {
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

pub(super) fn listener(name: &str, addr: &str, port: u16, extra: &str) -> String {
    format!(
        r#"{{"name": "{name}", "active_state": {{"listener": {{"@type": "type.googleapis.com/envoy.config.listener.v3.Listener",
  "name": "{name}", "address": {{"socket_address": {{"address": "{addr}", "port_value": {port}}}}} {extra}}}}}}}"#
    )
}

pub(super) fn tcp(cluster: &str) -> String {
    format!(
        r#"{{"name": "envoy.filters.network.tcp_proxy", "typed_config": {{"@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", "stat_prefix": "{cluster}", "cluster": "{cluster}"}}}}"#
    )
}

pub(super) fn chain(name: &str, m: &str, cluster: &str) -> String {
    format!(r#"{{"name": "{name}", "filter_chain_match": {m}, "filters": [{}]}}"#, tcp(cluster))
}

pub(super) fn cluster(name: &str, body: &str) -> String {
    format!(
        r#"{{"cluster": {{"@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster", "name": "{name}" {body}}}}}"#
    )
}

pub(super) fn static_cluster(name: &str, ip: &str, port: u16) -> String {
    cluster(
        name,
        &format!(
            r#", "type": "STATIC", "load_assignment": {{"cluster_name": "{name}", "endpoints": [{{"lb_endpoints": [{{"endpoint": {{"address": {{"socket_address": {{"address": "{ip}", "port_value": {port}}}}}}}}}]}}]}}"#
        ),
    )
}

pub(super) fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

pub(super) fn query(listener: &str, dst: &str) -> Query<'static> {
    Query {
        listener_addr: sa(listener),
        listener_name: None,
        dst: sa(dst),
        src: sa("10.0.0.9:40000"),
        client: ClientBytes::Opaque,
        request: None,
        dns: Default::default(),
        random_value: None,
    }
}

pub(super) fn chain_name(t: &Trace) -> Option<String> {
    t.filter_chain.as_ref().map(|c| c.chain.name.clone())
}

/// Istio's virtualOutbound: use_original_dst, blackhole on 15001, catch-all passthrough.
pub(super) fn virtual_outbound() -> String {
    listener(
        "virtualOutbound",
        "0.0.0.0",
        15001,
        &format!(
            r#", "use_original_dst": true, "filter_chains": [{}, {}]"#,
            chain("virtualOutbound-blackhole", r#"{"destination_port": 15001}"#, "BlackHoleCluster"),
            chain("virtualOutbound-catchall-tcp", "{}", "PassthroughCluster")
        ),
    )
}

pub(super) fn passthrough_clusters() -> String {
    [
        cluster("PassthroughCluster", r#", "type": "ORIGINAL_DST", "lb_policy": "CLUSTER_PROVIDED""#),
        cluster("BlackHoleCluster", r#", "type": "STATIC""#),
    ]
    .join(",")
}
