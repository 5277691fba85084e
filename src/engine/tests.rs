use super::*;
use crate::envoy::parse_dump;
use crate::netfilter::eval::Program;
use crate::netfilter::parse::{parse, ParseOptions};
use crate::netns::L4;

const RULES_2019: &str = include_str!("../../scenarios/istio-1.1-redirect.v4.iptables-save");
const RULES_1_25: &str = include_str!("../../scenarios/istio-1.25-redirect.v4.iptables-save");

/// An Istio 1.1-shaped sidecar: the `virtual` 15001 listener with use_original_dst, an
/// inbound listener for the pod's port 9080 sending to `inbound_endpoint`, PassthroughCluster.
fn dump(inbound_endpoint: &str) -> String {
    let (ip, port) = inbound_endpoint.rsplit_once(':').unwrap();
    format!(
        r#"{{"configs":[
 {{"@type":"type.googleapis.com/envoy.admin.v2alpha.ListenersConfigDump","dynamic_active_listeners":[
  {{"listener":{{"name":"10.244.0.5_9080","address":{{"socket_address":{{"address":"10.244.0.5","port_value":9080}}}},
    "filter_chains":[{{"filters":[{{"name":"envoy.tcp_proxy","config":{{"stat_prefix":"inbound|9080||app","cluster":"inbound|9080||app.default.svc.cluster.local"}}}}]}}],
    "deprecated_v1":{{"bind_to_port":false}}}}}},
  {{"listener":{{"name":"virtual","address":{{"socket_address":{{"address":"0.0.0.0","port_value":15001}}}},
    "filter_chains":[{{"filters":[{{"name":"envoy.tcp_proxy","config":{{"stat_prefix":"PassthroughCluster","cluster":"PassthroughCluster"}}}}]}}],
    "use_original_dst":true}}}}]}},
 {{"@type":"type.googleapis.com/envoy.admin.v2alpha.ClustersConfigDump","static_clusters":[
  {{"cluster":{{"name":"PassthroughCluster","type":"ORIGINAL_DST","lb_policy":"ORIGINAL_DST_LB","connect_timeout":"1s"}}}}],
  "dynamic_active_clusters":[
  {{"cluster":{{"name":"inbound|9080||app.default.svc.cluster.local","type":"STATIC","connect_timeout":"1s",
    "load_assignment":{{"cluster_name":"inbound|9080||app.default.svc.cluster.local","endpoints":[{{"lb_endpoints":[
      {{"endpoint":{{"address":{{"socket_address":{{"address":"{ip}","port_value":{port}}}}}}}}}]}}]}}}}}}]}}]}}"#
    )
}

fn mesh(rules: &str, envoy_dump: &str, app: &str) -> Mesh {
    let program = Program::new(parse("rules", rules, ParseOptions::default()).unwrap().ruleset).unwrap();
    let cfg = parse_dump(envoy_dump.as_bytes()).unwrap();
    let sockets = vec![crate::netns::parse_listen(app).unwrap()];
    let pod = Pod::new(
        "app",
        &["10.244.0.5/24".parse().unwrap()],
        Some((program, rules.into())),
        None,
        Some(cfg),
        sockets,
    );
    Mesh { pods: vec![pod], names: Default::default() }
}

fn start(from: From, dst: &str) -> Start {
    Start {
        pod: 0,
        from,
        dst: Destination::Addr(dst.parse().unwrap()),
        proto: crate::netns::L4::Tcp,
        src: None,
        client: Default::default(),
        request: None,
        dns_query: None,
        pick: Pick::All,
        icmp_type: None,
    }
}

const ISTIO: crate::istio::Conventions = crate::istio::Conventions::ISTIO;
const APP: From = From::Process { uid: ISTIO.app_uid, gid: ISTIO.app_gid };
const ENVOY: From = From::Process { uid: ISTIO.proxy_uid, gid: ISTIO.proxy_gid };

fn only(t: MeshTrace) -> Path {
    assert_eq!(t.paths.len(), 1, "{t:#?}");
    t.paths.into_iter().next().unwrap()
}

#[test]
fn external_call_leaves_through_passthrough_cluster() {
    let m = mesh(RULES_1_25, &dump("127.0.0.1:9080"), "tcp:0.0.0.0:9080");
    let p = only(trace(&m, &start(APP, "93.184.216.34:443")).unwrap());
    assert_eq!(
        p.ending,
        Ending::Left {
            pod: "app".into(),
            dst: "93.184.216.34:443".parse().unwrap(),
            cluster: Some("PassthroughCluster".into())
        }
    );
    assert_eq!(p.envoy[0].listener.as_deref(), Some("virtual"));
}

