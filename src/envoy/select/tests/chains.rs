//! Accept, hand-off, listener filters and filter-chain selection.

use super::super::*;
use super::*;

#[test]
fn handoff_prefers_exact_listener_even_without_bind_to_port() {
    let ls = [
        virtual_outbound(),
        listener(
            "10.96.0.10_53",
            "10.96.0.10",
            53,
            &format!(
                r#", "bind_to_port": false, "filter_chains": [{}]"#,
                chain("c", "{}", "dns")
            ),
        ),
        listener(
            "0.0.0.0_53",
            "0.0.0.0",
            53,
            &format!(
                r#", "bind_to_port": false, "filter_chains": [{}]"#,
                chain("w", "{}", "wild")
            ),
        ),
    ]
    .join(",");
    let cs = [
        passthrough_clusters(),
        static_cluster("dns", "10.1.1.1", 53),
        static_cluster("wild", "10.1.1.2", 53),
    ]
    .join(",");
    let cfg = dump(&ls, &cs, "");
    let t = evaluate(&cfg, &query("10.0.0.5:15001", "10.96.0.10:53"));
    let h = t
        .handoff
        .as_ref()
        .map(|h| (h.target.name.as_str(), h.matched));
    assert_eq!(h, Some(("10.96.0.10_53", Some(HandoffMatch::Exact))));
    assert_eq!(
        t.outcome,
        Outcome::Forwarded {
            cluster: "dns".into(),
            endpoint: "10.1.1.1:53".into(),
            source_address: None
        }
    );
    // Another IP on port 53: same-family wildcard.
    let t = evaluate(&cfg, &query("10.0.0.5:15001", "10.96.0.99:53"));
    assert_eq!(
        t.handoff.and_then(|h| h.matched),
        Some(HandoffMatch::Wildcard)
    );
    // No listener for the port: stays on virtualOutbound → PassthroughCluster to the original dst.
    let t = evaluate(&cfg, &query("10.0.0.5:15001", "93.184.216.34:443"));
    assert_eq!(t.handoff.as_ref().and_then(|h| h.matched), None);
    assert_eq!(
        chain_name(&t).as_deref(),
        Some("virtualOutbound-catchall-tcp")
    );
    assert_eq!(
        t.outcome,
        Outcome::Forwarded {
            cluster: "PassthroughCluster".into(),
            endpoint: "93.184.216.34:443".into(),
            source_address: None
        }
    );
}

#[test]
fn handoff_target_without_matching_chain_does_not_fall_back() {
    // The 0.0.0.0_9080 listener only takes HTTP; an opaque connection finds no chain there and
    // is closed, although virtualOutbound's catch-all would have matched.
    let http_only = chain(
        "http",
        r#"{"transport_protocol": "raw_buffer", "application_protocols": ["http/1.1", "h2c"]}"#,
        "web",
    );
    let ls = [
        virtual_outbound(),
        listener(
            "0.0.0.0_9080",
            "0.0.0.0",
            9080,
            &format!(
                r#", "bind_to_port": false, "listener_filters": [{{"name": "envoy.filters.listener.http_inspector"}}], "filter_chains": [{http_only}]"#
            ),
        ),
    ]
    .join(",");
    let cfg = dump(
        &ls,
        &[
            passthrough_clusters(),
            static_cluster("web", "10.2.2.2", 9080),
        ]
        .join(","),
        "",
    );
    let t = evaluate(&cfg, &query("10.0.0.5:15001", "10.96.3.3:9080"));
    assert_eq!(
        t.outcome,
        Outcome::Closed {
            flag: Some("NR".into()),
            details: "filter_chain_not_found (listener 0.0.0.0_9080)".into()
        }
    );
    let mut q = query("10.0.0.5:15001", "10.96.3.3:9080");
    q.client = ClientBytes::Http1;
    let t = evaluate(&cfg, &q);
    assert_eq!(chain_name(&t).as_deref(), Some("http"));
}

