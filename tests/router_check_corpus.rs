//! Conformance: every pairing in the corpus `router-check/PAIRS.tsv` gives the pass / fail /
//! error outcome upstream's router_check_tool gives, test by test.
//!
//! Upstream marks some pairings `expected-fail` or `mixed` without naming every failing test;
//! the exact failing tests below follow from the tool's semantics (documented in
//! docs/route-check.md). Pairings meshpath cannot match are listed in `KNOWN_DEVIATIONS`
//! (and in docs/route-check.md); the test fails if that list is not exactly what happens.

mod common;
#[path = "common/corpus.rs"]
mod corpus;

use std::collections::BTreeSet;
use std::path::Path;

use meshpath::routecheck::{load_route_config_for_listener, parse_test_file, run_suite};

/// Tests upstream expects to fail, per `config|tests` pairing.
const EXPECTED_FAILURES: &[(&str, &[&str])] = &[
    (
        "current/TestRoutes.yaml|current/TestRoutesFailures.golden.proto.json",
        &["ResponseHeaderMatches Failures"],
    ),
    (
        "current/TestRoutes.yaml|current/Weighted.golden.proto.json",
        &["Test_2", "Test_3", "Test_4", "Test_5", "Test_6", "Test_7"],
    ),
    ("extra-upstream-refs/Timeout.yaml|extra-upstream-refs/TimeoutFailures.golden.proto.json", &["Test_1"]),
    (
        "extra-upstream-refs/RouteMetadata.yaml|extra-upstream-refs/RouteMetadata.golden.proto.json",
        &["MetadataValueMismatch", "MetadataNamespaceMissing"],
    ),
    (
        "legacy-2018-v1-json/TestRoutes.json|legacy-2018-v1-json/Weighted.golden.json",
        &["Test_2", "Test_3", "Test_4"],
    ),
];

/// Pairings whose outcome differs from upstream, with the reason; the same list is in
/// docs/route-check.md. Empty: every pairing matches.
const KNOWN_DEVIATIONS: &[(&str, &str)] = &[];

/// Configs PAIRS.tsv lists without a stored test file: (config, listener, test file that
/// exercises the same route table, per PAIRS.tsv's notes).
const UNPAIRED: &[(&str, &str, &str)] = &[(
    "extra-upstream-refs/ClusterHeaderBootstrap.yaml",
    "main",
    "extra-upstream-refs/DefaultRuntime.golden.proto.json",
)];

/// The five failure lines route_tests.sh asserts for TestRoutesFailures.
const FAILURE_LINES: &[&str] = &[
    "expected: [content-type: text/plain], actual: NOT [content-type: text/plain], test type: response_header_matches.string_match.exact",
    "actual: [content-length: 25], test type: response_header_matches.range_match",
    "expected: [x-ping-response: pong], actual: [x-ping-response: yes], test type: response_header_matches.string_match.exact",
    "expected: [has(x-ping-response):false], actual: [has(x-ping-response):true], test type: response_header_matches.present_match",
    "expected: [has(x-pong-response):true], actual: [has(x-pong-response):false], test type: response_header_matches.present_match",
];

enum Outcome {
    Ran(Vec<(String, bool, Vec<String>)>),
    Error(String),
}

fn run_pair(dir: &Path, config: &str, listener: Option<&str>, tests: &str) -> Outcome {
    let read = |p: &str| std::fs::read_to_string(dir.join(p)).map_err(|e| format!("{p}: {e}"));
    let cfg = match read(config)
        .and_then(|t| load_route_config_for_listener(&t, config, listener).map_err(|e| e.to_string()))
    {
        Ok((c, _)) => c,
        Err(e) => return Outcome::Error(e),
    };
    let suite = match read(tests).and_then(|t| parse_test_file(&t, tests).map_err(|e| e.to_string())) {
        Ok(s) => s,
        Err(e) => return Outcome::Error(e),
    };
    let run = run_suite(&cfg, &suite);
    Outcome::Ran(run.results.into_iter().map(|r| (r.test_name, r.passed, r.failures)).collect())
}

