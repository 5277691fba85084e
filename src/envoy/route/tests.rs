//! Matching rules, one test per rule, including the surprising ones
//! (Envoy: source/common/router/config_impl.cc).

use super::*;

fn cfg(json: &str) -> RouteConfig {
    RouteConfig::from_json_str(json, "test").unwrap()
}

fn hosts(domains: &[(&str, &[&str])]) -> RouteConfig {
    let vhs: Vec<String> = domains
        .iter()
        .map(|(name, ds)| {
            format!(
                r#"{{"name":"{name}","domains":{},"routes":[{{"match":{{"prefix":"/"}},"route":{{"cluster":"{name}"}}}}]}}"#,
                serde_json::to_string(ds).unwrap()
            )
        })
        .collect();
    cfg(&format!(r#"{{"virtual_hosts":[{}]}}"#, vhs.join(",")))
}

fn vhost_for(c: &RouteConfig, host: &str) -> Option<String> {
    route(c, &Request::new(host, "/")).virtual_host.map(|v| v.name)
}

#[test]
fn longest_suffix_wildcard_wins_over_shorter() {
    let c = hosts(&[("com", &["*.com"]), ("foo", &["*.foo.com"]), ("any", &["*"])]);
    assert_eq!(vhost_for(&c, "a.foo.com").as_deref(), Some("foo"));
    assert_eq!(vhost_for(&c, "a.b.foo.com").as_deref(), Some("foo"));
    // `*.foo.com` needs at least one more character: `foo.com` falls to `*.com`.
    assert_eq!(vhost_for(&c, "foo.com").as_deref(), Some("com"));
    assert_eq!(vhost_for(&c, "bar.org").as_deref(), Some("any"));
}

#[test]
fn exact_then_suffix_then_prefix_then_default() {
    let c = hosts(&[
        ("exact", &["api.example.com"]),
        ("suffix", &["*.example.com"]),
        ("prefix", &["api.*"]),
        ("default", &["*"]),
    ]);
    assert_eq!(vhost_for(&c, "API.example.com").as_deref(), Some("exact"));
    assert_eq!(vhost_for(&c, "web.example.com").as_deref(), Some("suffix"));
    assert_eq!(vhost_for(&c, "api.example.org").as_deref(), Some("prefix"));
    assert_eq!(vhost_for(&c, "other").as_deref(), Some("default"));
    // Suffix wildcards are tried before prefix wildcards even when the prefix is longer.
    let c2 = hosts(&[("suffix", &["*.com"]), ("prefix", &["api.example.*"])]);
    assert_eq!(vhost_for(&c2, "api.example.com").as_deref(), Some("suffix"));
}

#[test]
fn port_in_host_and_ignore_port_in_host_matching() {
    let mut c = hosts(&[("svc", &["svc.ns"]), ("ported", &["svc.ns:8080"])]);
    assert_eq!(vhost_for(&c, "svc.ns:80"), None);
    assert_eq!(vhost_for(&c, "svc.ns:8080").as_deref(), Some("ported"));
    c.ignore_port_in_host_matching = true;
    assert_eq!(vhost_for(&c, "svc.ns:80").as_deref(), Some("svc"));
    assert_eq!(vhost_for(&c, "[::1]:80"), None);
}

#[test]
fn duplicate_domains_and_two_defaults_are_rejected() {
    let dup = r#"{"virtual_hosts":[{"name":"a","domains":["x.com"]},{"name":"b","domains":["X.com"]}]}"#;
    assert!(RouteConfig::from_json_str(dup, "t").is_err());
    let two = r#"{"virtual_hosts":[{"name":"a","domains":["*"]},{"name":"b","domains":["*"]}]}"#;
    assert!(RouteConfig::from_json_str(two, "t").is_err());
}

#[test]
fn no_virtual_host_or_route_is_404_nr() {
    let c = hosts(&[("only", &["only.com"])]);
    let d = route(&c, &Request::new("else.com", "/"));
    assert_eq!(d.outcome, Outcome::NotFound);
    assert_eq!(d.response_flag().map(ResponseFlag::as_str), Some("NR"));
    assert_eq!(d.local_status(), Some(404));
    assert!(!d.considered.is_empty());
}

const ORDER: &str = r#"{"virtual_hosts":[{"name":"v","domains":["*"],"routes":[
  {"name":"pre","match":{"prefix":"/api"},"route":{"cluster":"prefix"}},
  {"name":"re","match":{"safe_regex":{"regex":"/api/v[0-9]+"}},"route":{"cluster":"regex"}},
  {"name":"exact","match":{"path":"/Exact","case_sensitive":false},"route":{"cluster":"exact"}},
  {"name":"sep","match":{"path_separated_prefix":"/sep"},"route":{"cluster":"sep"}},
  {"name":"re2","match":{"safe_regex":{"regex":"/r/\\d+"}},"route":{"cluster":"digits"}}
]}]}"#;

