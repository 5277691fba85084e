//! The bundled incidents in `scenarios/`: every probe passes `meshpath check`, and breaking one
//! expectation (a copy of an incident with the fix's expectation on the broken snapshot) makes
//! `check` fail with exit code 1 and say what differed.

use std::path::Path;

use assert_cmd::Command;

fn meshpath() -> Command {
    let mut c = Command::cargo_bin("meshpath").expect("binary");
    c.env("NO_COLOR", "1").env("COLUMNS", "120");
    c
}

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
        std::fs::copy(&path, incident.join(path.file_name().expect("name"))).expect("copies");
    }
    let file = incident.join("vs-subset-without-dr.scenario.yaml");
    let text = std::fs::read_to_string(&file).expect("reads");
    let start = text.find("    expect:").expect("the probe has expectations");
    let broken = format!("{}    expect:\n      ending: delivered\n      pod: reviews-v1\n", &text[..start]);
    std::fs::write(&file, broken).expect("writes");
    let o = meshpath().arg("check").arg(&file).output().expect("runs");
    let _ = std::fs::remove_dir_all(&tmp);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{stdout}{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("FAIL "), "{stdout}");
    assert!(stdout.contains("expected delivered, got envoy_response"), "{stdout}");
}
