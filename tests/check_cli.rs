//! `meshpath check` and `trace --scenario` end to end on the scenario fixtures
//! (tests/fixtures/scenarios: `pass/` all pass, `fail/` has one failing probe, `bad/` files
//! that must not load).

mod common;

use std::path::{Path, PathBuf};

use common::meshpath;

const PASS: &str = "tests/fixtures/scenarios/pass";
const FAIL: &str = "tests/fixtures/scenarios/fail";
const BAD: &str = "tests/fixtures/scenarios/bad";

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn check(args: &[&str]) -> Out {
    let o = meshpath().arg("check").args(args).output().expect("runs");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

#[test]
fn passing_scenarios_exit_0() {
    let o = check(&[PASS]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(o
        .stdout
        .contains("PASS tests/fixtures/scenarios/pass/bookinfo.scenario.yaml: productpage calls reviews"));
    assert!(o
        .stdout
        .contains("NONE tests/fixtures/scenarios/pass/bookinfo.scenario.yaml: own pod ip (no expectations)"));
    assert!(
        o.stdout.ends_with("4 probes: 3 passed, 0 failed, 1 without expectations (1 scenario file)\n"),
        "{}",
        o.stdout
    );
}

#[test]
fn a_failing_probe_exits_1_and_names_the_mismatch() {
    let o = check(&[FAIL]);
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    assert!(o.stdout.contains("ending: expected delivered, got envoy_response 503 UF in productpage"));
    insta::assert_snapshot!("failing_probe", o.stdout);
}

#[test]
fn failing_and_passing_files_together_still_exit_1() {
    let o = check(&[PASS, FAIL]);
    assert_eq!(o.code, 1);
    assert!(
        o.stdout.ends_with("6 probes: 4 passed, 1 failed, 1 without expectations (2 scenario files)\n"),
        "{}",
        o.stdout
    );
}

fn bad(name: &str) -> Out {
    let o = check(&[&format!("{BAD}/{name}.scenario.yaml")]);
    assert_eq!(o.code, 2, "{name}: {}{}", o.stdout, o.stderr);
    o
}

#[test]
fn bad_value_points_at_it() {
    let o = bad("bad-yaml");
    assert!(o.stderr.contains("bad-yaml.scenario.yaml:4:17"), "{}", o.stderr);
    insta::assert_snapshot!("bad_value", o.stderr);
}

#[test]
fn yaml_syntax_error_has_line_and_column() {
    let o = bad("syntax");
    assert!(o.stderr.contains("syntax.scenario.yaml:"), "{}", o.stderr);
    insta::assert_snapshot!("yaml_syntax", o.stderr);
}

#[test]
fn unknown_key_points_at_it() {
    let o = bad("unknown-key");
    assert!(o.stderr.contains("unknown-key.scenario.yaml:10:5"), "{}", o.stderr);
    insta::assert_snapshot!("unknown_key", o.stderr);
}

#[test]
fn unknown_pod_points_at_from() {
    let o = bad("unknown-pod");
    assert!(o.stderr.contains("unknown-pod.scenario.yaml:8:11"), "{}", o.stderr);
    insta::assert_snapshot!("unknown_pod", o.stderr);
}

#[test]
fn duplicate_probe_points_at_the_second_name() {
    let o = bad("duplicate-probe");
    assert!(o.stderr.contains("duplicate-probe.scenario.yaml:10:11"), "{}", o.stderr);
    insta::assert_snapshot!("duplicate_probe", o.stderr);
}

#[test]
fn missing_file_points_at_the_path() {
    let o = bad("missing-file");
    assert!(o.stderr.contains("missing-file.scenario.yaml:6:12"), "{}", o.stderr);
    insta::assert_snapshot!("missing_file", o.stderr);
}

#[test]
fn unparsable_rules_point_at_the_path_and_say_why() {
    let o = bad("bad-rules");
    assert!(o.stderr.contains("bad-rules.scenario.yaml:5:15"), "{}", o.stderr);
    assert!(o.stderr.contains("match module `limit` is not supported"), "{}", o.stderr);
}

#[test]
fn a_bad_file_does_not_stop_the_others() {
    let o = check(&[BAD, PASS]);
    assert_eq!(o.code, 2);
    assert!(o
        .stdout
        .contains("PASS tests/fixtures/scenarios/pass/bookinfo.scenario.yaml: productpage calls reviews"));
    assert!(o.stdout.contains("7 scenario files or paths could not be read"), "{}", o.stdout);
}

#[test]
fn missing_path_is_bad_input() {
    let o = check(&["tests/fixtures/scenarios/nothere"]);
    assert_eq!(o.code, 2);
}

#[test]
fn directory_without_scenarios_is_bad_input() {
    let o = check(&["tests/fixtures/mesh"]);
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("tests/fixtures/mesh: no *.scenario.yaml"), "{}", o.stderr);
}

fn tmp(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("check-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

#[test]
fn junit_report() {
    let d = tmp("junit");
    let xml = d.join("report.xml");
    let o = check(&[
        PASS,
        FAIL,
        &format!("{BAD}/unknown-pod.scenario.yaml"),
        "--junit",
        xml.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.code, 2);
    let report = std::fs::read_to_string(&xml).expect("report written");
    assert!(report.contains("<failure message=\"ending: expected delivered"));
    insta::assert_snapshot!("junit", report);
}

#[test]
fn json_report() {
    let o = check(&["--format", "json", FAIL]);
    assert_eq!(o.code, 1);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("JSON");
    assert_eq!(v["schema"], "meshpath.check/v1");
    assert_eq!(v["summary"]["failed"], 1);
    assert_eq!(v["files"][0]["probes"][0]["status"], "fail");
    assert_eq!(v["files"][0]["probes"][1]["status"], "pass");
}

/// A copy of a fixture scenario in a temp dir, its relative paths made absolute.
fn copy(fixture: &str, dir: &Path) -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = repo.join(fixture);
    let text = std::fs::read_to_string(&src).expect("fixture");
    let text = text
        .replace("../../../../scenarios/", &format!("{}/scenarios/", repo.display()))
        .replace("../../mesh/", &format!("{}/tests/fixtures/mesh/", repo.display()));
    let dst = dir.join(src.file_name().expect("name"));
    std::fs::write(&dst, text).expect("copy");
    dst
}

#[test]
fn update_rewrites_failing_and_missing_expectations_only() {
    let d = tmp("update");
    let a = copy("tests/fixtures/scenarios/fail/istio-1.1.scenario.yaml", &d);
    let b = copy("tests/fixtures/scenarios/pass/bookinfo.scenario.yaml", &d);
    let before_b = std::fs::read_to_string(&b).expect("read");
    // The copies name the repository's files by absolute paths: widen the root to reach them.
    let o = check(&["--update", d.to_str().expect("utf-8"), "--root", "/"]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    let clean =
        |s: &str| s.replace(&d.display().to_string(), "[tmp]").replace(env!("CARGO_MANIFEST_DIR"), "[repo]");
    insta::assert_snapshot!("update_output", clean(&o.stdout));
    insta::assert_snapshot!("update_failing_file", clean(&std::fs::read_to_string(&a).expect("read")));
    // The passing probes' text is untouched; only the probe without expectations gained some.
    let after_b = std::fs::read_to_string(&b).expect("read");
    assert!(after_b.starts_with(&before_b), "{after_b}");
    assert!(after_b[before_b.len()..].starts_with("    expect:\n      ending: delivered\n"), "{after_b}");
    let again = check(&[d.to_str().expect("utf-8")]);
    assert_eq!(again.code, 0, "{}", again.stdout);
    assert!(
        again.stdout.contains("6 probes: 6 passed, 0 failed, 0 without expectations"),
        "{}",
        again.stdout
    );
}

#[test]
fn trace_probe_equals_trace_flags() {
    let scenario = "tests/fixtures/scenarios/pass/bookinfo.scenario.yaml";
    for format in ["text", "json"] {
        let by_probe = meshpath()
            .args([
                "trace",
                "--scenario",
                scenario,
                "--probe",
                "productpage calls reviews",
                "--format",
                format,
            ])
            .output()
            .expect("runs");
        assert!(by_probe.status.success(), "{}", String::from_utf8_lossy(&by_probe.stderr));
        let by_flags = meshpath()
            .args([
                "trace",
                "--pod",
                "productpage",
                "--iptables",
                "scenarios/istio-1.25-redirect.v4.iptables-save",
                "--envoy",
                "tests/fixtures/mesh/productpage.istio-1.25.config_dump.json",
                "--pod-ip",
                "10.244.0.5",
                "--listen",
                "tcp:0.0.0.0:9080",
                "--peer",
                "reviews=10.244.1.7,scenarios/istio-1.25-redirect.v4.iptables-save,tests/fixtures/mesh/reviews.istio-1.25.config_dump.json,tcp:0.0.0.0:9080",
                "--dst",
                "10.96.0.20:9080",
                "--host",
                "reviews:9080",
                "--path",
                "/reviews/0",
                "--format",
                format,
            ])
            .output()
            .expect("runs");
        assert!(by_flags.status.success(), "{}", String::from_utf8_lossy(&by_flags.stderr));
        assert_eq!(String::from_utf8_lossy(&by_probe.stdout), String::from_utf8_lossy(&by_flags.stdout));
    }
}

#[test]
fn trace_scenario_with_flags_for_the_connection() {
    let scenario = "tests/fixtures/scenarios/pass/bookinfo.scenario.yaml";
    let o = meshpath()
        .args([
            "trace",
            "--scenario",
            scenario,
            "--pod",
            "reviews",
            "--dst",
            "10.244.1.7:9080",
            "--format",
            "json",
        ])
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["paths"][0]["ending"]["kind"], "delivered");
    assert_eq!(v["paths"][0]["ending"]["pod"], "reviews");
    let o = meshpath().args(["trace", "--scenario", scenario, "--probe", "nothere"]).output().expect("runs");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("the probes are: productpage calls reviews"));
}