fn cluster(c: &RouteConfig, req: &Request) -> Option<String> {
    route(c, req).cluster_name().map(str::to_string)
}

#[test]
fn first_matching_route_wins_prefix_before_regex() {
    let c = cfg(ORDER);
    assert_eq!(cluster(&c, &Request::new("h", "/api/v1")).as_deref(), Some("prefix"));
    let d = route(&c, &Request::new("h", "/nope"));
    assert_eq!(d.considered.iter().filter(|k| k.source.contains("routes")).count(), 5);
}

#[test]
fn path_matching_ignores_query_and_honours_case_sensitivity() {
    let c = cfg(ORDER);
    assert_eq!(cluster(&c, &Request::new("h", "/exact?x=1")).as_deref(), Some("exact"));
    assert_eq!(cluster(&c, &Request::new("h", "/EXACT#frag")).as_deref(), Some("exact"));
    assert_eq!(cluster(&c, &Request::new("h", "/sep")).as_deref(), Some("sep"));
    assert_eq!(cluster(&c, &Request::new("h", "/sep/x")).as_deref(), Some("sep"));
    assert_eq!(cluster(&c, &Request::new("h", "/separate")), None);
    // RE2 full match, ASCII \d.
    assert_eq!(cluster(&c, &Request::new("h", "/r/42")).as_deref(), Some("digits"));
    assert_eq!(cluster(&c, &Request::new("h", "/r/42/x")), None);
    assert_eq!(cluster(&c, &Request::new("h", "/r/٤٢")), None);
}

#[test]
fn header_matchers() {
    let c = cfg(r#"{"virtual_hosts":[{"name":"v","domains":["*"],"routes":[
      {"match":{"prefix":"/","headers":[{"name":"x-v","string_match":{"prefix":"canary"}}]},"route":{"cluster":"prefix"}},
      {"match":{"prefix":"/","headers":[{"name":"x-n","range_match":{"start":"10","end":20}}]},"route":{"cluster":"range"}},
      {"match":{"prefix":"/","headers":[{"name":"x-p","present_match":true,"invert_match":true},{"name":"x-q"}]},"route":{"cluster":"absent-p"}},
      {"match":{"prefix":"/","headers":[{"name":"x-e","exact_match":"a","invert_match":true}]},"route":{"cluster":"not-a"}},
      {"match":{"prefix":"/","headers":[{"name":"x-m","string_match":{"exact":""},"treat_missing_header_as_empty":true}]},"route":{"cluster":"missing-empty"}},
      {"match":{"prefix":"/"},"route":{"cluster":"fallback"}}]}]}"#);
    let with = |h: &[(&str, &str)]| {
        let mut r = Request::new("h", "/");
        r.headers = h.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        cluster(&c, &r).unwrap_or_default()
    };
    assert_eq!(with(&[("X-V", "canary-2")]), "prefix");
    assert_eq!(with(&[("x-n", "15")]), "range");
    assert_eq!(with(&[("x-n", "20")]), "missing-empty");
    assert_eq!(with(&[("x-q", "1")]), "absent-p");
    assert_eq!(with(&[("x-q", "1"), ("x-p", "")]), "missing-empty");
    // An inverted matcher on a missing header does not match.
    assert_eq!(with(&[("x-e", "b"), ("x-m", "z")]), "not-a");
    assert_eq!(with(&[("x-m", "z")]), "fallback");
}

#[test]
fn query_parameters_grpc_and_runtime_fraction() {
    let c = cfg(r#"{"virtual_hosts":[{"name":"v","domains":["*"],"routes":[
      {"match":{"prefix":"/","query_parameters":[{"name":"debug","string_match":{"exact":"1"}}]},"route":{"cluster":"debug"}},
      {"match":{"prefix":"/","grpc":{}},"route":{"cluster":"grpc"}},
      {"match":{"prefix":"/","runtime_fraction":{"default_value":{"numerator":30,"denominator":"HUNDRED"},"runtime_key":"k"}},"route":{"cluster":"canary"}},
      {"match":{"prefix":"/"},"route":{"cluster":"main"}}]}]}"#);
    assert_eq!(cluster(&c, &Request::new("h", "/?a=b&debug=1")).as_deref(), Some("debug"));
    let mut g = Request::new("h", "/");
    g.headers.push(("content-type".into(), "application/grpc+proto".into()));
    assert_eq!(cluster(&c, &g).as_deref(), Some("grpc"));
    let mut r = Request::new("h", "/");
    r.random_value = Some(129); // 129 % 100 = 29 < 30
    assert_eq!(cluster(&c, &r).as_deref(), Some("canary"));
    r.random_value = Some(30);
    assert_eq!(cluster(&c, &r).as_deref(), Some("main"));
    // router_check_tool: only the test's enabled key can match.
    r.random_value = Some(0);
    r.runtime = RuntimeMode::RouterCheckTool { enabled_key: None };
    assert_eq!(cluster(&c, &r).as_deref(), Some("main"));
}

