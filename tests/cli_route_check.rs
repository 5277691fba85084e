//! `meshpath route-check` end to end: output lines, coverage and exit codes as
//! router_check_tool prints them.

mod common;
#[path = "common/corpus.rs"]
mod corpus;

use assert_cmd::Command;
use predicates::prelude::*;

const DIR: &str = "tests/fixtures/route-check";

fn cmd() -> Command {
    let mut c = Command::cargo_bin("meshpath").expect("binary builds");
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

#[test]
fn passing_tests_print_names_and_coverage() {
    cmd()
        .args(["route-check", "--config", &format!("{DIR}/routes.yaml")])
        .args(["--tests", &format!("{DIR}/tests.golden.proto.json"), "--details"])
        .assert()
        .success()
        .stdout("api\nredirect\nblue\nCurrent route coverage: 75%\n");
}

#[test]
fn comprehensive_coverage_weighs_checked_fields() {
    cmd()
        .args(["route-check", "-c", &format!("{DIR}/routes.yaml")])
        .args(["-t", &format!("{DIR}/tests.golden.proto.json"), "--covall"])
        .assert()
        .success()
        // api 3/5 fields + redirect 2/2 + blue 1/5 = 1.8 of 4 routes (weighted counts twice).
        .stdout("Current route coverage: 45%\n");
}

#[test]
fn fail_under_fails_with_the_tools_message() {
    cmd()
        .args(["route-check", "--config-path", &format!("{DIR}/routes.yaml")])
        .args(["--test-path", &format!("{DIR}/tests.golden.proto.json"), "-f", "80"])
        .assert()
        .code(1)
        .stderr("Failed to meet coverage requirement: 80%\n");
}

#[test]
fn a_failing_test_reports_what_differed() {
    cmd()
        .args(["route-check", "--config", &format!("{DIR}/routes.yaml")])
        .args(["--tests", &format!("{DIR}/failing.golden.proto.yaml"), "--only-show-failures"])
        .assert()
        .code(1)
        .stdout("")
        .stderr("green\nexpected: [blue], actual: [green], test type: cluster_name\n");
}

#[test]
fn an_unknown_assertion_is_an_input_error() {
    cmd()
        .args(["route-check", "--config", &format!("{DIR}/routes.yaml")])
        .args(["--tests", &format!("{DIR}/typo.golden.proto.json")])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cluster_nmae"));
}

#[test]
fn swapped_arguments_are_rejected_like_upstream() {
    cmd()
        .args(["route-check", "--config", &format!("{DIR}/tests.golden.proto.json")])
        .args(["--tests", &format!("{DIR}/routes.yaml")])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("INVALID_ARGUMENT"))
        .stderr(predicate::str::contains("no such field: 'tests'"));
}

#[test]
fn corpus_weighted_coverage_is_100_percent() {
    let dir = match corpus::dir("router-check") {
        Ok(dir) => dir,
        Err(reason) => return common::skip("router-check corpus", reason),
    };
    cmd()
        .arg("route-check")
        .arg("-c")
        .arg(dir.join("current/Weighted.yaml"))
        .arg("-t")
        .arg(dir.join("current/Weighted.golden.proto.json"))
        .arg("--details")
        .assert()
        .success()
        .stdout(predicate::str::contains("\nCurrent route coverage: 100%\n"));
    cmd()
        .arg("route-check")
        .arg("-c")
        .arg(dir.join("current/DetailedCoverage.yaml"))
        .arg("-t")
        .arg(dir.join("current/DetailedCoverage.golden.proto.json"))
        .arg("--detailed-coverage")
        .assert()
        .success()
        .stdout(predicate::str::is_match("route name: new_endpoint2-.+").unwrap())
        .stdout(predicate::str::is_match("route name: -.+").unwrap());
}

