//! Unit tests of the report and its counterfactuals on the mesh fixtures (tests/fixtures/mesh).

use super::*;
use crate::engine::{Destination, From, Mesh, Pick, Pod, Start};
use crate::envoy::parse_dump;
use crate::envoy::select::{ClientBytes, HttpRequest};
use crate::istio::Conventions;
use crate::netfilter::eval::Program;
use crate::netfilter::parse::{parse, ParseOptions};

const RULES_2019: &str = include_str!("../../scenarios/istio-1.1-redirect.v4.iptables-save");
const RULES_1_25: &str = include_str!("../../scenarios/istio-1.25-redirect.v4.iptables-save");
const DUMP_2019_PODIP: &str =
    include_str!("../../tests/fixtures/mesh/productpage.istio-1.1-podip-endpoint.config_dump.json");
const DUMP_2019: &str = include_str!("../../tests/fixtures/mesh/productpage.istio-1.1.config_dump.json");
const DUMP_1_25: &str = include_str!("../../tests/fixtures/mesh/productpage.istio-1.25.config_dump.json");

fn mesh(rules: &str, dump: &str, listen: &str) -> Mesh {
    let parsed = parse("rules.iptables-save", rules, ParseOptions::default()).expect("rules parse");
    let program = Program::new(parsed.ruleset).expect("rules compile");
    let cfg = parse_dump(dump.as_bytes()).expect("dump parses");
    let sockets = vec![crate::netns::parse_listen(listen).expect("listen")];
    let pod = Pod::new(
        "productpage",
        &["10.244.0.5/24".parse().expect("net")],
        Some((program, rules.into())),
        None,
        Some(cfg),
        sockets,
    );
    Mesh { pods: vec![pod], names: Default::default() }
}

fn start(from: From, dst: &str, host: &str) -> Start {
    Start {
        pod: 0,
        from,
        dst: Destination::Addr(dst.parse().expect("dst")),
        proto: crate::netns::L4::Tcp,
        src: None,
        client: ClientBytes::Http1,
        request: Some(HttpRequest {
            host: Some(host.into()),
            path: "/".into(),
            method: "GET".into(),
            headers: Vec::new(),
        }),
        dns_query: None,
        pick: Pick::All,
        icmp_type: None,
    }
}

const OUTSIDE: fn() -> From = || From::Outside { src: "10.244.1.9".parse().expect("ip") };
const APP: From = From::Process { uid: Conventions::ISTIO.app_uid, gid: Conventions::ISTIO.app_gid };

fn find<'r>(r: &'r Report, change: &str) -> &'r Counterfactual {
    r.counterfactuals
        .iter()
        .find(|c| c.change.contains(change))
        .unwrap_or_else(|| panic!("no counterfactual containing {change:?} in {:#?}", r.counterfactuals))
}

#[test]
fn loop_rules_removed_one_by_one_and_the_exemption_break_the_loop() {
    let m = mesh(RULES_2019, DUMP_2019_PODIP, "tcp:10.244.0.5:9080");
    let r = explain(&m, &start(OUTSIDE(), "10.244.0.5:9080", "productpage:9080")).expect("explains");
    assert_eq!(r.paths[0].kind, "loop");
    assert!(matches!(r.trace.paths[0].ending, crate::engine::Ending::Loop { .. }));
    let without = find(&r, "without rule nat ISTIO_OUTPUT #1 (rules.iptables-save:14)");
    assert_eq!(without.kinds, ["delivered"]);
    assert_eq!(without.loop_verdict, Some(crate::explain::LoopVerdict::Disappears));
    let exempt = find(&r, "with `-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN` inserted before");
    assert_eq!(exempt.kinds, ["delivered"]);
}

#[test]
fn loop_decisions_name_the_rule_that_matched_and_those_that_did_not() {
    let m = mesh(RULES_2019, DUMP_2019_PODIP, "tcp:10.244.0.5:9080");
    let r = explain(&m, &start(OUTSIDE(), "10.244.0.5:9080", "productpage:9080")).expect("explains");
    let d = r.paths[0]
        .decisions
        .iter()
        .find(|d| {
            d.what
                .as_text()
                .is_some_and(|w| w.starts_with("OUTPUT nat ISTIO_OUTPUT #1 jumps to ISTIO_REDIRECT"))
        })
        .expect("the closing rule is explained");
    assert_eq!(d.source, "rules.iptables-save:14");
    assert!(
        d.why.iter().any(|w| w.as_text().unwrap_or("").contains("! -d 127.0.0.1/32 -o lo")),
        "{:?}",
        d.why
    );
}

#[test]
fn refused_by_a_pod_ip_bind_is_delivered_on_the_wildcard_address() {
    let m = mesh(RULES_2019, DUMP_2019, "tcp:10.244.0.5:9080");
    let r = explain(&m, &start(OUTSIDE(), "10.244.0.5:9080", "productpage:9080")).expect("explains");
    assert_eq!(r.paths[0].kind, "envoy_response");
    let c = find(&r, "listened on 0.0.0.0:9080 instead of 10.244.0.5:9080");
    assert_eq!(c.kinds, ["delivered"]);
    let t = c.outcome.as_ref().expect("walks");
    assert!(
        matches!(&t.paths[0].ending, crate::engine::Ending::Delivered { socket, .. } if socket.to_string() == "0.0.0.0:9080"),
        "{:?}",
        t.paths[0].ending
    );
}

