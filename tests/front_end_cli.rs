//! The one front end: the same pod flags model the same pod in every command, the deprecated
//! spellings still work (with one warning line each), and `--output FILE` writes the report.

mod common;

use common::{meshpath, MESH, PRODUCTPAGE_IP, RULES_1_25};
use serde_json::Value;

const TPROXY_RULES: &str = "tests/fixtures/mesh/istio-1.25-tproxy.v4.iptables-save";
const TPROXY_DUMP: &str = "tests/fixtures/mesh/productpage.istio-1.25-tproxy.config_dump.json";
const SAME_POD: &str = "tests/fixtures/scenarios/same-pod/productpage.scenario.yaml";
const ENVOY_DUMP: &str = "tests/fixtures/envoy/sidecar.json";

struct Run {
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    let o = meshpath().args(args).output().expect("runs");
    let r = Run {
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    assert!(o.status.success(), "{args:?}: {}{}", r.stdout, r.stderr);
    r
}

fn json(args: &[&str]) -> Value {
    serde_json::from_str(&run(args).stdout).expect("JSON")
}

// ---------------------------------------------------------------------------------------------
// The same pod everywhere: one probe through `netfilter trace`, `trace` and a scenario file; the
// kernel part (the rules that matched, in order, and where the kernel delivered) must agree.

/// The rule lines a `netfilter trace` matched, and the socket its packet was delivered to.
fn netfilter_kernel(v: &Value) -> (Vec<u64>, Option<String>) {
    let lines = v["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["kind"] == "rule")
        .map(|s| s["line"].as_u64().expect("line"))
        .collect();
    (lines, v["result"]["socket"].as_str().map(str::to_string))
}

/// The rule lines of a trace's first kernel hop: its netfilter steps before Envoy takes the
/// connection. `trace --format json` names a rule by `file:line` in `source`.
fn trace_kernel(v: &Value) -> Vec<u64> {
    let paths = v["paths"].as_array().expect("paths");
    assert_eq!(paths.len(), 1, "{v}");
    paths[0]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .take_while(|s| s["layer"] != "envoy")
        .filter(|s| s["layer"] == "netfilter")
        .filter_map(|s| s["source"].as_str()?.rsplit_once(':')?.1.parse().ok())
        .collect()
}

fn pod_flags(with_dump: bool) -> Vec<&'static str> {
    let mut f = vec!["--iptables", TPROXY_RULES, "--pod-ip", PRODUCTPAGE_IP];
    if with_dump {
        f.extend(["--envoy", TPROXY_DUMP, "--listen", "tcp:0.0.0.0:9080"]);
    }
    f
}

/// One probe four ways: `netfilter trace` and `trace` with the pod flags, `netfilter trace` on
/// the scenario's pod and `trace` of the scenario's probe.
fn same_probe(pod: &str, with_dump: bool, from: &str, probe: &str) -> (Vec<u64>, Option<String>, Vec<u64>) {
    let dst = format!("{PRODUCTPAGE_IP}:9080");
    let connection = ["--from", from, "--dst", dst.as_str(), "--format", "json"];
    let flags = pod_flags(with_dump);
    let nf = json(&[&["netfilter", "trace"], &flags[..], &connection[..]].concat());
    let nf_scenario =
        json(&[&["netfilter", "trace", "--scenario", SAME_POD, "--pod", pod], &connection[..]].concat());
    let tr = json(&[&["trace"], &flags[..], &connection[..]].concat());
    let tr_scenario = json(&["trace", "--scenario", SAME_POD, "--probe", probe, "--format", "json"]);
    let (lines, socket) = netfilter_kernel(&nf);
    assert_eq!(
        netfilter_kernel(&nf_scenario),
        (lines.clone(), socket.clone()),
        "netfilter trace: flags vs scenario"
    );
    assert_eq!(trace_kernel(&tr), trace_kernel(&tr_scenario), "trace: flags vs scenario");
    (lines, socket, trace_kernel(&tr))
}

/// Istio 1.25 TPROXY rules: the app's connection to its own pod IP returns from ISTIO_OUTPUT
/// (line 44, `-o lo ! -d 127.0.0.1/32 -m owner ! --uid-owner 1337 -j RETURN`) and from
/// ISTIO_INBOUND (line 20) and reaches the app's socket.
#[test]
fn own_pod_ip_is_the_same_kernel_walk_everywhere() {
    let (lines, socket, trace_lines) = same_probe("productpage", true, "app", "app to its own pod IP");
    assert_eq!(lines, [37, 44, 10, 20]);
    assert_eq!(socket.as_deref(), Some("0.0.0.0:9080"));
    assert_eq!(trace_lines, lines);
}

/// Inbound in TPROXY mode: mangle PREROUTING jumps to ISTIO_INBOUND, ISTIO_TPROXY hands the
/// connection to Envoy's transparent 15006 (tools/istio-iptables/pkg/capture/run.go).
#[test]
fn tproxy_inbound_is_the_same_kernel_walk_everywhere() {
    let (lines, socket, trace_lines) =
        same_probe("productpage", true, "outside:10.244.1.9", "inbound through TPROXY");
    assert_eq!(lines, [10, 25, 26]);
    assert_eq!(socket.as_deref(), Some("0.0.0.0:15006"));
    assert_eq!(trace_lines, lines);
}

/// Without a config dump or sockets, every front end assumes Envoy's transparent listener on the
/// TPROXY port and Istio's policy routing (fwmark 0x539 lookup 133; tools/common/tproxy).
#[test]
fn assumed_tproxy_listener_is_the_same_everywhere() {
    let (lines, socket, trace_lines) =
        same_probe("bare", false, "outside:10.244.1.9", "inbound without a dump");
    assert_eq!(lines, [10, 25, 26]);
    assert_eq!(socket.as_deref(), Some("0.0.0.0:15006"));
    assert_eq!(trace_lines, lines);
    let text = run(&[
        &["netfilter", "trace"],
        &pod_flags(false)[..],
        &["--from", "outside", "--dst", "10.244.0.5:9080"],
    ]
    .concat());
    assert!(text.stdout.contains("assumed: Envoy listens on tcp 0.0.0.0:15006"), "{}", text.stdout);
}

// ---------------------------------------------------------------------------------------------
// Deprecated spellings: the same output as the new spelling, and one warning line on stderr.

fn same_with_warning(old: &[&str], new: &[&str], warnings: &[&str]) {
    let (o, n) = (run(old), run(new));
    assert_eq!(o.stdout, n.stdout, "{old:?} vs {new:?}");
    assert_eq!(n.stderr, "", "{new:?} warns: {}", n.stderr);
    let lines: Vec<&str> = o.stderr.lines().collect();
    assert_eq!(lines, warnings, "{old:?}");
}

#[test]
fn old_netfilter_trace_flags_still_work() {
    same_with_warning(
        &[
            "netfilter",
            "trace",
            "--rules",
            RULES_1_25,
            "--hook",
            "output",
            "--src",
            PRODUCTPAGE_IP,
            "--sport",
            "40000",
            "--dst",
            "10.96.0.10",
            "--dport",
            "80",
            "--uid",
            "1000",
            "--gid",
            "1000",
            "--local",
            PRODUCTPAGE_IP,
        ],
        &[
            "netfilter",
            "trace",
            "--iptables",
            RULES_1_25,
            "--src",
            "10.244.0.5:40000",
            "--dst",
            "10.96.0.10:80",
            "--from",
            "uid:1000:1000",
            "--pod-ip",
            PRODUCTPAGE_IP,
        ],
        &[
            "warning: --dport is deprecated; use --dst 10.96.0.10:80",
            "warning: --sport is deprecated; use --src 10.244.0.5:40000",
            "warning: --uid/--gid is deprecated; use --from uid:1000:1000",
            "warning: --hook output is deprecated; use --from",
            "warning: --local is deprecated; use --pod-ip",
            "warning: --rules is deprecated; use --iptables",
        ],
    );
}

/// `--hook output` without `--uid` kept its old sender, uid 0; `--hook prerouting` is an
/// outside sender.
#[test]
fn old_hook_keeps_its_meaning() {
    let base = [
        "netfilter",
        "trace",
        "--iptables",
        RULES_1_25,
        "--pod-ip",
        PRODUCTPAGE_IP,
        "--dst",
        "10.96.0.10:80",
    ];
    same_with_warning(
        &[&base[..], &["--hook", "output"]].concat(),
        &[&base[..], &["--from", "uid:0"]].concat(),
        &["warning: --hook output is deprecated; use --from uid:0"],
    );
    let inbound = [
        "netfilter",
        "trace",
        "--iptables",
        RULES_1_25,
        "--pod-ip",
        PRODUCTPAGE_IP,
        "--dst",
        "10.244.0.5:9080",
    ];
    same_with_warning(
        &[&inbound[..], &["--hook", "prerouting", "--src", "10.244.1.7"]].concat(),
        &[&inbound[..], &["--from", "outside:10.244.1.7"]].concat(),
        &["warning: --hook prerouting is deprecated; use --from outside"],
    );
}

#[test]
fn old_envoy_match_flags_still_work() {
    let base = [
        "envoy",
        "match",
        "--envoy",
        ENVOY_DUMP,
        "--listener-addr",
        "10.244.0.9:15001",
        "--dst",
        "10.96.10.10:9080",
    ];
    same_with_warning(
        &[&base[..], &["--dns", "reviews=10.0.0.1", "--random-value", "7"]].concat(),
        &[&base[..], &["--name", "reviews=10.0.0.1", "--pick", "random-value=7"]].concat(),
        &[
            "warning: --dns is deprecated; use --name",
            "warning: --random-value is deprecated; use --pick random-value=7",
        ],
    );
}

#[test]
fn format_table_is_text() {
    let replay = [
        "replay",
        "pcaps/outbound-http.pcap",
        "--iptables",
        RULES_1_25,
        "--envoy",
        "tests/fixtures/mesh/productpage.istio-1.25.config_dump.json",
        "--pod-ip",
        PRODUCTPAGE_IP,
    ];
    same_with_warning(
        &[&replay[..], &["--format", "table"]].concat(),
        &[&replay[..], &["--format", "text"]].concat(),
        &["warning: --format table is deprecated; use --format text"],
    );
}

/// `replay --flow N` writes the format asked: the flow and its paths as JSON.
#[test]
fn replay_flow_honours_format() {
    let args = [
        "replay",
        "pcaps/outbound-http.pcap",
        "--iptables",
        RULES_1_25,
        "--envoy",
        "tests/fixtures/mesh/productpage.istio-1.25.config_dump.json",
        "--pod-ip",
        PRODUCTPAGE_IP,
        "--listen",
        "tcp:0.0.0.0:9080",
    ];
    let table = json(&[&args[..], &["--format", "json"]].concat());
    let flow = json(&[&args[..], &["--flow", "1", "--format", "json"]].concat());
    assert_eq!(flow["schema"], "meshpath.replay-flow/v1");
    assert_eq!(flow["flow"], table["flows"][1]);
    let csv = run(&[&args[..], &["--flow", "1", "--format", "csv"]].concat()).stdout;
    assert_eq!(csv.lines().count(), 2, "{csv}");
    let o =
        meshpath().args(args).args(["--format", "csv", "--flow", "1", "--explain"]).output().expect("runs");
    assert_eq!(o.status.code(), Some(2));
}

// ---------------------------------------------------------------------------------------------
// `--output FILE` on every command that writes a report: the file holds what standard output
// would, and standard output stays empty.

fn output_matches_stdout(args: &[&str]) {
    let dir = std::env::temp_dir().join(format!("meshpath-output-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join(format!("{}.out", args.join("_").replace(['/', ' ', ':', '.'], "-")));
    let to_stdout = run(args).stdout;
    let to_file = run(&[args, &["--output", file.to_str().expect("utf-8")]].concat());
    assert_eq!(to_file.stdout, "", "{args:?}");
    assert_eq!(std::fs::read_to_string(&file).expect("written"), to_stdout, "{args:?}");
    std::fs::remove_file(&file).ok();
}

#[test]
fn output_writes_every_report() {
    let productpage_dump = format!("{MESH}/productpage.istio-1.25.config_dump.json");
    let pod = ["--iptables", RULES_1_25, "--envoy", &productpage_dump, "--pod-ip", PRODUCTPAGE_IP];
    output_matches_stdout(&["netfilter", "check", RULES_1_25]);
    output_matches_stdout(&[&["netfilter", "trace"], &pod[..], &["--dst", "10.96.0.10:80"]].concat());
    output_matches_stdout(&["envoy", "summary", "--envoy", ENVOY_DUMP]);
    output_matches_stdout(&[
        "envoy",
        "match",
        "--envoy",
        ENVOY_DUMP,
        "--listener-addr",
        "10.244.0.9:15001",
        "--dst",
        "10.96.10.10:9080",
    ]);
    output_matches_stdout(
        &[&["trace"], &pod[..], &["--dst", "93.184.216.34:443", "--sni", "example.com"]].concat(),
    );
    output_matches_stdout(
        &[&["explain"], &pod[..], &["--dst", "93.184.216.34:443", "--sni", "example.com"]].concat(),
    );
    output_matches_stdout(&[&["replay", "pcaps/outbound-http.pcap"], &pod[..]].concat());
    output_matches_stdout(&["check", "tests/fixtures/scenarios/pass", "--format", "json"]);
}

// ---------------------------------------------------------------------------------------------
// Errors in the evidence reach the user located: `file:line:col`, the line, exit status 2.

#[test]
fn evidence_errors_name_their_line() {
    let dir = std::env::temp_dir().join(format!("meshpath-located-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("written");
        p.to_str().expect("utf-8").to_string()
    };
    let ss = write("ss.txt", "tcp LISTEN 0 4096 0.0.0.0:9080 0.0.0.0:*\nwhat is this\n");
    let rules = write("rules.txt", "0: from all lookup local\n32766: from all bogus main\n");
    let dump = write("dump.json", "{\"configs\": [\n  {\"a\": 1,,}\n]}\n");
    // A rule set whose jumps loop, which the kernel refuses to load.
    let looped = write(
        "loop.rules",
        "*filter\n:INPUT ACCEPT [0:0]\n:A - [0:0]\n:B - [0:0]\n-A A -j B\n-A B -j A\nCOMMIT\n",
    );
    let pod = ["--iptables", RULES_1_25, "--pod-ip", PRODUCTPAGE_IP];
    let cases: Vec<(Vec<&str>, String)> = vec![
        ([&["trace"], &pod[..], &["--sockets", &ss, "--dst", "1.1.1.1:80"]].concat(), format!("{ss}:2:1:")),
        (
            [&["netfilter", "trace"], &pod[..], &["--ip-rules", &rules, "--dst", "1.1.1.1:80"]].concat(),
            format!("{rules}:2:1:"),
        ),
        (vec!["envoy", "summary", "--envoy", &dump], format!("{dump}:2:12:")),
        (vec!["netfilter", "check", &looped], format!("{looped}:6:1:")),
    ];
    for (args, at) in cases {
        let o = meshpath().args(&args).output().expect("runs");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(&at), "{args:?} names {at}: {err}");
        assert!(err.contains("here"), "{args:?} shows the line: {err}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

// ---------------------------------------------------------------------------------------------
// Every command's help ends with its exit status and an example, and the example runs.

/// The example of a help text: the lines after `Example:`, continuation backslashes joined,
/// split into words (double quotes group).
fn example(help: &str) -> Vec<String> {
    let block = help.split("Example:\n").nth(1).expect("an example");
    let line = block.lines().map(str::trim).collect::<Vec<_>>().join(" ").replace("\\ ", "");
    let (mut words, mut word, mut quoted) = (Vec::new(), String::new(), false);
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

#[test]
fn every_help_has_exit_status_and_a_working_example() {
    let commands: [&[&str]; 9] = [
        &["netfilter", "check"],
        &["netfilter", "trace"],
        &["envoy", "summary"],
        &["envoy", "match"],
        &["trace"],
        &["explain"],
        &["replay"],
        &["check"],
        &["route-check"],
    ];
    for c in commands {
        let help = run(&[c, &["--help"]].concat()).stdout;
        assert!(help.contains("Exit status:\n  0  "), "{c:?}: {help}");
        assert!(help.contains("  2  bad input or usage"), "{c:?}");
        let words = example(&help);
        assert_eq!(words[0], "meshpath", "{c:?}");
        assert_eq!(&words[1..=c.len()], c, "{c:?}: the example is of the command");
        let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
        run(&args);
    }
    assert!(run(&["--help"]).stdout.contains("--local IP                 now --pod-ip IP"));
}
