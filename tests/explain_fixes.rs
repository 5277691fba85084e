//! `explain`'s fixes on every bundled incident's broken snapshot (scenarios/1..5): the fix the
//! incident's README names, phrased as the Istio setting, and, where the incident holds the
//! fixed state (a `fixed*`/later-Istio scenario with the config Istio generated for the fix),
//! the re-simulated ending equals the ending of that fixed scenario's probe. The expectation
//! is the README's fix and Istio's own generated config, never what meshpath printed.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use meshpath::engine::{self, Ending, MeshTrace};
use meshpath::explain::{self, Annotation, Edit, Fix, ListChange, Report, Setting};
use meshpath::render::explain_fix;

fn report(file: &str, probe: &str) -> Report {
    let sc = meshpath::scenario::load(Path::new(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let p = sc.probe(probe).unwrap_or_else(|| panic!("{file}: no probe {probe:?}"));
    explain::explain(&sc.mesh, &p.start).expect("explains")
}

/// The ending of a probe of the incident's fixed scenario.
fn fixed(file: &str, probe: &str) -> MeshTrace {
    let sc = meshpath::scenario::load(Path::new(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let p = sc.probe(probe).unwrap_or_else(|| panic!("{file}: no probe {probe:?}"));
    engine::trace(&sc.mesh, &p.start).expect("traces")
}

fn the_fix(r: &Report, what: impl Fn(&Setting) -> bool) -> &Fix {
    r.fixes.iter().find(|f| what(&f.setting)).unwrap_or_else(|| {
        let offered: Vec<String> = r.fixes.iter().map(explain_fix::line).collect();
        panic!("the fix is not offered; offered: {offered:#?}")
    })
}

fn endings(t: &MeshTrace) -> Vec<(Ending, f64)> {
    t.paths.iter().map(|p| (p.ending.clone(), p.weight)).collect()
}

/// Incident 1: "One host per address: ... `legacy-a.example.com` with
/// `addresses: [172.16.0.1/32]`". The host's name is the user's choice: the fixed scenario's
/// `legacy-a.example.com` stands for the one the fix proposes.
#[test]
fn incident_1_a_service_entry_host_per_address() {
    let r = report(
        "scenarios/1-serviceentry-two-addresses/before.scenario.yaml",
        "172.16.0.1 falls through to allow_any",
    );
    let ip: IpAddr = "172.16.0.1".parse().expect("ip");
    let f = the_fix(
        &r,
        |s| matches!(s, Setting::ServiceEntryHostPerAddress { address, host, .. } if *address == ip && host == "legacy.example.com"),
    );
    let Setting::ServiceEntryHostPerAddress { new_host, .. } = &f.setting else { unreachable!() };
    let mut got = endings(&f.outcome);
    for (e, _) in &mut got {
        if let Ending::Left { cluster: Some(c), .. } = e {
            *c = c.replace(new_host.as_str(), "legacy-a.example.com");
        }
    }
    let want =
        fixed("scenarios/1-serviceentry-two-addresses/fixed.scenario.yaml", "172.16.0.1 reaches legacy-a");
    assert_eq!(got, endings(&want));
    assert!(explain_fix::line(f).contains("`addresses: [172.16.0.1/32]`"), "{}", explain_fix::line(f));
}

/// Incident 2: "Give the ServiceEntry its address (`addresses: [10.20.0.15]`)", with and
/// without the Sidecar egress scope.
#[test]
fn incident_2_the_service_entry_address() {
    let ip: IpAddr = "10.20.0.15".parse().expect("ip");
    let is_fix = |s: &Setting| matches!(s, Setting::ServiceEntryAddress { host, address, port: 443 } if host == "api.internal.corp" && *address == ip);
    let dir = "scenarios/2-serviceentry-443-takeover";
    for (broken, probe, fixed_file, fixed_probe) in [
        (
            "before",
            "baidu.com goes to the internal service",
            "fixed",
            "baidu.com leaves through PassthroughCluster",
        ),
        (
            "sidecar-scope",
            "baidu.com goes to the internal service",
            "fixed-sidecar-scope",
            "baidu.com leaves through PassthroughCluster",
        ),
        (
            "sidecar-scope",
            "www.googleapis.com goes to the internal service too",
            "fixed-sidecar-scope",
            "www.googleapis.com leaves through PassthroughCluster",
        ),
    ] {
        let r = report(&format!("{dir}/{broken}.scenario.yaml"), probe);
        let f = the_fix(&r, is_fix);
        let want = fixed(&format!("{dir}/{fixed_file}.scenario.yaml"), fixed_probe);
        assert_eq!(endings(&f.outcome), endings(&want), "{broken}: {probe}");
        assert!(explain_fix::line(f)
            .starts_with("ServiceEntry of host api.internal.corp (port 443): `addresses: [10.20.0.15]`"));
    }
}

/// Incident 3: "Upgrade to Istio ≥ 1.10 (... bound to 127.0.0.6 and the
/// `-s 127.0.0.6/32 -o lo -j RETURN` exemption), or, before that, bind the app to 0.0.0.0".
/// The upgrade on the workaround's loop ends as the Istio 1.25 snapshot does; binding the app
/// has no fixed dump, so its ending is the one the README states: requests arrive.
#[test]
fn incident_3_istio_1_10_or_the_app_on_the_wildcard_address() {
    let dir = "scenarios/3-app-on-pod-ip";
    let r = report(
        &format!("{dir}/pod-ip-endpoint.scenario.yaml"),
        "reviews calls productpage, Envoy loops into 15001",
    );
    let f =
        the_fix(&r, |s| matches!(s, Setting::InboundPassthroughSource { pod, .. } if pod == "productpage"));
    let want = fixed(
        &format!("{dir}/istio-1.25.scenario.yaml"),
        "reviews calls productpage, delivered from 127.0.0.6",
    );
    assert_eq!(endings(&f.outcome), endings(&want));
    let words: Vec<String> = f.edits.iter().map(explain_fix::edit).collect();
    assert!(
        words.iter().any(|w| w.contains("`-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN`")),
        "{words:?}"
    );

    for probe in [
        "reviews calls productpage, Envoy's 127.0.0.1 upstream is refused",
        "productpage calls its own service, refused the same way",
    ] {
        let r = report(&format!("{dir}/istio-1.1.scenario.yaml"), probe);
        let f = the_fix(
            &r,
            |s| matches!(s, Setting::AppListenAddress { to, .. } if to.to_string() == "0.0.0.0:9080"),
        );
        assert_eq!(f.kinds, ["delivered"], "{probe}");
        assert!(matches!(&f.outcome.paths[0].ending, Ending::Delivered { pod, .. } if pod == "productpage"));
    }
}

/// Incident 4: "Define the subsets the VirtualService uses, in a DestinationRule".
#[test]
fn incident_4_the_destination_rule_subset() {
    let dir = "scenarios/4-bookinfo-packet-life";
    let r = report(&format!("{dir}/vs-subset-without-dr.scenario.yaml"), "productpage calls reviews, 503 NC");
    let f = the_fix(
        &r,
        |s| matches!(s, Setting::DestinationRuleSubset { host, subset, .. } if host == "reviews.default.svc.cluster.local" && subset == "v1"),
    );
    let want = fixed(
        &format!("{dir}/vs-subset-with-dr.scenario.yaml"),
        "productpage calls reviews, reaches reviews-v1 only",
    );
    assert_eq!(endings(&f.outcome), endings(&want));
    assert!(explain_fix::line(f).contains("`subsets: [{name: v1, labels: {version: v1}}]`"));
}

/// Incident 5: "Name the ServiceEntry's host in the VirtualService: `hosts: [vm.example.com]`".
#[test]
fn incident_5_the_virtual_service_host() {
    let dir = "scenarios/5-vm-migration";
    let r = report(
        &format!("{dir}/short-host.scenario.yaml"),
        "vm.example.com goes to the VM and the pod by the default route",
    );
    let f = the_fix(
        &r,
        |s| matches!(s, Setting::VirtualServiceHosts { virtual_service, to, .. } if virtual_service == "default/vm-app" && to == "vm.example.com"),
    );
    let want = fixed(&format!("{dir}/fixed.scenario.yaml"), "vm.example.com goes to the pods only");
    assert_eq!(endings(&f.outcome), endings(&want));
    assert!(explain_fix::line(f).starts_with("VirtualService default/vm-app: `hosts: [vm.example.com]`"));
}

/// A walk that ends well offers no fix.
#[test]
fn a_working_path_offers_no_fix() {
    let r = report(
        "scenarios/4-bookinfo-packet-life/vs-subset-with-dr.scenario.yaml",
        "productpage calls reviews, reaches reviews-v1 only",
    );
    assert!(r.fixes.is_empty(), "{:#?}", r.fixes.iter().map(explain_fix::line).collect::<Vec<_>>());
}

/// The rule `fix` inserts (or removes), by its words' data: every `RuleInserted`'s rule text.
fn inserted(f: &Fix) -> Vec<(&str, u32)> {
    f.edits
        .iter()
        .filter_map(|e| match e {
            Edit::RuleInserted { rule, before, .. } => Some((rule.as_str(), *before)),
            _ => None,
        })
        .collect()
}

fn annotation_fix<'r>(r: &'r Report, which: Annotation, item: &ListChange) -> &'r Fix {
    the_fix(
        r,
        |s| matches!(s, Setting::PodAnnotation { annotation, change, .. } if *annotation == which && change == item),
    )
}

/// `traffic.sidecar.istio.io/excludeOutboundPorts` on incident 4's 503 NC: istio-iptables `-o
/// 9080` writes `-A ISTIO_OUTPUT -p tcp --dport 9080 -j RETURN` and the same for udp as the
/// first rules of ISTIO_OUTPUT, before the `-o lo -s 127.0.0.6/32` exemption
/// (tools/istio-iptables/pkg/capture/testdata/outbound-ports-exclude-single.golden; iptables-save
/// prints the implied `-m tcp`). The port is then "excluded from redirection"
/// (https://istio.io/latest/docs/reference/config/annotations/#SidecarTrafficExcludeOutboundPorts):
/// the app's connection leaves the pod for the ClusterIP itself, no Envoy on the way.
#[test]
fn exclude_outbound_ports_as_istio_iptables_writes_them() {
    let r = report(
        "scenarios/4-bookinfo-packet-life/vs-subset-without-dr.scenario.yaml",
        "productpage calls reviews, 503 NC",
    );
    let f = annotation_fix(&r, Annotation::ExcludeOutboundPorts, &ListChange::Add("9080".into()));
    // Line 20 of scenarios/istio-1.25-redirect.v4.iptables-save is `-A ISTIO_OUTPUT -s
    // 127.0.0.6/32 -o lo -j RETURN`, after the injector's own 15020 exemptions.
    assert_eq!(
        inserted(f),
        [
            ("-A ISTIO_OUTPUT -p tcp -m tcp --dport 9080 -j RETURN", 20),
            ("-A ISTIO_OUTPUT -p udp -m udp --dport 9080 -j RETURN", 20)
        ]
    );
    assert_eq!(f.outcome.paths.len(), 1);
    let p = &f.outcome.paths[0];
    assert!(p.envoy.is_empty(), "{:?}", p.envoy);
    let dst: SocketAddr = "10.96.0.20:9080".parse().expect("addr");
    assert!(matches!(&p.ending, Ending::Left { dst: d, cluster: None, .. } if *d == dst), "{:?}", p.ending);
}

/// Incident 3 under Istio 1.1, whose rules capture only the pod's listed ports (`-A
/// ISTIO_INBOUND -p tcp -m tcp --dport 9080 -j ISTIO_IN_REDIRECT`: istio-iptables `-b 9080`,
/// the `traffic.sidecar.istio.io/includeInboundPorts` list): without 9080 in the list the rule
/// is not written, and the request reaches the app on the pod IP directly.
#[test]
fn include_inbound_ports_without_the_port() {
    let r = report(
        "scenarios/3-app-on-pod-ip/istio-1.1.scenario.yaml",
        "reviews calls productpage, Envoy's 127.0.0.1 upstream is refused",
    );
    let f = annotation_fix(&r, Annotation::IncludeInboundPorts, &ListChange::Remove("9080".into()));
    assert!(f.edits.iter().any(|e| matches!(e, Edit::RuleRemoved { rule, line: 12, .. }
        if rule == "-A ISTIO_INBOUND -p tcp -m tcp --dport 9080 -j ISTIO_IN_REDIRECT")));
    let p = &f.outcome.paths[0];
    assert!(p.envoy.is_empty());
    assert!(matches!(&p.ending, Ending::Delivered { pod, .. } if pod == "productpage"), "{:?}", p.ending);
}

/// tests/realworld/05 (istio/istio#32677): with `includeOutboundIPRanges: 10.96.0.0/12` the
/// rules end `-d 10.96.0.0/12 -j ISTIO_REDIRECT`, `-j RETURN` and 10.10.0.43:8001 leaves
/// directly. Adding the address to the list adds a `-d ... -j ISTIO_REDIRECT` before that RETURN
/// (testdata/ip-range.golden); the connection then goes through Envoy as every captured one does.
#[test]
fn include_outbound_ip_ranges_with_the_destination() {
    let file = "tests/realworld/05-include-outbound-ports/include-ports.scenario.yaml";
    let r = report(file, "with includeOutboundIPRanges port 8001 outside the range leaves directly");
    let f = annotation_fix(&r, Annotation::IncludeOutboundIpRanges, &ListChange::Add("10.10.0.43/32".into()));
    assert_eq!(inserted(f), [("-A ISTIO_OUTPUT -d 10.10.0.43/32 -j ISTIO_REDIRECT", 30)]);
    let p = &f.outcome.paths[0];
    assert_eq!(p.envoy.first().and_then(|h| h.listener.as_deref()), Some("virtualOutbound"));
}

/// tests/realworld/01 (istio/istio#4286): an app running as uid 1337 bypasses the sidecar;
/// Istio's application requirements say not to run apps as 1337
/// (https://istio.io/latest/docs/ops/deployment/application-requirements/). As another uid the
/// connection ends as the same curl as root does in that thread: through Envoy.
#[test]
fn the_app_as_another_uid() {
    let file = "tests/realworld/01-app-runs-as-uid-1337/bypass.scenario.yaml";
    let r = report(file, "curl as uid 1337 goes straight out");
    let f = the_fix(&r, |s| matches!(s, Setting::AppIdentity { uid: (1337, to), .. } if *to != 1337));
    let want = fixed(file, "curl as root goes through Envoy");
    assert_eq!(endings(&f.outcome), endings(&want));
    assert!(f.outcome.paths.iter().all(|p| p.envoy.first().is_some_and(|h| h.pod == "sleep")));
}

/// The JSON report carries the fixes as docs/explain.schema.json's `fix`: the typed setting,
/// its words, the edits and the re-simulated endings.
#[test]
fn json_fixes_carry_the_typed_setting() {
    let r = report(
        "scenarios/4-bookinfo-packet-life/vs-subset-without-dr.scenario.yaml",
        "productpage calls reviews, 503 NC",
    );
    let doc: serde_json::Value =
        serde_json::from_str(&meshpath::render::explain::json(&r).expect("json")).expect("json");
    let fixes = doc["fixes"].as_array().expect("fixes");
    assert!(fixes.iter().any(|f| f["setting"]["setting"] == "destination_rule_subset"
        && f["setting"]["subset"] == "v1"
        && f["kinds"] == serde_json::json!(["delivered"])));
    assert!(fixes
        .iter()
        .any(|f| f["setting"]["annotation"] == "traffic.sidecar.istio.io/excludeOutboundPorts"
            && f["setting"]["change"] == serde_json::json!({"op": "add", "item": "9080"})));
    // The rules istio-iptables writes, as data a tool can apply.
    let first_rule = serde_json::json!({
        "edit": "rule_inserted",
        "pod": "productpage",
        "file": "scenarios/istio-1.25-redirect.v4.iptables-save",
        "before": 20,
        "rule": "-A ISTIO_OUTPUT -p tcp -m tcp --dport 9080 -j RETURN",
    });
    assert!(fixes.iter().any(|f| f["evidence"][0] == first_rule), "{fixes:#?}");
}

/// tests/realworld/04 (istio/istio#27382): an init container's call is redirected to
/// 127.0.0.1:15001 before Envoy starts and refused. istio/istio#23802: excludeOutboundPorts
/// "443" made it work. The re-simulated call ends as the scenario's pod whose rules carry that
/// exemption (`app-exclude-443`) does: it leaves the pod for the API server.
#[test]
fn exclude_outbound_ports_for_an_init_container() {
    let file = "tests/realworld/04-init-container-before-the-sidecar/init-container.scenario.yaml";
    let r = report(file, "the init container's call to the API server is refused");
    let f = annotation_fix(&r, Annotation::ExcludeOutboundPorts, &ListChange::Add("443".into()));
    // With the injector's 15020 exemptions (lines 18-19), before the 127.0.0.6 rule (line 20).
    assert_eq!(
        inserted(f),
        [
            ("-A ISTIO_OUTPUT -p tcp -m tcp --dport 443 -j RETURN", 20),
            ("-A ISTIO_OUTPUT -p udp -m udp --dport 443 -j RETURN", 20)
        ]
    );
    let want = fixed(file, "with excludeOutboundPorts 443 the init container's call leaves");
    let (Ending::Left { dst: got, cluster: c1, .. }, Ending::Left { dst: exp, cluster: c2, .. }) =
        (&f.outcome.paths[0].ending, &want.paths[0].ending)
    else {
        panic!("{:?} / {:?}", f.outcome.paths[0].ending, want.paths[0].ending)
    };
    assert_eq!((got, c1), (exp, c2));
}

/// Incident 3's other broken snapshot: without the `-o lo` rule a pod's call to its own service
/// skips its inbound sidecar. The README's fix, Istio ≥ 1.10, brings it back: the walk ends as
/// the Istio 1.25 snapshot's self-call does, through both listeners (two Envoy hops).
#[test]
fn incident_3_without_the_lo_rule_istio_1_10() {
    let dir = "scenarios/3-app-on-pod-ip";
    let r = report(
        &format!("{dir}/without-lo-rule.scenario.yaml"),
        "productpage calls its own service, the inbound sidecar is skipped",
    );
    let f =
        the_fix(&r, |s| matches!(s, Setting::InboundPassthroughSource { pod, .. } if pod == "productpage"));
    let want = fixed(
        &format!("{dir}/istio-1.25.scenario.yaml"),
        "productpage calls its own service through both listeners",
    );
    assert_eq!(endings(&f.outcome), endings(&want));
    let hops = |t: &MeshTrace| t.paths.iter().map(|p| p.envoy.len()).collect::<Vec<_>>();
    assert_eq!(hops(&f.outcome), hops(&want));
    let rules: Vec<&str> = inserted(f).into_iter().map(|(r, _)| r).collect();
    assert!(rules.contains(&"-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN"), "{rules:?}");
}

/// tests/realworld/09 (istio/istio#38284): a MySQL client stalls on a sniffed port; declaring
/// `appProtocol: tcp` on the Service port fixed it. Istio then builds the listener with the TCP
/// chain only (the case's `app.app-protocol-tcp.config_dump.json`); the re-simulated connection
/// ends as the case's pod with that dump (`app-fixed`) does.
#[test]
fn the_service_port_declared_tcp() {
    let file = "tests/realworld/09-server-first-mysql-sniffing/mysql.scenario.yaml";
    let r = report(file, "the MySQL client stalls on the sniffed listener");
    let f = the_fix(&r, |s| {
        matches!(s, Setting::ServicePortProtocol { host, port: 6033, app_protocol }
            if host == "proxysql-mysql.namespace2.svc.cluster.local" && app_protocol == "tcp")
    });
    let want = fixed(file, "with appProtocol tcp the MySQL client reaches the proxy");
    let left = |t: &MeshTrace| -> Vec<(SocketAddr, Option<String>)> {
        t.paths
            .iter()
            .map(|p| match &p.ending {
                Ending::Left { dst, cluster, .. } => (*dst, cluster.clone()),
                e => panic!("{e:?}"),
            })
            .collect()
    };
    assert_eq!(left(&f.outcome), left(&want));
}

/// tests/realworld/08 (istio/istio#15381): istio-iptables.sh's IPv6 INPUT rules reject the
/// connection to the pod's own status port (15020). The decisive rule is the REJECT; without it
/// the connection reaches the socket on that port, as it does once the rules accept it.
#[test]
fn without_the_rule_that_rejects() {
    let file = "tests/realworld/08-ipv6-input-reject/ipv6.scenario.yaml";
    let r = report(file, "curl in the pod to its own IPv6 status port is refused");
    let f = the_fix(&r, |s| {
        matches!(s, Setting::WithoutRule { rule, line: 7, .. }
            if rule == "-A INPUT -j REJECT --reject-with icmp6-port-unreachable")
    });
    assert!(
        matches!(&f.outcome.paths[0].ending, Ending::Delivered { socket, .. } if socket.port() == 15020),
        "{:?}",
        f.outcome.paths[0].ending
    );
}
