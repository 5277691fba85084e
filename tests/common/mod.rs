//! What the CLI tests share: the binary with a fixed environment, and the mesh fixtures of
//! tests/fixtures/mesh (README.md there lists them) with the bundled rule sets.
#![allow(dead_code)] // each test file uses part of it

use assert_cmd::Command;

pub const MESH: &str = "tests/fixtures/mesh";
pub const RULES_1_1: &str = "scenarios/istio-1.1-redirect.v4.iptables-save";
pub const RULES_1_25: &str = "scenarios/istio-1.25-redirect.v4.iptables-save";
pub const RULES_1_25_DNS: &str = "tests/fixtures/mesh/istio-1.25-dns.v4.iptables-save";
pub const RULES_1_25_TPROXY: &str = "tests/fixtures/mesh/istio-1.25-tproxy.v4.iptables-save";
pub const PRODUCTPAGE_IP: &str = "10.244.0.5";

/// The `meshpath` binary without colours and with a fixed terminal width, so diagnostics
/// render the same everywhere.
pub fn meshpath() -> Command {
    let mut c = Command::cargo_bin("meshpath").expect("binary");
    c.env("NO_COLOR", "1").env("COLUMNS", "120");
    c
}

/// A fixture config dump by its stem.
pub fn dump(name: &str) -> String {
    format!("{MESH}/{name}.config_dump.json")
}

/// `command` (trace, explain) in pod productpage: its rule set, dump and app socket, then the
/// case's own arguments.
pub fn productpage(command: &str, rules: &str, envoy: &str, listen: &str, rest: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        command,
        "--pod",
        "productpage",
        "--iptables",
        rules,
        "--envoy",
        &dump(envoy),
        "--pod-ip",
        PRODUCTPAGE_IP,
        "--listen",
        listen,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(rest.iter().map(|s| s.to_string()));
    args
}

/// Whether every test must really run: in CI (`CI` set, as CI services do, to anything but
/// empty, `0` or `false`) or when `MESHPATH_REQUIRE_ALL=1` (set by `.ci/run`).
pub fn require_all() -> bool {
    let set = |name: &str| {
        std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
    };
    set("CI") || set("MESHPATH_REQUIRE_ALL")
}

/// A test that cannot run here (no root, a missing tool, no corpus): prints one
/// `SKIP <what>: <reason>` line so the caller can return and pass. Where every test must run
/// ([`require_all`]), it fails instead, so a missing tool or corpus cannot pass silently.
pub fn skip(what: &str, reason: impl std::fmt::Display) {
    if require_all() {
        panic!("SKIP {what}: {reason} (not allowed in CI: CI or MESHPATH_REQUIRE_ALL is set)");
    }
    println!("SKIP {what}: {reason}");
}
