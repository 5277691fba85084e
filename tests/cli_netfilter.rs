//! `meshpath netfilter check|trace` end to end, with snapshots of what a user sees.

use assert_cmd::Command;

fn meshpath() -> Command {
    let mut c = Command::cargo_bin("meshpath").expect("binary");
    c.env("NO_COLOR", "1").env("COLUMNS", "100");
    c
}

fn stdout(args: &[&str]) -> String {
    let out = meshpath().args(args).output().expect("runs");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

const ISTIO_1_1: &str = "scenarios/istio-1.1-redirect.v4.iptables-save";
const ISTIO_1_25: &str = "scenarios/istio-1.25-redirect.v4.iptables-save";

#[test]
fn check_summarises_tables() {
    insta::assert_snapshot!(stdout(&["netfilter", "check", ISTIO_1_1, ISTIO_1_25]));
}

#[test]
fn check_reads_an_istio_init_log() {
    insta::assert_snapshot!(stdout(&["netfilter", "check", "tests/fixtures/netfilter/istio-init.log"]));
}

#[test]
fn unsupported_module_is_a_located_diagnostic() {
    let out = meshpath()
        .args(["netfilter", "check", "tests/fixtures/netfilter/bad-module.iptables-save"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad-module.iptables-save:5:20"), "{err}");
    assert!(err.contains("match module `limit` is not supported"), "{err}");
    assert!(err.contains("-A INPUT -p tcp -m limit"), "the snippet is shown: {err}");
    assert!(err.contains("--lenient"), "{err}");
}

#[test]
fn lenient_keeps_and_reports_unknown_rules() {
    let out =
        stdout(&["netfilter", "check", "--lenient", "tests/fixtures/netfilter/bad-module.iptables-save"]);
    assert!(out.contains("unsupported, kept as unknown: line 5: match module `limit`"), "{out}");
}

#[test]
fn missing_file_says_which() {
    let out = meshpath().args(["netfilter", "check", "nope.rules"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read nope.rules"));
}

#[test]
fn trace_app_to_cluster_ip_text() {
    insta::assert_snapshot!(stdout(&[
        "netfilter",
        "trace",
        "--iptables",
        ISTIO_1_25,
        "--pod-ip",
        "10.244.0.5",
        "--from",
        "uid:1000",
        "--dst",
        "10.96.0.10:80",
    ]));
}

#[test]
fn trace_app_to_cluster_ip_json() {
    insta::assert_snapshot!(stdout(&[
        "netfilter",
        "trace",
        "--iptables",
        ISTIO_1_25,
        "--pod-ip",
        "10.244.0.5",
        "--from",
        "uid:1000:0",
        "--dst",
        "10.96.0.10:80",
        "--format",
        "json",
    ]));
}

#[test]
fn trace_inbound_redirect_to_15006() {
    insta::assert_snapshot!(stdout(&[
        "netfilter",
        "trace",
        "--iptables",
        ISTIO_1_25,
        "--pod-ip",
        "10.244.0.5",
        "--from",
        "outside:10.244.1.7",
        "--dst",
        "10.244.0.5:9080",
        "--listen",
        "tcp:0.0.0.0:15006",
    ]));
}

#[test]
fn trace_envoy_to_own_pod_ip_with_2019_rules_returns_to_15001() {
    insta::assert_snapshot!(stdout(&[
        "netfilter",
        "trace",
        "--iptables",
        ISTIO_1_1,
        "--pod-ip",
        "10.244.0.5",
        "--from",
        "envoy",
        "--dst",
        "10.244.0.5:9080",
        "--listen",
        "tcp:0.0.0.0:15001:envoy",
    ]));
}

#[test]
fn trace_needs_the_pods_addresses_for_inbound() {
    let out = meshpath()
        .args([
            "netfilter",
            "trace",
            "--iptables",
            ISTIO_1_25,
            "--from",
            "outside:10.0.0.1",
            "--dst",
            "10.244.0.5:80",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--pod-ip"));
}

#[test]
fn trace_is_deterministic() {
    let args = [
        "netfilter",
        "trace",
        "--iptables",
        ISTIO_1_25,
        "--pod-ip",
        "10.244.0.5",
        "--dst",
        "1.1.1.1:443",
        "--format",
        "json",
    ];
    assert_eq!(stdout(&args), stdout(&args));
}

/// `meshpath ... | head`: when the reader closes the pipe early, the command ends quietly
/// with status 0, as grep does (POSIX write(2): EPIPE once no process has the pipe open for
/// reading; Rust ignores SIGPIPE, so the write returns the error). Any command's output goes
/// through the same writer; `netfilter check` on the same file 2,000 times prints far more
/// than a pipe buffer holds.
#[test]
fn closed_pipe_ends_quietly_with_status_0() {
    use std::io::Read;
    use std::process::Stdio;
    let bin = assert_cmd::cargo::cargo_bin("meshpath");
    let mut child = std::process::Command::new(bin)
        .args(["netfilter", "check"])
        .args(std::iter::repeat_n(ISTIO_1_25, 2000))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    let mut first = [0u8; 64];
    child.stdout.take().expect("stdout").read_exact(&mut first).expect("first bytes");
    // The read end is dropped here: the pipe is closed while meshpath still has output.
    let out = child.wait_with_output().expect("waits");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

/// A local delivery with no socket listening is one result, stated once: the kernel refuses
/// it (RFC 1122 §4.1.3.1: UDP to a port without a listener gets ICMP port unreachable;
/// RFC 9293 §3.10.7.1: TCP gets a RST), so the trace does not also say "delivered locally".
#[test]
fn trace_without_a_listening_socket_ends_refused_once() {
    let out = stdout(&[
        "netfilter",
        "trace",
        "--iptables",
        ISTIO_1_25,
        "--pod-ip",
        "10.244.0.5",
        "--from",
        "uid:0",
        "--proto",
        "udp",
        "--src",
        "10.244.0.5",
        "--dst",
        "127.0.0.1:9999",
    ]);
    let last = out.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(
            "result: refused: no known socket listens on udp 127.0.0.1:9999 (arrived via lo; \
             the kernel answers ICMP port unreachable)"
        ),
        "{out}"
    );
    assert_eq!(out.matches("no known socket").count(), 1, "{out}");
    assert!(!out.contains("delivered locally"), "{out}");
}