#[test]
fn rules_that_did_not_match_say_which_match_failed() {
    let m = mesh(RULES_2019, DUMP_2019, "tcp:0.0.0.0:9080");
    let r = explain(&m, &start(APP, "10.96.0.20:9080", "nothere:9080")).expect("explains");
    let d = r.paths[0]
        .decisions
        .iter()
        .find(|d| d.what.as_text().is_some_and(|w| w.contains("ISTIO_OUTPUT #5")))
        .expect("the catch-all ISTIO_OUTPUT rule");
    assert!(d.why.iter().any(|w| w.as_text().unwrap_or("").contains("#2 (line 15)")
        && w.as_text().unwrap_or("").contains("`-m owner --uid-owner 1337` does not hold")));
    let vh = r.paths[0]
        .decisions
        .iter()
        .find(|d| d.what.as_text().is_some_and(|w| w.starts_with("route config 9080")))
        .expect("route");
    assert!(vh
        .why
        .iter()
        .any(|w| w.as_text().unwrap_or("").contains("no virtual host's domains match Host nothere:9080")));
}

#[test]
fn missing_subset_cluster_is_added_from_the_service_cluster() {
    let dump = DUMP_1_25.replacen(
        "\"cluster\": \"outbound|9080||reviews.default.svc.cluster.local\"",
        "\"cluster\": \"outbound|9080|v1|reviews.default.svc.cluster.local\"",
        1,
    );
    let m = mesh(RULES_1_25, &dump, "tcp:0.0.0.0:9080");
    let r = explain(&m, &start(APP, "10.96.0.20:9080", "reviews:9080")).expect("explains");
    assert_eq!(r.paths[0].kind, "envoy_response");
    let nc = r.paths[0]
        .decisions
        .iter()
        .find(|d| d.what.as_text().is_some_and(|w| w.contains("does not exist (NC)")))
        .expect("NC");
    assert!(nc
        .why
        .iter()
        .any(|w| w.as_text().unwrap_or("").contains("outbound|9080||reviews.default.svc.cluster.local")));
    let c = find(&r, "with a DestinationRule subset v1 for reviews.default.svc.cluster.local");
    assert_eq!(c.kinds, ["left"]);
    let t = c.outcome.as_ref().expect("walks");
    assert!(
        matches!(&t.paths[0].ending, crate::engine::Ending::Left { dst, .. } if dst.to_string() == "10.244.1.7:9080"),
        "{:?}",
        t.paths[0].ending
    );
    assert!(c.assumed.iter().any(|a| a.contains("istio.workload revision is v1")), "{:?}", c.assumed);
}

#[test]
fn subset_keeps_only_the_endpoints_of_that_revision() {
    let dump = DUMP_1_25.replacen(
        "\"cluster\": \"outbound|9080||reviews.default.svc.cluster.local\"",
        "\"cluster\": \"outbound|9080|v3|reviews.default.svc.cluster.local\"",
        1,
    );
    let m = mesh(RULES_1_25, &dump, "tcp:0.0.0.0:9080");
    let r = explain(&m, &start(APP, "10.96.0.20:9080", "reviews:9080")).expect("explains");
    let c = find(&r, "with a DestinationRule subset v3");
    assert_eq!(c.kinds, ["envoy_response"], "reviews' only endpoint is v1: {:?}", c.outcome);
}

#[test]
fn allow_any_passthrough_gets_the_address_added_to_a_virtual_host() {
    let m = mesh(RULES_1_25, DUMP_1_25, "tcp:0.0.0.0:9080");
    let r = explain(&m, &start(APP, "10.96.0.99:9080", "10.96.0.99:9080")).expect("explains");
    assert_eq!(r.paths[0].kind, "left");
    let c = find(&r, "also had the domain 10.96.0.99");
    let t = c.outcome.as_ref().expect("walks");
    assert!(t.paths.iter().all(|p| p.ending.cluster() != Some("PassthroughCluster")), "{t:?}");
}

#[test]
fn same_input_same_report() {
    let m = mesh(RULES_2019, DUMP_2019_PODIP, "tcp:10.244.0.5:9080");
    let s = start(OUTSIDE(), "10.244.0.5:9080", "productpage:9080");
    let a = crate::render::explain::html(&explain(&m, &s).expect("explains"));
    let b = crate::render::explain::html(&explain(&m, &s).expect("explains"));
    assert_eq!(a, b);
    assert!(a.contains("<svg"));
}

#[test]
fn tls_on_a_catch_all_chain_is_re_walked_without_it() {
    use crate::envoy::model::NetworkFilterKind;
    let mut m = mesh(RULES_1_25, DUMP_1_25, "tcp:0.0.0.0:9080");
    let cfg = m.pods[0].envoy.as_mut().expect("dump");
    let l = cfg.listeners.iter_mut().find(|l| l.name == "virtualOutbound").expect("virtualOutbound");
    let chain = l
        .filter_chains
        .iter_mut()
        .find(|c| c.name.as_deref() == Some("virtualOutbound-catchall-tcp"))
        .expect("catch-all chain");
    assert!(chain.filter_chain_match.is_empty());
    for f in &mut chain.filters {
        if let NetworkFilterKind::TcpProxy(t) = &mut f.kind {
            t.cluster = Some("outbound|9080||reviews.default.svc.cluster.local".into());
        }
    }
    let mut s = start(APP, "93.184.216.34:443", "");
    s.request = None;
    s.client = ClientBytes::Tls { sni: Some("baidu.com".into()), alpn: Vec::new() };
    let r = explain(&m, &s).expect("explains");
    let e = &r.trace.paths[0].ending;
    assert!(
        matches!(e, crate::engine::Ending::Left { dst, .. } if dst.to_string() == "10.244.1.7:9080"),
        "{e:?}"
    );
    let c = find(&r, "without filter chain virtualOutbound-catchall-tcp (it has no match criteria)");
    assert_eq!(c.kinds, ["envoy_response"], "{:?}", c.outcome);
}
