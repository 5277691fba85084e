//! `meshpath explain` end to end on the mesh fixtures of `tests/trace_cli.rs`
//! (tests/fixtures/mesh/README.md): a text and a Markdown snapshot per case, and each test
//! states what the report must say, so a snapshot can never bless a different answer.

mod common;

use common::{dump, meshpath, RULES_1_1, RULES_1_25, RULES_1_25_TPROXY};

fn productpage(rules: &str, envoy: &str, listen: &str, rest: &[&str]) -> Vec<String> {
    common::productpage("explain", rules, envoy, listen, rest)
}

fn inbound(rules: &str, envoy: &str, listen: &str) -> Vec<String> {
    productpage(
        rules,
        envoy,
        listen,
        &[
            "--from",
            "outside:10.244.1.9",
            "--dst",
            "10.244.0.5:9080",
            "--host",
            "productpage:9080",
            "--path",
            "/productpage",
        ],
    )
}

fn run(args: &[String], format: &str) -> String {
    let out = meshpath().args(args).args(["--format", format]).output().expect("runs");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

fn both(name: &str, args: &[String]) -> String {
    let text = run(args, "text");
    insta::assert_snapshot!(format!("{name}_text"), text);
    insta::assert_snapshot!(format!("{name}_markdown"), run(args, "markdown"));
    text
}

#[test]
fn loop_2019_names_the_cycle_and_the_exemption_that_breaks_it() {
    let t =
        both("loop_2019", &inbound(RULES_1_1, "productpage.istio-1.1-podip-endpoint", "tcp:10.244.0.5:9080"));
    assert!(t.contains("Ending: loops"), "{t}");
    assert!(t.contains("The loop, step by step:"), "{t}");
    assert!(t.contains("OUTPUT nat ISTIO_OUTPUT #1 jumps to ISTIO_REDIRECT"), "{t}");
    assert!(
        t.contains("without rule nat ISTIO_OUTPUT #1 (scenarios/istio-1.1-redirect.v4.iptables-save:14)"),
        "{t}"
    );
    assert!(t.contains("-j RETURN` inserted before scenarios/istio-1.1-redirect.v4.iptables-save:14"), "{t}");
    assert!(t.contains("the loop disappears: delivered"), "{t}");
    // scenarios/3-app-on-pod-ip/README.md, "The fix": Istio >= 1.10 connects from 127.0.0.6
    // and istio-iptables exempts it with `-s 127.0.0.6/32 -o lo -j RETURN`.
    assert!(t.contains("Fixes (each re-simulated):\n  - Istio 1.10 or later for pod productpage"), "{t}");
    assert!(t.contains("`-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN`"), "{t}");
}

#[test]
fn refused_2019_suggests_the_wildcard_address() {
    let t = both("refused_2019", &inbound(RULES_1_1, "productpage.istio-1.1", "tcp:10.244.0.5:9080"));
    assert!(t.contains("503 UF"), "{t}");
    assert!(t.contains("nothing listens on 127.0.0.1:9080"), "{t}");
    assert!(
        t.contains("listened on 0.0.0.0:9080 instead of 10.244.0.5:9080: delivered in pod productpage to app on 0.0.0.0:9080"),
        "{t}"
    );
    // scenarios/3-app-on-pod-ip/README.md, "The fix": "bind the app to 0.0.0.0".
    assert!(
        t.contains(
            "  - bind the app in pod productpage to 0.0.0.0:9080 instead of 10.244.0.5:9080: delivered"
        ),
        "{t}"
    );
}

#[test]
fn bookinfo_explains_listener_route_and_endpoint() {
    let peer = format!("reviews=10.244.1.7,{RULES_1_25},{},tcp:0.0.0.0:9080", dump("reviews.istio-1.25"));
    let args = productpage(
        RULES_1_25,
        "productpage.istio-1.25",
        "tcp:0.0.0.0:9080",
        &["--peer", &peer, "--dst", "10.96.0.20:9080", "--host", "reviews:9080", "--path", "/reviews/0"],
    );
    let t = both("bookinfo", &args);
    assert!(t.contains("Ending: delivered in pod reviews to app on 0.0.0.0:9080"), "{t}");
    assert!(t.contains("hand-off to listener 0.0.0.0_9080"), "{t}");
    assert!(t.contains("virtual host reviews.default.svc.cluster.local:9080 matches Host reviews"), "{t}");
    assert!(t.contains("virtual hosts whose domains do not match:"), "{t}");
}

#[test]
fn external_https_explains_why_the_catchall_chain_won() {
    let args = productpage(
        RULES_1_25,
        "productpage.istio-1.25",
        "tcp:0.0.0.0:9080",
        &["--dst", "93.184.216.34:443", "--sni", "example.com"],
    );
    let t = both("external_https", &args);
    assert!(t.contains("PassthroughCluster"), "{t}");
    assert!(t.contains("filter chain virtualOutbound-catchall-tcp"), "{t}");
    assert!(t.contains("virtualOutbound-blackhole: lost on destination_port"), "{t}");
}

#[test]
fn not_found_2019_lists_the_virtual_hosts_that_did_not_match() {
    let args = productpage(
        RULES_1_1,
        "productpage.istio-1.1",
        "tcp:0.0.0.0:9080",
        &["--dst", "10.96.0.20:9080", "--host", "nothere:9080"],
    );
    let t = both("not_found_2019", &args);
    assert!(t.contains("404 NR"), "{t}");
    assert!(t.contains("no virtual host's domains match Host nothere:9080"), "{t}");
}

#[test]
fn tproxy_loop_is_explained_with_its_rules() {
    let t =
        both("tproxy_loop", &inbound(RULES_1_25_TPROXY, "productpage.istio-1.25-tproxy", "tcp:0.0.0.0:9080"));
    assert!(t.contains("Ending: loops"), "{t}");
    assert!(t.contains("What if (each re-simulated):"), "{t}");
}

#[test]
fn html_goes_to_the_output_file() {
    let dir = std::env::temp_dir().join(format!("meshpath-explain-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("report.html");
    let mut args = inbound(RULES_1_1, "productpage.istio-1.1", "tcp:10.244.0.5:9080");
    args.extend(["--output".to_string(), file.display().to_string()]);
    assert_eq!(run(&args, "html"), "");
    let html = std::fs::read_to_string(&file).expect("written");
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<svg"), "{html}");
    let _ = std::fs::remove_dir_all(&dir);
}