#[test]
fn why_explains_the_routers_choice() {
    cmd()
        .args(["route-check", "--config", &format!("{DIR}/routes.yaml")])
        .args(["--tests", &format!("{DIR}/failing.golden.proto.yaml"), "--only-show-failures", "--why"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "  why: virtual_hosts[0] \"web\" chosen: exact domain \"web.example.com\"",
        ))
        .stderr(predicate::str::contains(
            "  why: virtual_hosts[0].routes[0] \"api\" skipped: prefix \"/api/\" does not match path \"/\"",
        ))
        .stderr(predicate::str::contains(
            "  why: virtual_hosts[0].routes[2] \"split\" chosen: prefix \"/\" matches",
        ));
}

#[test]
fn a_bootstrap_is_read_through_its_listener() {
    let dir = match corpus::dir("router-check") {
        Ok(dir) => dir,
        Err(reason) => return common::skip("router-check corpus", reason),
    };
    let cfg = dir.join("extra-upstream-refs/ClusterHeaderBootstrap.yaml");
    let tests = dir.join("extra-upstream-refs/DefaultRuntime.golden.proto.json");
    cmd()
        .arg("route-check")
        .arg("-c")
        .arg(&cfg)
        .arg("-t")
        .arg(&tests)
        .args(["-l", "main"])
        .assert()
        .success()
        .stdout("Current route coverage: 66.6667%\n");
    cmd()
        .arg("route-check")
        .arg("-c")
        .arg(&cfg)
        .arg("-t")
        .arg(&tests)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--listener"));
}

/// The strict loader's words (router_check_tool: `INVALID_ARGUMENT ... no such field`), with
/// the file's own syntax named (YAML, not JSON) and the place of the field (file:line:col).
#[test]
fn a_misspelt_route_field_is_rejected_with_its_path_and_place() {
    cmd()
        .env("NO_COLOR", "1")
        .args(["route-check", "-c", &format!("{DIR}/typo-route.yaml")])
        .args(["-t", &format!("{DIR}/tests.golden.proto.json")])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "tests/fixtures/route-check/typo-route.yaml:6:13: Unable to parse YAML as proto \
             (INVALID_ARGUMENT: invalid YAML in envoy.config.route.v3.RouteAction @ \
             virtual_hosts[0].routes[0].route.clustr: no such field: 'clustr')",
        ));
}

/// A YAML value of the wrong shape: one message at file:line:col, the source shown once.
#[test]
fn a_yaml_shape_error_is_located_once() {
    let out = cmd()
        .env("NO_COLOR", "1")
        .args(["route-check", "-c", &format!("{DIR}/bad-shape.yaml")])
        .args(["-t", &format!("{DIR}/tests.golden.proto.json")])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tests/fixtures/route-check/bad-shape.yaml:3:12: expected sequence start"), "{err}");
    assert!(!err.contains("<input>"), "{err}");
    assert_eq!(err.matches("domains: 5").count(), 1, "{err}");
}

/// Full output (stdout then stderr) of upstream's own scenarios, snapshotted.
#[test]
fn corpus_outputs_are_stable() {
    let dir = match corpus::dir("router-check") {
        Ok(dir) => dir,
        Err(reason) => return common::skip("router-check corpus", reason),
    };
    let cases: &[(&str, &str, &[&str])] = &[
        ("TestRoutes.yaml", "TestRoutes.golden.proto.json", &["--details", "--covall"]),
        ("TestRoutes.yaml", "TestRoutesFailures.golden.proto.json", &["--only-show-failures", "--why"]),
        ("TestRoutes.yaml", "Weighted.golden.proto.json", &["--details"]),
        ("Redirect.yaml", "Redirect.golden.proto.json", &["--details", "--covall"]),
    ];
    let mut all = String::new();
    for (cfg, tests, flags) in cases {
        let out = cmd()
            .arg("route-check")
            .arg("-c")
            .arg(dir.join("current").join(cfg))
            .arg("-t")
            .arg(dir.join("current").join(tests))
            .args(*flags)
            .output()
            .expect("runs");
        all.push_str(&format!(
            "$ route-check -c {cfg} -t {tests} {}\n[exit {}]\n--- stdout\n{}--- stderr\n{}\n",
            flags.join(" "),
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    insta::assert_snapshot!(all);
}