#[test]
fn weighted_clusters_pick_by_interval_or_keep_every_branch() {
    let c = cfg(r#"{"virtual_hosts":[{"name":"v","domains":["*"],"routes":[{"match":{"prefix":"/"},
      "route":{"weighted_clusters":{"clusters":[{"name":"a","weight":1},{"name":"b","weight":"2"},{"name":"c","weight":7}]}}}]}]}"#);
    let pick = |rv| {
        let mut r = Request::new("h", "/");
        r.random_value = Some(rv);
        cluster(&c, &r).unwrap_or_default()
    };
    // Σ = 10 (no total_weight needed): [0,1) a, [1,3) b, [3,10) c.
    assert_eq!(pick(0), "a");
    assert_eq!(pick(1), "b");
    assert_eq!(pick(12), "b");
    assert_eq!(pick(13), "c");
    let d = route(&c, &Request::new("h", "/"));
    match &d.outcome {
        Outcome::Forward { target: ClusterTarget::Weighted { branches, total_weight, selected }, .. } => {
            assert_eq!(*total_weight, 10);
            assert_eq!(*selected, None);
            assert_eq!(branches.len(), 3);
        }
        other => panic!("{other:?}"),
    }
    let zero = cfg(r#"{"virtual_hosts":[{"name":"v","domains":["*"],"routes":[{"match":{"prefix":"/"},
      "route":{"weighted_clusters":{"clusters":[{"name":"a","weight":0}]}}}]}]}"#);
    assert_eq!(route(&zero, &Request::new("h", "/")).outcome, Outcome::NotFound);
}

#[test]
fn cluster_header_missing_is_nc() {
    let c = cfg(
        r#"{"virtual_hosts":[{"name":"v","domains":["*"],"routes":[{"match":{"prefix":"/"},"route":{"cluster_header":"x-cluster"}}]}]}"#,
    );
    let d = route(&c, &Request::new("h", "/"));
    assert_eq!(d.response_flag(), Some(ResponseFlag::NoClusterFound));
    assert_eq!(d.local_status(), Some(503));
    let mut r = Request::new("h", "/");
    r.headers.push(("X-Cluster".into(), "blue".into()));
    assert_eq!(cluster(&c, &r).as_deref(), Some("blue"));
}

#[test]
fn redirects_and_direct_responses() {
    let c = cfg(r#"{"virtual_hosts":[{"name":"v","domains":["*"],"routes":[
      {"match":{"prefix":"/old"},"redirect":{"prefix_rewrite":"/new","response_code":"FOUND"}},
      {"match":{"prefix":"/secure"},"redirect":{"https_redirect":true,"port_redirect":8443,"strip_query":true}},
      {"match":{"prefix":"/moved"},"redirect":{"host_redirect":"b.com","path_redirect":"/x"}},
      {"match":{"prefix":"/ping"},"direct_response":{"status":200,"body":{"inline_string":"pong"}}}]}]}"#);
    let out = |p: &str| route(&c, &Request::new("a.com:80", p)).outcome;
    assert_eq!(
        out("/old/page?q=1"),
        Outcome::Redirect {
            location: "http://a.com:80/new/page?q=1".into(),
            status: 302,
            require_tls: false
        }
    );
    assert_eq!(
        out("/secure?q=1"),
        Outcome::Redirect { location: "https://a.com:8443/secure".into(), status: 301, require_tls: false }
    );
    assert_eq!(
        out("/moved?k=v"),
        Outcome::Redirect { location: "http://b.com/x?k=v".into(), status: 301, require_tls: false }
    );
    assert_eq!(out("/ping"), Outcome::DirectResponse { status: 200, body: Some("pong".into()) });
}