#[test]
fn app_to_its_own_pod_ip_bypasses_envoy() {
    let m = mesh(RULES_1_25, &dump("127.0.0.1:9080"), "tcp:0.0.0.0:9080");
    let p = only(trace(&m, &start(APP, "10.244.0.5:9080")).unwrap());
    assert_eq!(
        p.ending,
        Ending::Delivered {
            pod: "app".into(),
            socket: "0.0.0.0:9080".parse().unwrap(),
            process: "app".into()
        }
    );
    assert!(p.envoy.is_empty());
}

#[test]
fn inbound_cluster_to_localhost_fails_upstream_when_the_app_binds_the_pod_ip() {
    let m = mesh(RULES_2019, &dump("127.0.0.1:9080"), "tcp:10.244.0.5:9080");
    let p = only(trace(&m, &start(ENVOY, "10.244.0.5:9080")).unwrap());
    // Envoy accepted the connection; its own connection to 127.0.0.1:9080 is refused, so the
    // TCP proxy closes the downstream connection with UF.
    let Ending::EnvoyResponse { status, flag, upstream, .. } = &p.ending else { panic!("{:?}", p.ending) };
    assert_eq!((status, flag.as_deref()), (&None, Some("UF")));
    let refused = Ending::Refused {
        pod: "app".into(),
        dst: "127.0.0.1:9080".parse().unwrap(),
        by: Refusal::NoSocket { proto: L4::Tcp },
    };
    assert_eq!(upstream.as_deref(), Some(&refused));
}

#[test]
fn inbound_cluster_to_the_pod_ip_loops_with_2019_rules() {
    let m = mesh(RULES_2019, &dump("10.244.0.5:9080"), "tcp:10.244.0.5:9080");
    let p = only(trace(&m, &start(ENVOY, "10.244.0.5:9080")).unwrap());
    let Ending::Loop { cycle, closed_by, budget: None } = &p.ending else { panic!("{:?}", p.ending) };
    assert!(cycle[0] < cycle[1]);
    let closing: Vec<&Detail> = closed_by.iter().map(|&i| &p.steps[i].detail).collect();
    // The 2019 rules send Envoy's connection to its own pod IP back to 15001 (ISTIO_REDIRECT
    // #1, REDIRECT --to-ports 15001), where the `virtual` listener takes it again.
    assert!(
        closing.iter().any(|d| matches!(d, Detail::Rule(r)
            if &*r.step.chain == "ISTIO_REDIRECT" && r.step.rule == Some(1) && r.step.target.as_deref() == Some("REDIRECT"))),
        "{closing:?}"
    );
    assert!(
        closing
            .iter()
            .any(|d| matches!(d, Detail::ListenerAccepts { listener, .. } if listener.name == "virtual")),
        "{closing:?}"
    );
    assert!(closed_by.iter().all(|&i| (cycle[0]..=cycle[1]).contains(&i)));
}

#[test]
fn unknown_host_is_unresolved() {
    let m = mesh(RULES_1_25, &dump("127.0.0.1:9080"), "tcp:0.0.0.0:9080");
    let mut s = start(APP, "1.1.1.1:80");
    s.dst = Destination::Host { name: "nope.example".into(), port: 80 };
    let p = only(trace(&m, &s).unwrap());
    assert_eq!(p.ending, Ending::Unresolved { pod: "app".into(), host: "nope.example".into() });
}

#[test]
fn a_start_outside_the_snapshot_is_an_error() {
    let m = mesh(RULES_1_25, &dump("127.0.0.1:9080"), "tcp:0.0.0.0:9080");
    let mut s = start(APP, "1.1.1.1:80");
    s.pod = 3;
    assert!(matches!(trace(&m, &s), Err(EngineError::NoSuchPod { index: 3, pods: 1 })));
}

#[test]
fn unknown_cluster_is_named_in_the_hop() {
    // A tcp_proxy naming a cluster the dump lacks: Envoy closes with NC, and the hop still
    // records the cluster it was sent to (Envoy: source/common/tcp_proxy/tcp_proxy.cc, no cluster: NC).
    let d = dump("127.0.0.1:9080").replace(
        r#""cluster":"inbound|9080||app.default.svc.cluster.local""#,
        r#""cluster":"inbound|9080|v1|app.default.svc.cluster.local""#,
    );
    let m = mesh(RULES_2019, &d, "tcp:0.0.0.0:9080");
    let from = From::Outside { src: "10.244.1.9".parse().unwrap() };
    let p = only(trace(&m, &start(from, "10.244.0.5:9080")).unwrap());
    let Ending::EnvoyResponse { status, flag, .. } = &p.ending else { panic!("{:?}", p.ending) };
    assert_eq!((status, flag.as_deref()), (&None, Some("NC")));
    assert_eq!(
        p.envoy.last().and_then(|h| h.cluster.as_deref()),
        Some("inbound|9080|v1|app.default.svc.cluster.local")
    );
}
