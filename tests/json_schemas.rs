//! The JSON documents validate against their published schemas: `meshpath trace --format json`
//! against docs/trace.schema.json (`meshpath.trace/v2`) and `meshpath explain --format json`
//! against docs/explain.schema.json (`meshpath.explain/v1`), for every probe of the bundled
//! scenarios (scenarios/) and for the endings those probes do not reach (blackhole, dropped,
//! unresolved, undetermined, refused, rejected_config, stalled). The schemas' own claims are tested too: a document with
//! a broken field fails, and the numbers the schemas only type (step numbers, loop cycle) are
//! checked against the path they belong to.

mod common;
mod schema_validator;

use std::path::{Path, PathBuf};

use common::{meshpath, productpage, RULES_1_1, RULES_1_25, RULES_1_25_TPROXY};
use schema_validator::Schema;
use serde_json::{json, Value};

fn schema(file: &str) -> Schema {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(v["$schema"], "https://json-schema.org/draft/2020-12/schema", "{file}");
    Schema::new(v).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// Runs meshpath and parses its standard output as JSON (exit status 0 or, for `check`, 1).
fn json_of(args: &[String]) -> Value {
    let out = meshpath().args(args).output().expect("runs");
    assert!(matches!(out.status.code(), Some(0 | 1)), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// The problems found, the first 40 of them in full.
fn report(errs: &[String]) -> String {
    let shown: Vec<&str> = errs.iter().take(40).map(String::as_str).collect();
    let more = errs.len().saturating_sub(shown.len());
    let more = if more > 0 { format!("\n... and {more} more") } else { String::new() };
    format!("{} problems:\n{}{more}", errs.len(), shown.join("\n"))
}

fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|s| s.to_string()).collect()
}

/// Every `*.scenario.yaml` under `scenarios/`, sorted.
fn scenario_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("readable").flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.to_string_lossy().ends_with(".scenario.yaml") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(Path::new("scenarios"), &mut out);
    out.sort();
    out
}

/// The probes of a scenario file, as `meshpath check --format json` lists them.
fn probes(file: &Path) -> Vec<String> {
    let file = file.to_string_lossy().into_owned();
    let doc = json_of(&strings(&["check", &file, "--format", "json"]));
    doc["files"][0]["probes"]
        .as_array()
        .unwrap_or_else(|| panic!("{file}: no probes in {doc}"))
        .iter()
        .map(|p| p["name"].as_str().expect("name").to_string())
        .collect()
}

/// What the schemas cannot say: steps are numbered 1, 2, ... and a loop's `cycle` and
/// `closed_by` name steps of the path, 1-based.
fn check_numbers(what: &str, path: &Value, steps: Option<&Vec<Value>>, errs: &mut Vec<String>) {
    if let Some(steps) = steps {
        for (i, s) in steps.iter().enumerate() {
            if s["n"] != json!(i + 1) {
                errs.push(format!("{what}: step {} has n = {}", i + 1, s["n"]));
            }
        }
    }
    let e = &path["ending"];
    if e["kind"] != "loop" {
        return;
    }
    let (first, last) = (e["cycle"][0].as_u64().unwrap_or(0), e["cycle"][1].as_u64().unwrap_or(0));
    let len = steps.map_or(u64::MAX, |s| s.len() as u64);
    if !(1 <= first && first <= last && last <= len) {
        errs.push(format!("{what}: cycle [{first}, {last}] is not a range of the path's {len} steps"));
    }
    for c in e["closed_by"].as_array().into_iter().flatten() {
        let n = c["step"].as_u64().unwrap_or(0);
        if !(first..=last).contains(&n) {
            errs.push(format!("{what}: closed_by step {n} is outside the cycle [{first}, {last}]"));
        }
        if let Some(step) = steps.zip((n as usize).checked_sub(1)).and_then(|(s, i)| s.get(i)) {
            if step["what"] != c["what"] {
                errs.push(format!(
                    "{what}: closed_by step {n} says {} but the step says {}",
                    c["what"], step["what"]
                ));
            }
        }
    }
    if let Some(text) = e["text"].as_str() {
        if !text.starts_with(&format!("loops: steps {first} to {last} repeat")) {
            errs.push(format!(
                "{what}: the text ({text}) numbers the cycle otherwise than [{first}, {last}]"
            ));
        }
    }
}

