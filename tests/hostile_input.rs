//! Inputs as an attacker would craft them (docs/reliability.md): scenario files from a pull
//! request, captures and dumps from anywhere. Each must end in a short diagnostic and exit
//! code 2, never a crash, a hang, an echo of a file the scenario should not read, or raw
//! terminal escapes.

mod common;

use std::path::{Path, PathBuf};

use common::meshpath;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Out {
    let o = meshpath().args(args).output().expect("runs");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// A fresh folder for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("meshpath-hostile-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

// Rust's formatter takes widths up to u16::MAX; miette pads the label line to the column, so a
// column past 65,535 made it panic (exit 101). The window keeps the real line and column.
#[test]
fn an_error_past_column_65535_is_a_short_diagnostic() {
    let dir = scratch("long-line");
    let rules = dir.join("long.rules");
    let line = format!("-A INPUT {}-j BOGUS\u{1b}[31m", "-s 1.2.3.4 ".repeat(7000));
    std::fs::write(&rules, format!("*filter\n:INPUT ACCEPT [0:0]\n{line}\nCOMMIT\n")).unwrap();
    let o = run(&["netfilter", "check", s(&rules)]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    let col = line.find("BOGUS").unwrap() + 1;
    assert!(o.stderr.contains(&format!("long.rules:3:{col}: ")), "{}", o.stderr);
    assert!(o.stderr.contains(&format!("[{}:3:{col}]", s(&rules))), "{}", o.stderr);
    assert!(o.stderr.len() < 2_000, "{} bytes of stderr", o.stderr.len());
    assert!(!o.stderr.contains('\u{1b}'), "{}", o.stderr);

    // A minified config dump cut in half: the JSON reader stops at its last column.
    let dump = dir.join("cut.json");
    let listeners: Vec<String> = (0..20_000).map(|i| format!("{{\"name\":\"l{i}\"}}")).collect();
    let text = format!(
        "{{\"configs\":[{{\"@type\":\"type.googleapis.com/envoy.admin.v3.ListenersConfigDump\",\"dynamic_listeners\":[{}",
        listeners.join(",")
    );
    std::fs::write(&dump, &text[..200_000]).unwrap();
    let o = run(&["envoy", "summary", "--envoy", s(&dump)]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("cut.json:1:200000: "), "{}", o.stderr);
    assert!(o.stderr.len() < 2_000, "{} bytes of stderr", o.stderr.len());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A copy of the bundled bookinfo scenario in `dir` whose `iptables:` names `rules`.
fn scenario_naming(dir: &Path, rules: &str) -> PathBuf {
    let text = format!(
        "schema: meshpath.scenario/v1\npods:\n  productpage:\n    addresses: [10.244.0.5]\n    iptables: {rules}\nprobes:\n  - name: p\n    from: productpage\n    to: 10.96.0.20:9080\n"
    );
    let p = dir.join("x.scenario.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

// A scenario in a pull request must not make CI print a file outside the checkout (a
// service-account token, a private key) nor its credentials (`.git/config`).
#[test]
fn scenario_references_stay_under_the_root() {
    let dir = scratch("confine");
    let secret = dir.join("secret.txt");
    std::fs::write(&secret, "TOKEN=hunter2-do-not-print\n").unwrap();
    let inner = dir.join("repo/scenarios");
    std::fs::create_dir_all(&inner).unwrap();
    for rel in [s(&secret).to_string(), "../../secret.txt".to_string()] {
        let sc = scenario_naming(&inner, &rel);
        let o = run(&["check", s(&sc)]);
        assert_eq!(o.code, 2, "{rel}: {}{}", o.stdout, o.stderr);
        assert!(!o.stderr.contains("hunter2"), "{}", o.stderr);
        assert!(o.stderr.contains("lies outside"), "{}", o.stderr);
    }
    // Widened with --root, the file is read (and refused as a rule set, without its content).
    let sc = scenario_naming(&inner, "../../secret.txt");
    let o = run(&["check", s(&sc), "--root", s(&dir)]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("no rule set found"), "{}", o.stderr);
    // Hidden folders stay closed even under the root.
    std::fs::create_dir_all(dir.join("repo/.git")).unwrap();
    std::fs::write(dir.join("repo/.git/config"), "extraheader = AUTHORIZATION: basic c2VjcmV0\n").unwrap();
    let sc = scenario_naming(&inner, "../.git/config");
    let o = run(&["check", s(&sc), "--root", s(&dir.join("repo"))]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("hidden") && !o.stderr.contains("c2VjcmV0"), "{}", o.stderr);
    std::fs::remove_dir_all(&dir).unwrap();
}

// `/dev/zero` was read until memory ran out; a FIFO without a writer blocked forever.
#[cfg(unix)]
#[test]
fn devices_fifos_and_oversized_files_are_refused() {
    let o = run(&["netfilter", "check", "/dev/zero"]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("not a regular file"), "{}", o.stderr);
    let o = run(&["envoy", "summary", "--envoy", "/dev/zero"]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    let dir = scratch("fifo");
    let fifo = dir.join("pipe");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if made.is_ok_and(|s| s.success()) {
        let o = run(&["netfilter", "check", s(&fifo)]);
        assert_eq!(o.code, 2, "{}", o.stderr);
        assert!(o.stderr.contains("not a regular file"), "{}", o.stderr);
    }
    let big = dir.join("big.rules");
    std::fs::write(&big, "x".repeat(4096)).unwrap();
    let o = run(&["netfilter", "check", s(&big), "--max-input-size", "1K"]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("more than the input limit of 1024 bytes"), "{}", o.stderr);
    let o = run(&["netfilter", "check", s(&big), "--max-input-size", "1M"]);
    assert!(!o.stderr.contains("input limit"), "{}", o.stderr);
    std::fs::remove_dir_all(&dir).unwrap();
}

// The YAML reader's default budget (250,000 nodes) refused a valid dump of 1,000 listeners
// ("budget breached: Nodes 250001") that reads in a blink as JSON: the budget grows with the
// input. The listener is the fixture's virtualInbound (341 nodes), as Istio 1.25 writes it.
#[test]
fn a_yaml_dump_of_1000_listeners_reads() {
    let text = std::fs::read_to_string(common::dump("productpage.istio-1.25")).unwrap();
    let mut dump: serde_json::Value = serde_json::from_str(&text).unwrap();
    for c in dump["configs"].as_array_mut().unwrap() {
        if c["@type"].as_str().unwrap().ends_with("ListenersConfigDump") {
            let ls = c["dynamic_listeners"].as_array_mut().unwrap();
            let inbound = ls.iter().find(|l| l["name"] == "virtualInbound").unwrap().clone();
            *ls = (0..1000)
                .map(|i| {
                    let mut l = inbound.clone();
                    l["name"] = format!("virtualInbound-{i}").into();
                    l
                })
                .collect();
        }
    }
    let dir = scratch("yaml-dump");
    let path = dir.join("big.config_dump.yaml");
    std::fs::write(&path, serde_saphyr::to_string(&dump).unwrap()).unwrap();
    let o = run(&["envoy", "summary", "--envoy", s(&path)]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("LISTENERS (1000)"), "{}", o.stdout);
    std::fs::remove_dir_all(&dir).unwrap();
}

// 30,000 nested messages in a protobuf-text test file overflowed the stack (SIGSEGV/abort).
// JSON and YAML stop at their readers' own depth limits (128 and 64).
#[test]
fn deeply_nested_test_files_are_refused_with_a_message() {
    let dir = scratch("deep");
    let cases = [
        ("deep.pb_text", format!("tests {}{}", "{ a ".repeat(30_000), "}".repeat(30_000))),
        ("deep.json", format!("{}{}", "[".repeat(30_000), "]".repeat(30_000))),
        ("deep.yaml", format!("tests: {}{}\n", "[".repeat(30_000), "]".repeat(30_000))),
    ];
    for (name, text) in cases {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let o =
            run(&["route-check", "--config", "tests/fixtures/route-check/routes.yaml", "--tests", s(&path)]);
        assert_eq!(o.code, 2, "{name}: {}", o.stderr);
        assert!(o.stderr.len() < 2_000, "{name}: {} bytes of stderr", o.stderr.len());
    }
    let o = run(&[
        "route-check",
        "--config",
        "tests/fixtures/route-check/routes.yaml",
        "--tests",
        s(&dir.join("deep.pb_text")),
    ]);
    assert!(o.stderr.contains("nest deeper than 100"), "{}", o.stderr);
    std::fs::remove_dir_all(&dir).unwrap();
}

// A probe name, a description, a captured Host header are the input's text: printed raw, an
// ANSI escape could clear the terminal or hide lines of a CI log. Text, CSV and JSON carry
// them escaped (JSON as `\u001b`, which reads back as the same character).
#[test]
fn control_characters_of_the_input_are_escaped_in_every_report() {
    let dir = scratch("escapes");
    let repo = std::env::current_dir().unwrap();
    let sc = dir.join("x.scenario.yaml");
    std::fs::write(
        &sc,
        format!(
            "schema: meshpath.scenario/v1\ndescription: \"hidden\\u202Etxt\"\npods:\n  productpage:\n    addresses: [10.244.0.5]\n    iptables: {}/scenarios/istio-1.25-redirect.v4.iptables-save\nprobes:\n  - name: \"evil\\e[2J\\rname\"\n    from: productpage\n    to: 10.96.0.20:9080\n",
            repo.display()
        ),
    )
    .unwrap();
    for format in ["text", "json"] {
        let o = run(&["check", s(&sc), "--root", "/", "--format", format]);
        assert!(o.code == 0 || o.code == 1, "{format}: {}", o.stderr);
        assert!(!o.stdout.contains(['\u{1b}', '\r', '\u{202e}']), "{format}: {:?}", o.stdout);
        assert!(o.stdout.contains("evil"), "{format}: {}", o.stdout);
    }
    let o = run(&["check", s(&sc), "--root", "/", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("still JSON");
    assert!(v.to_string().contains("evil\\u001b[2J\\rname"), "{v}");

    // An HTTP request whose Host header carries a right-to-left override and an 8-bit CSI (HTTP
    // parsers refuse 7-bit controls there), replayed as a table and as CSV.
    let tcp = || etherparse::PacketBuilder::ipv4([10, 244, 0, 5], [10, 96, 0, 20], 64);
    let (mut syn, mut get) = (Vec::new(), Vec::new());
    tcp().tcp(40000, 9080, 1000, 1024).syn().write(&mut syn, &[]).unwrap();
    tcp()
        .tcp(40000, 9080, 1001, 1024)
        .ack(1)
        .psh()
        .write(&mut get, "GET / HTTP/1.1\r\nHost: a\u{202e}b\u{9b}2Jc\r\n\r\n".as_bytes())
        .unwrap();
    let mut w = meshpath::capture::writer::PcapWriter::new(
        Vec::new(),
        meshpath::capture::linktype::RAW,
        65535,
        false,
    )
    .unwrap();
    for (i, p) in [syn, get].iter().enumerate() {
        w.write_packet(1_700_000_000_000_000_000 + i as u64 * 1000, p, p.len() as u32).unwrap();
    }
    let pcap = dir.join("host.pcap");
    std::fs::write(&pcap, w.into_inner()).unwrap();
    let pod = [
        "--pod",
        "productpage",
        "--iptables",
        common::RULES_1_25,
        "--pod-ip",
        "10.244.0.5",
        "--envoy",
        "tests/fixtures/mesh/productpage.istio-1.25.config_dump.json",
    ];
    for format in ["text", "csv"] {
        let o = run(&[&["replay", s(&pcap), "--format", format][..], &pod[..]].concat());
        assert_eq!(o.code, 0, "{format}: {}", o.stderr);
        assert!(!o.stdout.contains(['\u{202e}', '\u{9b}']), "{format}: {:?}", o.stdout);
        assert!(o.stdout.contains("a\\u{202e}b\\u{9b}2Jc"), "{format}: {}", o.stdout);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

// `weight: .nan` compared false with every weight, so the expectation always passed.
#[test]
fn a_weight_that_is_not_a_share_is_refused() {
    let dir = scratch("nan");
    let repo = std::env::current_dir().unwrap();
    for weight in [".nan", "1.5", "-.inf"] {
        let sc = dir.join("w.scenario.yaml");
        std::fs::write(
            &sc,
            format!(
                "schema: meshpath.scenario/v1\npods:\n  productpage:\n    addresses: [10.244.0.5]\n    iptables: {}/scenarios/istio-1.25-redirect.v4.iptables-save\nprobes:\n  - name: p\n    from: productpage\n    to: 10.96.0.20:9080\n    expect:\n      paths:\n        - weight: {weight}\n",
                repo.display()
            ),
        )
        .unwrap();
        let o = run(&["check", s(&sc), "--root", "/"]);
        assert_eq!(o.code, 2, "{weight}: {}{}", o.stdout, o.stderr);
        assert!(o.stderr.contains("w.scenario.yaml:12:19: weight"), "{weight}: {}", o.stderr);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
