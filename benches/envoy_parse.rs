//! Parses a large synthetic Istio sidecar `/config_dump` (a sidecar without a `Sidecar` scope:
//! thousands of services, each with an EDS cluster carrying TLS transport socket matches, a
//! VIP listener or a virtual host on a shared per-port HTTP listener, and RDS route tables).
//!
//! `MESHPATH_BENCH_SERVICES=N` sets the number of services (default 5000);
//! `MESHPATH_BENCH_DUMP=PATH` also writes the generated dump to PATH (for the `jq` and
//! `/usr/bin/time -v` comparisons in docs/performance.md).

use std::fmt::Write as _;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::{json, Value};

const PORTS: [u16; 8] = [80, 443, 8080, 9080, 3000, 5000, 8443, 15010];

fn svc(i: usize) -> (String, String, u16) {
    let name = format!("svc-{i}");
    let ns = format!("ns-{}", i % 40);
    let port = PORTS[i % PORTS.len()];
    (
        format!("{name}.{ns}.svc.cluster.local"),
        format!("10.96.{}.{}", i / 250, i % 250 + 1),
        port,
    )
}

fn cluster(i: usize) -> Value {
    let (host, _, port) = svc(i);
    let name = format!("outbound|{port}||{host}");
    json!({"version_info": "2026-01-01T00:00:00Z/42", "cluster": {
        "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
        "name": name, "type": "EDS",
        "eds_cluster_config": {"eds_config": {"ads": {}, "initial_fetch_timeout": "0s", "resource_api_version": "V3"}, "service_name": name},
        "connect_timeout": "10s",
        "circuit_breakers": {"thresholds": [{"max_connections": 4294967295u64, "max_pending_requests": 4294967295u64, "max_requests": 4294967295u64, "max_retries": 4294967295u64, "track_remaining": true}]},
        "metadata": {"filter_metadata": {"istio": {"services": [{"host": host, "name": format!("svc-{i}"), "namespace": format!("ns-{}", i % 40)}]}}},
        "common_lb_config": {"locality_weighted_lb_config": {}},
        "transport_socket_matches": [
            {"name": "tlsMode-istio", "match": {"tlsMode": "istio"}, "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "common_tls_context": {"tls_params": {"tls_minimum_protocol_version": "TLSv1_2", "tls_maximum_protocol_version": "TLSv1_3"},
                    "alpn_protocols": ["istio-peer-exchange", "istio"],
                    "tls_certificate_sds_secret_configs": [{"name": "default", "sds_config": {"api_config_source": {"api_type": "GRPC", "grpc_services": [{"envoy_grpc": {"cluster_name": "sds-grpc"}}], "set_node_on_first_message_only": true, "transport_api_version": "V3"}, "initial_fetch_timeout": "0s", "resource_api_version": "V3"}}],
                    "combined_validation_context": {"default_validation_context": {"match_subject_alt_names": [{"exact": format!("spiffe://cluster.local/ns/ns-{}/sa/default", i % 40)}]},
                        "validation_context_sds_secret_config": {"name": "ROOTCA", "sds_config": {"api_config_source": {"api_type": "GRPC", "grpc_services": [{"envoy_grpc": {"cluster_name": "sds-grpc"}}], "set_node_on_first_message_only": true, "transport_api_version": "V3"}, "initial_fetch_timeout": "0s", "resource_api_version": "V3"}}}},
                "sni": format!("outbound_.{port}_._.{host}")}}},
            {"name": "tlsMode-disabled", "match": {}, "transport_socket": {"name": "envoy.transport_sockets.raw_buffer", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"}}}
        ],
        "filters": [{"name": "istio.metadata_exchange", "typed_config": {"@type": "type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange", "protocol": "istio-peer-exchange"}}]
    }, "last_updated": "2026-01-01T00:00:00.000Z"})
}