/// Validates the trace and explain documents of one connection; returns the trace's ending kinds.
fn validate_both(
    what: &str,
    args: &[String],
    trace: &Schema,
    explain: &Schema,
    errs: &mut Vec<String>,
) -> Vec<String> {
    let with = |command: &str| {
        let mut a = vec![command.to_string()];
        a.extend(args.iter().cloned());
        a.extend(strings(&["--format", "json"]));
        json_of(&a)
    };
    let t = with("trace");
    errs.extend(trace.validate(&t).into_iter().map(|e| format!("{what}: trace: {e}")));
    for (i, p) in t["paths"].as_array().into_iter().flatten().enumerate() {
        check_numbers(&format!("{what}: trace path {}", i + 1), p, p["steps"].as_array(), errs);
    }
    let x = with("explain");
    errs.extend(explain.validate(&x).into_iter().map(|e| format!("{what}: explain: {e}")));
    for (i, (xp, tp)) in x["paths"]
        .as_array()
        .into_iter()
        .flatten()
        .zip(t["paths"].as_array().into_iter().flatten())
        .enumerate()
    {
        check_numbers(&format!("{what}: explain path {}", i + 1), xp, tp["steps"].as_array(), errs);
        if xp["ending"] != tp["ending"] {
            errs.push(format!("{what}: explain path {}: the ending differs from the trace's", i + 1));
        }
    }
    t["paths"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| p["ending"]["kind"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn every_bundled_probe_validates() {
    let (trace, explain) = (schema("trace.schema.json"), schema("explain.schema.json"));
    let mut errs = Vec::new();
    let mut count = 0;
    for file in scenario_files() {
        let f = file.to_string_lossy().into_owned();
        for probe in probes(&file) {
            validate_both(
                &format!("{f}: {probe}"),
                &strings(&["--scenario", &f, "--probe", &probe]),
                &trace,
                &explain,
                &mut errs,
            );
            count += 1;
        }
    }
    assert!(count >= 30, "only {count} probes found under scenarios/");
    assert!(errs.is_empty(), "{}", report(&errs));
}

/// The endings the bundled probes do not reach, on the mesh fixtures (tests/trace_cli.rs has
/// the reasoning behind each).
#[test]
fn the_other_endings_validate() {
    let (trace, explain) = (schema("trace.schema.json"), schema("explain.schema.json"));
    // (ending, rules, dump, connection): Envoy's own port from outside reaches
    // virtualOutbound-blackhole (a TCP proxy, UH); TPROXY rules with a 15006 listener that is
    // not transparent; a name outside the name table; the 2019 dump taken without EDS; UDP from
    // uid 1337 (not captured) to a closed port; inbound TCP to a closed port (UF, `upstream`).
    let (r25, r11, tproxy) = (RULES_1_25, RULES_1_1, RULES_1_25_TPROXY);
    let (d25, d11) = ("productpage.istio-1.25", "productpage.istio-1.1");
    let cases = [
        ("blackhole", r25, d25, "--from outside:10.244.1.9 --dst 10.244.0.5:15001"),
        ("dropped", tproxy, d25, "--from outside:10.244.1.9 --dst 10.244.0.5:9080"),
        ("unresolved", r25, d25, "--dst nosuch.example.com:80"),
        ("undetermined", r11, d11, "--dst 10.96.0.20:9080 --host reviews:9080"),
        ("refused", r25, d25, "--from uid:1337 --proto udp --dst 10.244.0.5:5353"),
        ("envoy_response", r25, d25, "--from outside:10.244.1.9 --dst 10.244.0.5:8080"),
        // A listener Envoy refuses (tests/envoy_rejected_cli.rs); a server-first client in
        // tls_inspector of a sniffed port.
        (
            "rejected_config",
            r25,
            "productpage.istio-1.25-rejected",
            "--dst 10.96.0.20:9080 --host reviews:9080",
        ),
        ("stalled", r25, d25, "--dst 10.96.0.20:9080 --server-first"),
    ];
    let mut errs = Vec::new();
    for (kind, rules, dump, connection) in cases {
        let rest: Vec<&str> = connection.split(' ').collect();
        let args = productpage("trace", rules, dump, "tcp:0.0.0.0:9080", &rest)[1..].to_vec();
        let kinds = validate_both(kind, &args, &trace, &explain, &mut errs);
        assert_eq!(kinds, [kind], "{args:?}");
    }
    assert!(errs.is_empty(), "{}", report(&errs));
}

/// `meshpath check --format json` lists a failed probe's paths as the trace document does.
#[test]
fn check_json_lists_trace_paths() {
    let trace = schema("trace.schema.json");
    let doc = json_of(&strings(&["check", "tests/fixtures/scenarios/fail", "--format", "json"]));
    let mut seen = 0;
    let mut errs = Vec::new();
    for probe in doc["files"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|f| f["probes"].as_array().into_iter().flatten())
    {
        for p in probe["paths"].as_array().into_iter().flatten() {
            seen += 1;
            errs.extend(trace.validate_def("path", p));
            check_numbers("check", p, p["steps"].as_array(), &mut errs);
        }
    }
    assert!(seen > 0, "no failed probe with paths in {doc}");
    assert!(errs.is_empty(), "{}", report(&errs));
}

/// A valid document with one thing broken, as a reader of an older or wrong shape would
/// have it: each must be refused.
#[test]
fn broken_documents_are_refused() {
    let (trace, explain) = (schema("trace.schema.json"), schema("explain.schema.json"));
    let f = "scenarios/3-app-on-pod-ip/pod-ip-endpoint.scenario.yaml";
    let probe = "reviews calls productpage, Envoy loops into 15001";
    let t = json_of(&strings(&["trace", "--scenario", f, "--probe", probe, "--format", "json"]));
    let x = json_of(&strings(&["explain", "--scenario", f, "--probe", probe, "--format", "json"]));
    assert_eq!(trace.validate(&t), Vec::<String>::new());
    assert_eq!(explain.validate(&x), Vec::<String>::new());
    type Break = fn(&mut Value);
    let trace_breaks: [(&str, Break); 8] = [
        ("v1 schema name", |d| d["schema"] = json!("meshpath.trace/v1")),
        ("0-based cycle", |d| d["paths"][0]["ending"]["cycle"] = json!([0, 26])),
        ("closed_by as sentences", |d| {
            d["paths"][0]["ending"]["closed_by"] = json!(["listener 10.244.0.5_9080"])
        }),
        ("ending without text", |d| drop(d["paths"][0]["ending"].as_object_mut().map(|o| o.remove("text")))),
        ("unknown ending kind", |d| d["paths"][0]["ending"]["kind"] = json!("looped")),
        ("step without n", |d| drop(d["paths"][0]["steps"][0].as_object_mut().map(|o| o.remove("n")))),
        ("unknown step tag", |d| d["paths"][0]["steps"][1]["detail"]["step"] = json!("netfilter")),
        ("engine's pod index", |d| d["paths"][0]["steps"][0]["pod"] = json!(0)),
    ];
    for (what, brk) in trace_breaks {
        let mut d = t.clone();
        brk(&mut d);
        assert!(!trace.validate(&d).is_empty(), "the trace schema accepts a document with {what}");
    }
    let explain_breaks: [(&str, Break); 4] = [
        ("no counterfactuals", |d| drop(d.as_object_mut().map(|o| o.remove("counterfactuals")))),
        ("decision layer of the trace", |d| d["paths"][0]["decisions"][0]["layer"] = json!("route")),
        ("counterfactual kind in words", |d| {
            d["counterfactuals"][0]["kinds"] = json!(["delivered in pod productpage"])
        }),
        ("extra field", |d| d["paths"][0]["steps"] = json!([])),
    ];
    for (what, brk) in explain_breaks {
        let mut d = x.clone();
        brk(&mut d);
        assert!(!explain.validate(&d).is_empty(), "the explain schema accepts a document with {what}");
    }
}

/// The validator refuses a schema keyword it does not implement instead of skipping it.
#[test]
fn unsupported_schema_keywords_are_refused() {
    let s = json!({"type": "object", "properties": {"a": {"type": "string", "format": "ipv4"}}});
    assert!(Schema::new(s).is_err());
}

/// `meshpath netfilter trace --format json`: a note of an unmodelled match keeps `what` as the
/// note's kind (`unknown`) and carries the match-or-target in `unknown` (one key each).
#[test]
fn netfilter_note_of_an_unknown_module_has_one_what() {
    let doc = json_of(&strings(&[
        "netfilter",
        "trace",
        "--lenient",
        "--rules",
        "tests/fixtures/netfilter/bad-module.iptables-save",
        "--hook",
        "prerouting",
        "--src",
        "10.1.2.3",
        "--dst",
        "10.244.0.5",
        "--local",
        "10.244.0.5",
        "--dport",
        "80",
        "--format",
        "json",
    ]));
    let note = doc["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .find(|n| n["event"] == "unknown")
        .unwrap_or_else(|| panic!("no unknown note in {doc}"));
    assert_eq!(note["what"], "unknown", "{note}");
    assert_eq!(note["unknown"], "match", "{note}");
    assert_eq!(note["name"], "limit", "{note}");
}

/// A server-first client through a listener whose filters time out and continue (the
/// productpage dump with `listener_filters_timeout: 5s`): the path has a
/// `listener_filters_timeout` step and goes on (envoy
/// source/common/listener_manager/active_tcp_socket.cc, `ActiveTcpSocket::onTimeout`).
#[test]
fn listener_filters_timeout_step_validates() {
    let (trace, explain) = (schema("trace.schema.json"), schema("explain.schema.json"));
    let text = std::fs::read_to_string(common::dump("productpage.istio-1.25")).expect("fixture");
    let dir = std::env::temp_dir().join(format!("meshpath-schemas-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let file = dir.join("timeout-5s.json");
    std::fs::write(
        &file,
        text.replace("\"listener_filters_timeout\": \"0s\"", "\"listener_filters_timeout\": \"5s\""),
    )
    .expect("writable");
    let mut args = productpage(
        "trace",
        RULES_1_25,
        "productpage.istio-1.25",
        "tcp:0.0.0.0:9080",
        &["--dst", "10.96.0.20:9080", "--server-first"],
    )[1..]
        .to_vec();
    let at = args.iter().position(|a| a == "--envoy").expect("--envoy") + 1;
    args[at] = file.display().to_string();
    let mut errs = Vec::new();
    let kinds = validate_both("timeout", &args, &trace, &explain, &mut errs);
    assert_ne!(kinds, ["stalled"], "{args:?}");
    assert!(errs.is_empty(), "{}", report(&errs));
    let mut a = vec!["trace".to_string()];
    a.extend(args);
    a.extend(strings(&["--format", "json"]));
    let t = json_of(&a);
    let steps = t["paths"][0]["steps"].as_array().cloned().unwrap_or_default();
    let timeout =
        steps.iter().find(|s| s["detail"]["step"] == "listener_filters_timeout").expect("a timeout step");
    assert_eq!(timeout["detail"]["timeout"], "5s");
    assert_eq!(timeout["detail"]["filter"], "envoy.filters.listener.tls_inspector");
}

/// Every kind of fix `explain` offers validates against the explain schema's `fix`, from the
/// probes that offer the settings the bundled scenarios do not (tests/explain_fixes.rs checks
/// what each fix does).
#[test]
fn every_kind_of_fix_validates() {
    let explain = schema("explain.schema.json");
    let mut errs = Vec::new();
    let mut settings = std::collections::BTreeSet::new();
    for (file, probe) in [
        (
            "tests/realworld/01-app-runs-as-uid-1337/bypass.scenario.yaml",
            "curl as uid 1337 goes straight out",
        ),
        (
            "tests/realworld/04-init-container-before-the-sidecar/init-container.scenario.yaml",
            "the init container's call to the API server is refused",
        ),
        (
            "tests/realworld/05-include-outbound-ports/include-ports.scenario.yaml",
            "with includeOutboundIPRanges port 8001 outside the range leaves directly",
        ),
        (
            "tests/realworld/09-server-first-mysql-sniffing/mysql.scenario.yaml",
            "the MySQL client stalls on the sniffed listener",
        ),
        (
            "scenarios/3-app-on-pod-ip/istio-1.1.scenario.yaml",
            "reviews calls productpage, Envoy's 127.0.0.1 upstream is refused",
        ),
        (
            "tests/realworld/08-ipv6-input-reject/ipv6.scenario.yaml",
            "curl in the pod to its own IPv6 status port is refused",
        ),
    ] {
        let d = json_of(&strings(&["explain", "--scenario", file, "--probe", probe, "--format", "json"]));
        for f in d["fixes"].as_array().into_iter().flatten() {
            settings.insert(f["setting"]["setting"].as_str().unwrap_or("").to_string());
        }
        errs.extend(explain.validate(&d).into_iter().map(|e| format!("{file}: {probe}: {e}")));
    }
    assert!(errs.is_empty(), "{}", report(&errs));
    let want =
        ["app_identity", "app_listen_address", "pod_annotation", "service_port_protocol", "without_rule"];
    assert_eq!(settings.iter().map(String::as_str).collect::<Vec<_>>(), want);
}