#[test]
fn require_tls_redirects_before_routes() {
    let c = cfg(
        r#"{"virtual_hosts":[{"name":"v","domains":["*"],"require_tls":"EXTERNAL_ONLY","routes":[{"match":{"prefix":"/"},"route":{"cluster":"c"}}]}]}"#,
    );
    let d = route(&c, &Request::new("a.com", "/x"));
    assert_eq!(
        d.outcome,
        Outcome::Redirect { location: "https://a.com/x".into(), status: 301, require_tls: true }
    );
    let mut internal = Request::new("a.com", "/x");
    internal.headers.push(("x-envoy-internal".into(), "true".into()));
    assert_eq!(cluster(&c, &internal).as_deref(), Some("c"));
}

#[test]
fn camel_case_type_urls_strings_and_istio_metadata() {
    let c = cfg(r#"{"@type":"type.googleapis.com/envoy.config.route.v3.RouteConfiguration","name":"80",
      "virtualHosts":[{"name":"a","domains":["a"]},{"name":"b","domains":["b"],"routes":[{"name":"r0",
      "match":{"prefix":"/","caseSensitive":true},"route":{"cluster":"outbound|80||b","timeout":"0.250s"},
      "metadata":{"filterMetadata":{"istio":{"config":"/apis/networking.istio.io/v1/namespaces/ns/virtual-service/b"}}}}],
      "unknownField":{"x":1}}],"ignorePortInHostMatching":true,}"#);
    let d = route(&c, &Request::new("b:80", "/"));
    let r = d.route.clone().unwrap();
    assert_eq!(r.source, "virtual_hosts[1].routes[0]");
    assert_eq!(d.virtual_host.unwrap().source, "virtual_hosts[1]");
    assert!(r.istio_config.unwrap().ends_with("virtual-service/b"));
    assert_eq!(
        d.outcome,
        Outcome::Forward {
            target: ClusterTarget::Cluster("outbound|80||b".into()),
            timeout_nanos: 250_000_000,
        }
    );
}

#[test]
fn yaml_and_embedding_in_a_larger_document() {
    #[derive(serde::Deserialize)]
    struct Dump {
        dynamic_route_configs: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        route_config: RouteConfig,
    }
    let yaml = "dynamic_route_configs:\n- version_info: '1'\n  route_config:\n    name: '80'\n    virtual_hosts:\n    - name: v\n      domains: ['*']\n      routes:\n      - match: {prefix: /}\n        route:\n          cluster: c\n          timeout: {seconds: 30}\n";
    let d: Dump = serde_saphyr::from_str(yaml).unwrap();
    let rc = &d.dynamic_route_configs[0].route_config;
    assert_eq!(rc.name, "80");
    assert_eq!(route(rc, &Request::new("x", "/")).cluster_name(), Some("c"));
    let json = r#"{"dynamic_route_configs":[{"route_config":{"virtual_hosts":[{"name":"v","domains":["*"],"routes":[{"match":{"prefix":"/"},"route":{"cluster":"j"}}]}]}}]}"#;
    let d: Dump = serde_json::from_str(json).unwrap();
    assert_eq!(
        route(&d.dynamic_route_configs[0].route_config, &Request::new("x", "/")).cluster_name(),
        Some("j")
    );
}

#[test]
fn invalid_regex_is_a_config_error_with_location() {
    let e = RouteConfig::from_json_str(
        r#"{"virtual_hosts":[{"name":"v","domains":["*"],"routes":[{"match":{"safe_regex":{"regex":"(?=x)"}},"route":{"cluster":"c"}}]}]}"#,
        "t",
    )
    .unwrap_err();
    assert!(e.to_string().contains("invalid RE2 regex"), "{e}");
    assert!(e.to_string().contains("line 1"), "{e}");
}

#[test]
fn legacy_v1_json_converts() {
    let c = legacy::from_v1_json(
        r#"{"virtual_hosts":[{"name":"w","domains":["*"],"require_ssl":"all","routes":[
      {"prefix":"/a","cluster":"a","prefix_rewrite":"/b","timeout_ms":100},
      {"path":"/r","host_redirect":"n.com"}]}]}"#,
        "v1",
    )
    .unwrap();
    let mut r = Request::new("h", "/a");
    r.scheme = "https".into();
    assert_eq!(cluster(&c, &r).as_deref(), Some("a"));
    assert!(matches!(
        route(&c, &Request::new("h", "/a")).outcome,
        Outcome::Redirect { require_tls: true, .. }
    ));
}

#[test]
fn a_route_action_without_a_cluster_is_rejected() {
    let e = RouteConfig::from_json_str(
        r#"{"virtual_hosts":[{"name":"v","domains":["*"],"routes":[{"match":{"prefix":"/"},"route":{"prefix_rewrite":"/x"}}]}]}"#,
        "t",
    )
    .unwrap_err();
    assert!(e.to_string().contains("route action needs one of cluster"), "{e}");
}
