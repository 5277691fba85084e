use std::sync::Arc;

use super::*;
use crate::engine::{Refusal, RuleStep, Step};
use crate::netfilter::eval::{self, Hook, Verdict};
use crate::netfilter::model::TableName;
use crate::netns::L4;

/// The words `check` compares a `reason` with (the report's own wording).
fn cmp(x: &Expect, t: &MeshTrace) -> Vec<String> {
    compare(x, t, &crate::render::words::ending_reason)
}

fn path(weight: f64, ending: Ending, envoy: Vec<EnvoyHop>) -> Path {
    Path { weight, ending, envoy, steps: Vec::<Step>::new(), hops: Vec::new() }
}

fn hop(pod: &str, listener: &str, cluster: &str) -> EnvoyHop {
    EnvoyHop {
        pod: pod.into(),
        listener: Some(listener.into()),
        cluster: Some(cluster.into()),
        ..EnvoyHop::default()
    }
}

fn yaml(s: &str) -> Expect {
    serde_saphyr::from_str(s).unwrap()
}

fn nc() -> MeshTrace {
    MeshTrace {
        pods: vec!["productpage".into()],
        paths: vec![path(
            1.0,
            Ending::EnvoyResponse {
                pod: "productpage".into(),
                status: Some(503),
                flag: Some("NC".into()),
                details: "cluster_not_found".into(),
                upstream: None,
            },
            vec![hop("productpage", "0.0.0.0_9080", "outbound|9080|v1|reviews")],
        )],
    }
}

#[test]
fn passing_expectation_has_no_mismatch() {
    let x = yaml("ending: envoy_response\nstatus: 503\nflag: NC\nenvoy:\n  - listener: 0.0.0.0_9080\n");
    assert!(cmp(&x, &nc()).is_empty());
}

#[test]
fn ending_kind_mismatch_names_what_happened() {
    let x = yaml("ending: delivered\n");
    assert_eq!(cmp(&x, &nc()), ["ending: expected delivered, got envoy_response 503 NC in productpage"]);
}

#[test]
fn field_the_kind_lacks_is_a_mismatch() {
    let x = yaml("socket: 0.0.0.0:9080\nstatus: 404\n");
    assert_eq!(
        cmp(&x, &nc()),
        [
            "socket: expected 0.0.0.0:9080, the ending (envoy_response) has none",
            "status: expected 404, got 503"
        ]
    );
}

#[test]
fn envoy_hops_are_counted_and_compared_field_by_field() {
    let x = yaml("envoy:\n  - cluster: outbound|9080||reviews\n");
    assert_eq!(
        cmp(&x, &nc()),
        ["envoy[0].cluster: expected outbound|9080||reviews, got outbound|9080|v1|reviews"]
    );
    let x = yaml("envoy: []\n");
    assert_eq!(cmp(&x, &nc()), ["envoy: expected 0 hops, got 1 (productpage 0.0.0.0_9080)"]);
}

fn two_endpoints() -> MeshTrace {
    let left =
        |dst: &str| Ending::Left { pod: "p".into(), dst: dst.parse().unwrap(), cluster: Some("c".into()) };
    MeshTrace {
        pods: vec!["p".into()],
        paths: vec![path(0.5, left("10.0.0.1:80"), vec![]), path(0.5, left("10.0.0.2:80"), vec![])],
    }
}

#[test]
fn a_nan_weight_never_matches() {
    let x = yaml("paths:\n  - weight: .nan\n  - weight: .nan\n");
    assert_eq!(cmp(&x, &two_endpoints()).len(), 2);
}

#[test]
fn paths_are_compared_in_order_with_weights() {
    let x = yaml("ending: left\npaths:\n  - weight: 0.5\n    dst: 10.0.0.1:80\n  - weight: 0.5\n    dst: 10.0.0.2:80\n");
    assert!(cmp(&x, &two_endpoints()).is_empty());
    let x = yaml("paths:\n  - weight: 0.25\n    dst: 10.0.0.1:80\n  - dst: 10.0.0.3:80\n");
    assert_eq!(
        cmp(&x, &two_endpoints()),
        ["paths[0].weight: expected 0.25, got 0.5", "paths[1].dst: expected 10.0.0.3:80, got 10.0.0.2:80"]
    );
    let x = yaml("paths:\n  - dst: 10.0.0.1:80\n");
    assert_eq!(cmp(&x, &two_endpoints()), ["paths: expected 1 path, got 2"]);
}