fn tcp_listener(i: usize) -> Value {
    let (host, vip, port) = svc(i);
    let name = format!("{vip}_{port}");
    json!({"name": name, "active_state": {"version_info": "2026-01-01T00:00:00Z/42", "listener": {
        "@type": "type.googleapis.com/envoy.config.listener.v3.Listener",
        "name": name, "address": {"socket_address": {"address": vip, "port_value": port}},
        "filter_chains": [{"filters": [
            {"name": "istio.stats", "typed_config": {"@type": "type.googleapis.com/udpa.type.v1.TypedStruct", "type_url": "type.googleapis.com/stats.PluginConfig", "value": {"disable_host_header_fallback": true}}},
            {"name": "envoy.filters.network.tcp_proxy", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                "stat_prefix": format!("outbound|{port}||{host}"), "cluster": format!("outbound|{port}||{host}"),
                "access_log": [{"name": "envoy.access_loggers.file", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog", "path": "/dev/stdout", "log_format": {"text_format_source": {"inline_string": "[%START_TIME%] %RESPONSE_FLAGS% %UPSTREAM_HOST% %DOWNSTREAM_REMOTE_ADDRESS%\n"}}}}]}}
        ]}],
        "default_filter_chain": {"filter_chain_match": {}, "filters": [{"name": "envoy.filters.network.tcp_proxy", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", "stat_prefix": "PassthroughCluster", "cluster": "PassthroughCluster"}}], "name": "PassthroughFilterChain"},
        "listener_filters": [{"name": "envoy.filters.listener.tls_inspector", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"}}],
        "traffic_direction": "OUTBOUND", "bind_to_port": false}, "last_updated": "2026-01-01T00:00:00.000Z"}})
}

fn http_listener(port: u16) -> Value {
    let name = format!("0.0.0.0_{port}");
    json!({"name": name, "active_state": {"listener": {
        "@type": "type.googleapis.com/envoy.config.listener.v3.Listener",
        "name": name, "address": {"socket_address": {"address": "0.0.0.0", "port_value": port}},
        "filter_chains": [{"filter_chain_match": {"transport_protocol": "raw_buffer", "application_protocols": ["http/1.1", "h2c"]}, "filters": [
            {"name": "envoy.filters.network.http_connection_manager", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": format!("outbound_0.0.0.0_{port}"),
                "rds": {"config_source": {"ads": {}, "initial_fetch_timeout": "0s", "resource_api_version": "V3"}, "route_config_name": port.to_string()},
                "http_filters": [{"name": "envoy.filters.http.grpc_stats"}, {"name": "istio.alpn"}, {"name": "envoy.filters.http.fault"}, {"name": "envoy.filters.http.cors"}, {"name": "istio.stats"}, {"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
                "tracing": {"client_sampling": {"value": 100}, "random_sampling": {"value": 1}, "overall_sampling": {"value": 100}},
                "use_remote_address": false, "upgrade_configs": [{"upgrade_type": "websocket"}], "stream_idle_timeout": "0s", "normalize_path": true, "path_with_escaped_slashes_action": "KEEP_UNCHANGED"}}]}],
        "default_filter_chain": {"filters": [{"name": "envoy.filters.network.tcp_proxy", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", "stat_prefix": "PassthroughCluster", "cluster": "PassthroughCluster"}}], "name": "PassthroughFilterChain"},
        "listener_filters": [{"name": "envoy.filters.listener.tls_inspector"}, {"name": "envoy.filters.listener.http_inspector"}],
        "traffic_direction": "OUTBOUND", "bind_to_port": false}}})
}

fn virtual_host(i: usize) -> Value {
    let (host, vip, port) = svc(i);
    let short = format!("svc-{i}");
    json!({"name": format!("{host}:{port}"),
        "domains": [host, format!("{short}.ns-{}", i % 40), format!("{short}.ns-{}.svc", i % 40), vip],
        "routes": [{"name": "default", "match": {"prefix": "/"}, "route": {"cluster": format!("outbound|{port}||{host}"), "timeout": "0s",
            "retry_policy": {"retry_on": "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes", "num_retries": 2, "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts"}], "host_selection_retry_max_attempts": "5", "retriable_status_codes": [503]},
            "max_grpc_timeout": "0s"}, "decorator": {"operation": format!("{host}:{port}/*")}}],
        "include_request_attempt_count": true})
}

/// The generated dump (pretty-printed, as Envoy's admin endpoint prints it).
pub fn generate(services: usize) -> String {
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
    let mut out = String::new();
    out.push_str("{\n \"configs\": [\n  {\"@type\": \"type.googleapis.com/envoy.admin.v3.ClustersConfigDump\", \"version_info\": \"x\", \"dynamic_active_clusters\": [\n");
    let mut first = true;
    for i in 0..services {
        if !first {
            out.push_str(",\n");
        }
        first = false;
        out.push_str(&pretty(&cluster(i)));
    }
    out.push_str("]},\n  {\"@type\": \"type.googleapis.com/envoy.admin.v3.ListenersConfigDump\", \"dynamic_listeners\": [\n");
    let mut first = true;
    for i in (0..services).filter(|i| i % 3 == 0) {
        if !first {
            out.push_str(",\n");
        }
        first = false;
        out.push_str(&pretty(&tcp_listener(i)));
    }
    for p in PORTS {
        let _ = write!(out, ",\n{}", pretty(&http_listener(p)));
    }
    out.push_str("]},\n  {\"@type\": \"type.googleapis.com/envoy.admin.v3.RoutesConfigDump\", \"dynamic_route_configs\": [\n");
    for (k, p) in PORTS.iter().enumerate() {
        let vhosts: Vec<Value> = (0..services)
            .filter(|i| i % 3 != 0 && svc(*i).2 == *p)
            .map(virtual_host)
            .collect();
        let rc = json!({"version_info": "x", "route_config": {"@type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
            "name": p.to_string(), "virtual_hosts": vhosts, "validate_clusters": false, "ignore_port_in_host_matching": true}});
        if k > 0 {
            out.push_str(",\n");
        }
        out.push_str(&pretty(&rc));
    }
    out.push_str("]}\n ]\n}\n");
    out
}

fn bench(c: &mut Criterion) {
    let services = std::env::var("MESHPATH_BENCH_SERVICES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5000);
    let text = generate(services);
    if let Ok(path) = std::env::var("MESHPATH_BENCH_DUMP") {
        if let Err(e) = std::fs::write(&path, &text) {
            eprintln!("cannot write {path}: {e}");
        }
    }
    let bytes = text.into_bytes();
    let mut g = c.benchmark_group("envoy_parse");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function(
        format!("sidecar_{services}_services_{}MB", bytes.len() / 1_000_000),
        |b| {
            b.iter(|| {
                let cfg = meshpath::envoy::parse_dump(std::hint::black_box(&bytes));
                std::hint::black_box(
                    cfg.map(|c| c.listeners.len() + c.clusters.len())
                        .unwrap_or(0),
                )
            })
        },
    );
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
