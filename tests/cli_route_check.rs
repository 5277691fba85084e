//! `meshpath route-check` end to end: output lines, coverage and exit codes as
//! router_check_tool prints them.

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
        .args([
            "--tests",
            &format!("{DIR}/tests.golden.proto.json"),
            "--details",
        ])
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
        .args([
            "route-check",
            "--config-path",
            &format!("{DIR}/routes.yaml"),
        ])
        .args([
            "--test-path",
            &format!("{DIR}/tests.golden.proto.json"),
            "-f",
            "80",
        ])
        .assert()
        .code(1)
        .stderr("Failed to meet coverage requirement: 80%\n");
}

#[test]
fn a_failing_test_reports_what_differed() {
    cmd()
        .args(["route-check", "--config", &format!("{DIR}/routes.yaml")])
        .args([
            "--tests",
            &format!("{DIR}/failing.golden.proto.yaml"),
            "--only-show-failures",
        ])
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
        .args([
            "route-check",
            "--config",
            &format!("{DIR}/tests.golden.proto.json"),
        ])
        .args(["--tests", &format!("{DIR}/routes.yaml")])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("INVALID_ARGUMENT"))
        .stderr(predicate::str::contains("no such field: 'tests'"));
}

#[test]
fn corpus_weighted_coverage_is_100_percent() {
    let Ok(dir) = meshpath::corpus::dir("router-check") else {
        println!("SKIP router-check corpus: not found");
        return;
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