#[test]
fn top_level_fields_hold_for_every_path() {
    let x = yaml("dst: 10.0.0.1:80\n");
    assert_eq!(cmp(&x, &two_endpoints()), ["path 2 of 2: dst: expected 10.0.0.1:80, got 10.0.0.2:80"]);
}

#[test]
fn reason_is_a_substring_and_closed_by_a_subset() {
    let rule = eval::Step {
        hook: Hook::Output,
        table: TableName::Nat,
        chain_index: 3,
        chain: Arc::from("ISTIO_OUTPUT"),
        kind: StepKind::Rule,
        rule: Some(1),
        line: Some(14),
        verdict: Verdict::Jump,
        target: Some(Arc::from("ISTIO_REDIRECT")),
    };
    let step =
        Step { pod: 0, detail: Detail::Rule(RuleStep { v6: false, file: Arc::from("rules"), step: rule }) };
    let mut p = path(1.0, Ending::Loop { cycle: [0, 0], closed_by: vec![0], budget: None }, vec![]);
    p.steps.push(step);
    let t = MeshTrace { pods: vec!["p".into()], paths: vec![p] };
    assert!(cmp(&yaml("ending: loop\nclosed_by: [\"nat ISTIO_OUTPUT #1\"]\n"), &t).is_empty());
    // The step in words, as earlier versions wrote it, names the same rule.
    let words = "ending: loop\nclosed_by: [\"OUTPUT nat ISTIO_OUTPUT #1 jump ISTIO_REDIRECT (rules:14)\"]\n";
    assert!(cmp(&yaml(words), &t).is_empty());
    assert_eq!(cmp(&yaml("closed_by: [\"nat ISTIO_OUTPUT #10\"]\n"), &t).len(), 1, "#10 is not #1");
    assert_eq!(
        cmp(&yaml("closed_by: [x]\n"), &t),
        ["closed_by: expected \"x\" among [\"nat ISTIO_OUTPUT #1\"]"]
    );
    assert_eq!(
        cmp(&yaml("reason: refused\n"), &t),
        ["reason: expected \"refused\", the ending (loop) has none"]
    );
    let r = MeshTrace {
        pods: vec!["p".into()],
        paths: vec![path(
            1.0,
            Ending::Refused {
                pod: "p".into(),
                dst: "127.0.0.1:9080".parse().unwrap(),
                by: Refusal::NoSocket { proto: L4::Tcp },
            },
            vec![],
        )],
    };
    assert!(cmp(&yaml("reason: no socket listens\n"), &r).is_empty());
}

#[test]
fn expectations_written_from_a_trace_pass_it() {
    for t in [nc(), two_endpoints()] {
        let x = from_trace(&t);
        assert!(cmp(&x, &t).is_empty(), "{x:?}");
    }
    let x = from_trace(&two_endpoints());
    assert_eq!(x.ending, Some(EndingKind::Left));
    assert_eq!(x.paths.as_ref().map(|p| p.value.len()), Some(2));
}

#[test]
fn integer_weights_and_quoted_numbers_read() {
    let x = yaml("paths:\n  - weight: 1\n    envoy:\n      - route_config: \"9080\"\n");
    let p = &x.paths.as_ref().unwrap().value[0];
    assert_eq!(p.weight.as_ref().map(|w| w.value), Some(1.0));
    assert_eq!(p.envoy.as_ref().unwrap()[0].route_config.as_deref(), Some("9080"));
}

#[test]
fn unquoted_number_for_a_name() {
    let r = serde_saphyr::from_str::<Expect>("envoy:\n  - route_config: 9080\n");
    assert_eq!(
        r.map(|x| x.envoy.unwrap()[0].route_config.clone()).map_err(|e| e.to_string()),
        Ok(Some("9080".into()))
    );
}