#[test]
fn router_check_pairs_match_upstream() {
    let dir = match corpus::dir("router-check") {
        Ok(d) => d,
        Err(reason) => {
            common::skip("router-check corpus", reason);
            return;
        }
    };
    let pairs = std::fs::read_to_string(dir.join("PAIRS.tsv")).expect("PAIRS.tsv is readable");
    let mut deviations = BTreeSet::new();
    let mut checked = 0;
    for line in pairs.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        let [config, tests, expected, ..] = cols[..] else {
            panic!("malformed PAIRS.tsv line: {line}");
        };
        let config = config.split(" (").next().unwrap_or(config);
        let tests = tests.split(" (").next().unwrap_or(tests);
        if !tests.contains('/') {
            // No stored test file: run the table with the test file covering the same routes.
            let Some((_, listener, proxy)) = UNPAIRED.iter().find(|(c, _, _)| *c == config) else {
                panic!("{config}: unpaired config without a stand-in test file");
            };
            match run_pair(&dir, config, Some(listener), proxy) {
                Outcome::Ran(results) if results.iter().all(|r| r.1) => {}
                _ => {
                    deviations.insert(config.to_string());
                }
            }
            // Without a listener a Bootstrap is an input error (upstream silently checks an
            // empty route table, which fails every test).
            assert!(matches!(run_pair(&dir, config, None, proxy), Outcome::Error(_)));
            continue;
        }
        let key = format!("{config}|{tests}");
        let outcome = run_pair(&dir, config, None, tests);
        checked += 1;
        match (expected, outcome) {
            ("expected-error", Outcome::Error(e)) => {
                assert!(
                    e.contains("INVALID_ARGUMENT")
                        && e.contains("envoy.config.route.v3.RouteConfiguration")
                        && e.contains("tests"),
                    "{key}: error text differs from upstream's: {e}"
                );
            }
            ("expected-error", Outcome::Ran(_)) => panic!("{key}: upstream rejects this input"),
            (_, Outcome::Error(e)) => panic!("{key}: unexpected error: {e}"),
            (_, Outcome::Ran(results)) => {
                let want: BTreeSet<&str> = EXPECTED_FAILURES
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, f)| f.iter().copied().collect())
                    .unwrap_or_default();
                if expected == "pass" {
                    assert!(want.is_empty(), "{key}: listed failures for a passing pair");
                } else {
                    assert!(!want.is_empty(), "{key}: no expected failures listed");
                }
                let got: BTreeSet<&str> =
                    results.iter().filter(|(_, passed, _)| !passed).map(|(n, _, _)| n.as_str()).collect();
                assert_eq!(got, want, "{key}: failing tests differ; results: {results:#?}");
                if key.ends_with("TestRoutesFailures.golden.proto.json") {
                    let lines = &results[0].2;
                    for l in FAILURE_LINES {
                        assert!(lines.iter().any(|x| x == l), "{key}: missing line {l}\n{lines:#?}");
                    }
                }
                if key == "current/TestRoutes.yaml|current/Weighted.golden.proto.json" {
                    let t2 = &results[1].2;
                    assert!(t2.contains(
                        &"expected: [cluster1], actual: [instant-server], test type: cluster_name"
                            .to_string()
                    ));
                    assert!(t2.contains(
                        &"expected: [test_virtual_cluster], actual: [other], test type: virtual_cluster_name"
                            .to_string()
                    ));
                }
            }
        }
    }
    assert!(checked >= 30, "only {checked} pairings were checked");
    let known: BTreeSet<String> = KNOWN_DEVIATIONS.iter().map(|(k, _)| k.to_string()).collect();
    assert_eq!(deviations, known, "the known-deviation list changed");
}
