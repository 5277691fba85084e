//! Traces per second through a sidecar with 2,000 services: the app's connection to a service
//! VIP is redirected to 15001, handed off by `virtualOutbound` to the VIP's listener, proxied
//! to the EDS endpoint, and leaves as Envoy's (uid 1337) connection.
//! `MESHPATH_BENCH_SERVICES=N` changes the number of services.

use std::net::SocketAddr;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use meshpath::engine::{trace, trace_recorded, Destination, From, Mesh, Pick, Pod, Start};
use meshpath::istio::Conventions;
use meshpath::netfilter::eval::Program;
use meshpath::netfilter::parse::{parse, ParseOptions};
use meshpath::netns::L4;

#[path = "support/sidecar.rs"]
mod sidecar;

const RULES: &str = include_str!("../scenarios/istio-1.25-redirect.v4.iptables-save");

/// The generated dump plus what every sidecar has: `virtualOutbound` on 15001, the
/// PassthroughCluster, and the EDS endpoints (as `?include_eds` shows them).
fn dump(services: usize) -> String {
    let mut text = sidecar::generate(services);
    let tail = text.rfind(']').expect("configs array");
    let endpoints: Vec<String> = (0..services)
        .map(|i| {
            let (host, _, port) = sidecar::svc(i);
            format!(
                r#"{{"endpoint_config":{{"@type":"type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment","cluster_name":"outbound|{port}||{host}","endpoints":[{{"lb_endpoints":[{{"endpoint":{{"address":{{"socket_address":{{"address":"10.244.{}.{}","port_value":{port}}}}}}},"health_status":"HEALTHY"}}]}}]}}}}"#,
                i / 250 + 1,
                i % 250 + 1
            )
        })
        .collect();
    let extra = format!(
        r#",
  {{"@type":"type.googleapis.com/envoy.admin.v3.ListenersConfigDump","dynamic_listeners":[{{"name":"virtualOutbound","active_state":{{"listener":{{"@type":"type.googleapis.com/envoy.config.listener.v3.Listener","name":"virtualOutbound","address":{{"socket_address":{{"address":"0.0.0.0","port_value":15001}}}},"use_original_dst":true,"traffic_direction":"OUTBOUND","filter_chains":[{{"name":"virtualOutbound-catchall-tcp","filters":[{{"name":"envoy.filters.network.tcp_proxy","typed_config":{{"@type":"type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy","stat_prefix":"PassthroughCluster","cluster":"PassthroughCluster"}}}}]}}]}}}}}}]}},
  {{"@type":"type.googleapis.com/envoy.admin.v3.ClustersConfigDump","static_clusters":[{{"cluster":{{"@type":"type.googleapis.com/envoy.config.cluster.v3.Cluster","name":"PassthroughCluster","type":"ORIGINAL_DST","lb_policy":"CLUSTER_PROVIDED","connect_timeout":"10s"}}}}]}},
  {{"@type":"type.googleapis.com/envoy.admin.v3.EndpointsConfigDump","dynamic_endpoint_configs":[{}]}}
 "#,
        endpoints.join(",")
    );
    text.insert_str(tail, &extra);
    text
}

fn bench(c: &mut Criterion) {
    let services = std::env::var("MESHPATH_BENCH_SERVICES").ok().and_then(|s| s.parse().ok()).unwrap_or(2000);
    let cfg = meshpath::envoy::parse_dump(dump(services).as_bytes()).expect("the generated dump parses");
    let program = Program::new(parse("rules", RULES, ParseOptions::default()).expect("rules").ruleset)
        .expect("compiles");
    let pod = Pod::new(
        "app",
        &["10.244.0.5/24".parse().expect("literal")],
        Some((program, RULES.into())),
        None,
        Some(cfg),
        Vec::new(),
    );
    let mesh = Mesh { pods: vec![pod], names: Default::default() };
    // A TCP service near the end of the listener list (every third service has a VIP listener).
    let i = (services - 1) / 3 * 3;
    let (_, vip, port) = sidecar::svc(i);
    let start = Start {
        pod: 0,
        from: From::Process { uid: Conventions::ISTIO.app_uid, gid: Conventions::ISTIO.app_gid },
        dst: Destination::Addr(SocketAddr::new(vip.parse().expect("vip"), port)),
        proto: L4::Tcp,
        src: None,
        client: Default::default(),
        request: None,
        dns_query: None,
        pick: Pick::First,
        icmp_type: None,
    };
    let t = trace(&mesh, &start).expect("traces");
    let ending = t.paths[0].ending.kind();
    assert_eq!(ending, "left", "{:#?}", t.paths[0]);
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(1));
    g.bench_function(format!("trace app to service VIP, {services} services"), |b| {
        b.iter(|| trace(&mesh, std::hint::black_box(&start)).expect("traces"))
    });
    // With each hop's input kept, as `explain` and `replay --flow N --explain` need it.
    g.bench_function(format!("trace recorded, app to service VIP, {services} services"), |b| {
        b.iter(|| trace_recorded(&mesh, std::hint::black_box(&start)).expect("traces"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