#[test]
fn exact_destination_port_wins_and_then_fails_without_backtracking() {
    // Chain "p" names port 8080 but wants TLS; chain "any" has no port. A plaintext connection
    // to 8080 picks the port subtree, fails there, and does NOT try "any": default chain.
    let chains = [
        chain(
            "p",
            r#"{"destination_port": 8080, "transport_protocol": "tls"}"#,
            "tls",
        ),
        chain("any", "{}", "plain"),
    ]
    .join(",");
    let dflt = chain("fallback", "{}", "dflt");
    let with_default = listener(
        "l",
        "0.0.0.0",
        8080,
        &format!(r#", "filter_chains": [{chains}], "default_filter_chain": {dflt}"#),
    );
    let cs = [
        static_cluster("tls", "10.0.0.1", 1),
        static_cluster("plain", "10.0.0.2", 2),
        static_cluster("dflt", "10.0.0.3", 3),
    ]
    .join(",");
    let cfg = dump(&with_default, &cs, "");
    let t = evaluate(&cfg, &query("10.0.0.5:8080", "10.0.0.5:8080"));
    let fc = t
        .filter_chain
        .as_ref()
        .map(|c| (c.via, c.chain.name.as_str()));
    assert_eq!(fc, Some(("default_filter_chain", "fallback")));
    // Without a default chain the connection is closed with NR.
    let no_default = listener(
        "l",
        "0.0.0.0",
        8080,
        &format!(r#", "filter_chains": [{chains}]"#),
    );
    let cfg = dump(&no_default, &cs, "");
    let t = evaluate(&cfg, &query("10.0.0.5:8080", "10.0.0.5:8080"));
    assert!(matches!(t.outcome, Outcome::Closed { ref flag, .. } if flag.as_deref() == Some("NR")));
    // Another port uses the port-less chain.
    let l2 = listener(
        "l",
        "0.0.0.0",
        9090,
        &format!(r#", "filter_chains": [{chains}]"#),
    );
    let cfg = dump(&l2, &cs, "");
    let t = evaluate(&cfg, &query("10.0.0.5:9090", "10.0.0.5:9090"));
    assert_eq!(chain_name(&t).as_deref(), Some("any"));
}

fn sni_listener() -> EnvoyConfig {
    let chains = [
        chain("exact", r#"{"server_names": ["api.foo.com"]}"#, "a"),
        chain("foo", r#"{"server_names": ["*.foo.com"]}"#, "b"),
        chain("com", r#"{"server_names": ["*.com"]}"#, "c"),
        chain("none", "{}", "d"),
    ]
    .join(",");
    let l = listener(
        "tls",
        "0.0.0.0",
        443,
        &format!(
            r#", "listener_filters": [{{"name": "envoy.filters.listener.tls_inspector"}}], "filter_chains": [{chains}]"#
        ),
    );
    dump(&l, "", "")
}

fn sni(cfg: &EnvoyConfig, name: Option<&str>) -> Option<String> {
    let mut q = query("10.0.0.5:443", "10.0.0.5:443");
    q.client = ClientBytes::Tls {
        sni: name.map(str::to_string),
        alpn: vec![],
    };
    chain_name(&evaluate(cfg, &q))
}

#[test]
fn server_names_exact_then_longest_wildcard_then_none() {
    let cfg = sni_listener();
    assert_eq!(sni(&cfg, Some("api.foo.com")).as_deref(), Some("exact"));
    assert_eq!(sni(&cfg, Some("API.Foo.com")).as_deref(), Some("exact"));
    assert_eq!(sni(&cfg, Some("www.foo.com")).as_deref(), Some("foo"));
    // `*.foo.com` also matches several labels, never `foo.com` itself.
    assert_eq!(sni(&cfg, Some("a.b.foo.com")).as_deref(), Some("foo"));
    assert_eq!(sni(&cfg, Some("foo.com")).as_deref(), Some("com"));
    assert_eq!(sni(&cfg, Some("bar.org")).as_deref(), Some("none"));
    assert_eq!(sni(&cfg, None).as_deref(), Some("none"));
    assert_eq!(
        chain::wildcards("a.b.c.com"),
        vec!["*.b.c.com", "*.c.com", "*.com"]
    );
}

#[test]
fn prefix_ranges_longest_prefix_and_alpn_in_client_order() {
    let chains = [
        chain("wide", r#"{"prefix_ranges": [{"address_prefix": "10.0.0.0", "prefix_len": 8}]}"#, "w"),
        chain("narrow", r#"{"prefix_ranges": [{"address_prefix": "10.1.0.0", "prefix_len": 16}], "application_protocols": ["h2"]}"#, "n"),
        chain("narrow-h1", r#"{"prefix_ranges": [{"address_prefix": "10.1.0.0", "prefix_len": 16}], "application_protocols": ["http/1.1"]}"#, "n1"),
    ]
    .join(",");
    let l = listener(
        "l",
        "0.0.0.0",
        80,
        &format!(
            r#", "listener_filters": [{{"name": "envoy.listener.tls_inspector"}}], "filter_chains": [{chains}]"#
        ),
    );
    let cfg = dump(&l, "", "");
    let mut q = query("10.1.2.3:80", "10.1.2.3:80");
    q.client = ClientBytes::Tls {
        sni: None,
        alpn: vec!["http/1.1".into(), "h2".into()],
    };
    assert_eq!(
        chain_name(&evaluate(&cfg, &q)).as_deref(),
        Some("narrow-h1")
    );
    q.client = ClientBytes::Tls {
        sni: None,
        alpn: vec!["h2".into(), "http/1.1".into()],
    };
    assert_eq!(chain_name(&evaluate(&cfg, &q)).as_deref(), Some("narrow"));
    // 10.1/16 is most specific but neither ALPN matches: no backtracking to 10/8.
    q.client = ClientBytes::Tls {
        sni: None,
        alpn: vec!["istio".into()],
    };
    assert!(evaluate(&cfg, &q).filter_chain.is_none());
    let q = query("10.9.9.9:80", "10.9.9.9:80");
    assert_eq!(chain_name(&evaluate(&cfg, &q)).as_deref(), Some("wide"));
}

#[test]
fn source_type_and_source_ports() {
    let chains = [
        chain("local", r#"{"source_type": "SAME_IP_OR_LOOPBACK"}"#, "l"),
        chain("any", "{}", "a"),
    ]
    .join(",");
    let cfg = dump(
        &listener(
            "l",
            "0.0.0.0",
            80,
            &format!(r#", "filter_chains": [{chains}]"#),
        ),
        "",
        "",
    );
    let mut q = query("10.0.0.5:80", "10.0.0.5:80");
    q.src = sa("127.0.0.1:5000");
    assert_eq!(chain_name(&evaluate(&cfg, &q)).as_deref(), Some("local"));
    q.src = sa("10.0.0.5:5000");
    assert_eq!(chain_name(&evaluate(&cfg, &q)).as_deref(), Some("local"));
    q.src = sa("10.0.0.7:5000");
    assert_eq!(chain_name(&evaluate(&cfg, &q)).as_deref(), Some("any"));
}

#[test]
fn http_inspector_is_a_noop_after_tls_and_filter_disabled_skips_filters() {
    let l = listener(
        "virtualInbound",
        "0.0.0.0",
        15006,
        r#", "listener_filters": [
            {"name": "envoy.filters.listener.original_dst"},
            {"name": "envoy.filters.listener.tls_inspector", "filter_disabled": {"destination_port_range": {"start": 3306, "end": 3307}}},
            {"name": "envoy.filters.listener.http_inspector"}],
          "filter_chains": [{"filters": []}]"#,
    );
    let cfg = dump(&l, "", "");
    let mut q = query("10.0.0.5:15006", "10.0.0.5:8080");
    q.client = ClientBytes::Tls {
        sni: Some("x".into()),
        alpn: vec!["istio".into()],
    };
    let t = evaluate(&cfg, &q);
    let st = t
        .socket
        .clone()
        .unwrap_or_else(|| panic!("no socket state"));
    assert_eq!(
        (
            st.transport_protocol.as_str(),
            st.application_protocols.clone()
        ),
        ("tls", vec!["istio".to_string()])
    );
    assert_eq!(st.local, sa("10.0.0.5:8080"));
    assert_eq!(
        t.outcome,
        Outcome::Closed {
            flag: None,
            details: "filter chain has no filters".into()
        }
    );
    // Port 3306: TLS inspection disabled, so the transport stays raw_buffer.
    q.dst = sa("10.0.0.5:3306");
    let t = evaluate(&cfg, &q);
    assert_eq!(
        t.socket.map(|s| s.transport_protocol),
        Some("raw_buffer".to_string())
    );
    assert!(t.listener_filters.iter().any(|s| s.status == "disabled"));
}

#[test]
fn filter_chain_matcher_tree_selects_by_name() {
    let named = |n: &str| {
        format!(
            r#"{{"action": {{"name": "{n}", "typed_config": {{"@type": "type.googleapis.com/google.protobuf.StringValue", "value": "{n}"}}}}}}"#
        )
    };
    let input = |t: &str| {
        format!(
            r#"{{"name": "x", "typed_config": {{"@type": "type.googleapis.com/envoy.extensions.matching.common_inputs.network.v3.{t}"}}}}"#
        )
    };
    let matcher = format!(
        r#"{{"matcher_tree": {{"input": {ip}, "custom_match": {{"name": "ip", "typed_config": {{"@type": "type.googleapis.com/xds.type.matcher.v3.IPMatcher",
            "range_matchers": [{{"ranges": [{{"address_prefix": "10.0.0.5", "prefix_len": 32}}],
              "on_match": {{"matcher": {{"matcher_tree": {{"input": {port}, "exact_match_map": {{"map": {{"8000": {p8000}, "9000": {ghost}}}}}}}}}}}}}]}}}}}},
          "on_no_match": {nomatch}}}"#,
        ip = input("DestinationIPInput"),
        port = input("DestinationPortInput"),
        p8000 = named("http-8000"),
        ghost = named("missing-chain"),
        nomatch = named("tcp-any"),
    );
    let chains = [chain("http-8000", "{}", "a"), chain("tcp-any", "{}", "b")].join(",");
    let l = listener(
        "main",
        "0.0.0.0",
        15008,
        &format!(
            r#", "listener_filters": [{{"name": "envoy.filters.listener.original_dst"}}], "filter_chain_matcher": {matcher}, "filter_chains": [{chains}]"#
        ),
    );
    let cfg = dump(&l, "", "");
    let t = evaluate(&cfg, &query("10.0.0.5:15008", "10.0.0.5:8000"));
    assert_eq!(
        t.filter_chain
            .as_ref()
            .map(|c| (c.via, c.chain.name.as_str())),
        Some(("filter_chain_matcher", "http-8000"))
    );
    // Unknown port under the matched IP: the nested matcher fails → outer on_no_match.
    let t = evaluate(&cfg, &query("10.0.0.5:15008", "10.0.0.5:7000"));
    assert_eq!(chain_name(&t).as_deref(), Some("tcp-any"));
    // A name no chain has: closed.
    let t = evaluate(&cfg, &query("10.0.0.5:15008", "10.0.0.5:9000"));
    assert!(matches!(t.outcome, Outcome::Closed { .. }));
}
