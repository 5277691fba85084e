//! The bundled incidents in `scenarios/`: every probe passes `meshpath check`, and breaking one
//! expectation (a copy of an incident with the fix's expectation on the broken snapshot) makes
//! `check` fail with exit code 1 and say what differed.

mod common;

use std::path::Path;

use common::meshpath;

#[test]
fn every_bundled_probe_passes() {
    let o = meshpath().args(["check", "scenarios/"]).output().expect("runs");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&o.stderr));
    for incident in [
        "1-serviceentry-two-addresses",
        "2-serviceentry-443-takeover",
        "3-app-on-pod-ip",
        "4-bookinfo-packet-life",
        "5-vm-migration",
    ] {
        assert!(stdout.contains(&format!("PASS scenarios/{incident}/")), "{incident} ran:\n{stdout}");
    }
    assert!(!stdout.contains("FAIL"), "{stdout}");
    assert!(!stdout.contains("NONE"), "every bundled probe has expectations:\n{stdout}");
}

/// The 503 NC probe of incident 4 with the fixed variant's expectation (delivered in
/// reviews-v1): the snapshot without the DestinationRule must fail it. The incident is copied
/// to a temporary folder (with the rule sets it points at) so `scenarios/` stays untouched.
#[test]
fn a_broken_expectation_fails_the_check() {
    let tmp = std::env::temp_dir().join(format!("meshpath-bundled-{}", std::process::id()));
    let incident = tmp.join("4-bookinfo-packet-life");
    std::fs::create_dir_all(&incident).expect("temp dir");
    for entry in std::fs::read_dir("scenarios").expect("scenarios/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "iptables-save") {
            std::fs::copy(&path, tmp.join(path.file_name().expect("name"))).expect("copies");
        }
    }
    let dir = Path::new("scenarios/4-bookinfo-packet-life");
    for entry in std::fs::read_dir(dir).expect("incident folder") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            continue; // the mtls/ variants
        }
        std::fs::copy(&path, incident.join(path.file_name().expect("name"))).expect("copies");
    }
    let file = incident.join("vs-subset-without-dr.scenario.yaml");
    let text = std::fs::read_to_string(&file).expect("reads");
    let start = text.find("    expect:").expect("the probe has expectations");
    let broken = format!("{}    expect:\n      ending: delivered\n      pod: reviews-v1\n", &text[..start]);
    std::fs::write(&file, broken).expect("writes");
    // The incident's files name the shared rule sets one folder up (`../`).
    let o = meshpath().arg("check").arg(&file).arg("--root").arg(&tmp).output().expect("runs");
    let _ = std::fs::remove_dir_all(&tmp);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{stdout}{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("FAIL "), "{stdout}");
    assert!(stdout.contains("expected delivered, got envoy_response"), "{stdout}");
}

fn explain(file: &str, probe: &str) -> String {
    let o = meshpath()
        .args(["explain", "--scenario", &format!("scenarios/{file}"), "--probe", probe])
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// One `explain` report per incident, on the probe that shows it.
#[test]
fn explain_each_incident() {
    for (name, file, probe) in [
        (
            "incident_1_allow_any",
            "1-serviceentry-two-addresses/before.scenario.yaml",
            "172.16.0.1 falls through to allow_any",
        ),
        (
            "incident_2_takeover",
            "2-serviceentry-443-takeover/before.scenario.yaml",
            "baidu.com goes to the internal service",
        ),
        (
            "incident_2_sidecar_scope",
            "2-serviceentry-443-takeover/sidecar-scope.scenario.yaml",
            "www.googleapis.com goes to the internal service too",
        ),
        (
            "incident_3_refused",
            "3-app-on-pod-ip/istio-1.1.scenario.yaml",
            "reviews calls productpage, Envoy's 127.0.0.1 upstream is refused",
        ),
        (
            "incident_3_loop",
            "3-app-on-pod-ip/pod-ip-endpoint.scenario.yaml",
            "reviews calls productpage, Envoy loops into 15001",
        ),
        (
            "incident_3_istio_1_25",
            "3-app-on-pod-ip/istio-1.25.scenario.yaml",
            "reviews calls productpage, delivered from 127.0.0.6",
        ),
        (
            "incident_4_packet_life",
            "4-bookinfo-packet-life/packet-life.scenario.yaml",
            "productpage calls reviews, first endpoint",
        ),
        (
            "incident_4_no_destination_rule",
            "4-bookinfo-packet-life/vs-subset-without-dr.scenario.yaml",
            "productpage calls reviews, 503 NC",
        ),
        (
            "incident_5_short_host",
            "5-vm-migration/short-host.scenario.yaml",
            "vm.example.com goes to the VM and the pod by the default route",
        ),
        (
            "incident_5_dns",
            "5-vm-migration/short-host.scenario.yaml",
            "pilot-agent answers vm.example.com with the auto-allocated address",
        ),
    ] {
        insta::assert_snapshot!(name, explain(file, probe));
    }
}

#[test]
fn explain_markdown_of_the_loop() {
    let o = meshpath()
        .args([
            "explain",
            "--scenario",
            "scenarios/3-app-on-pod-ip/pod-ip-endpoint.scenario.yaml",
            "--probe",
            "reviews calls productpage, Envoy loops into 15001",
            "--format",
            "markdown",
        ])
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(0));
    insta::assert_snapshot!("incident_3_loop_markdown", String::from_utf8_lossy(&o.stdout));
}
