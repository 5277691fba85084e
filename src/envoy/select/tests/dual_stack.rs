//! Listeners with `additional_addresses`: Envoy binds a socket on each address and finds the
//! listener by any of them. source/common/listener_manager/listener_impl.cc,
//! `ListenerImpl::ListenerImpl`: `address` and every `additional_addresses` entry go into
//! `addresses_`, one listen socket factory each; connection_handler_impl.cc,
//! `ConnectionHandlerImpl::addListener` indexes `tcp_listener_map_by_address_` by each
//! address, and `getBalancedHandlerByAddress` (the `use_original_dst` hand-off) looks the
//! restored destination up in that map (exact address, then the same-family wildcard).

use super::super::*;
use super::*;

/// Istio's dual-stack virtualOutbound (pilot/pkg/networking/core/listener_builder.go,
/// `ListenerBuilder.buildVirtualOutboundListener`): `0.0.0.0:15001`, additional `[::]:15001`.
fn dual_stack_virtual_outbound() -> String {
    virtual_outbound().replacen(
        r#""use_original_dst""#,
        r#""additional_addresses": [{"address": {"socket_address": {"address": "::", "port_value": 15001}}}], "use_original_dst""#,
        1,
    )
}

#[test]
fn ipv6_delivery_to_15001_is_accepted_through_the_additional_address() {
    let cfg = dump(&dual_stack_virtual_outbound(), &passthrough_clusters(), "");
    for local in ["[::1]:15001", "[fd00:10:244::5]:15001"] {
        let t = evaluate(&cfg, &query(local, "[2606:2800:21f:cb07:6820:80da:af6b:8b2c]:443"));
        assert_eq!(t.accepted_by.as_ref().map(|o| o.name.as_str()), Some("virtualOutbound"), "{local}");
        assert_eq!(chain_name(&t).as_deref(), Some("virtualOutbound-catchall-tcp"), "{local}");
        assert!(
            matches!(&t.outcome, Outcome::Forwarded { cluster, .. } if cluster == "PassthroughCluster"),
            "{local}: {:?}",
            t.outcome
        );
    }
    // The same listener without the additional address has no IPv6 socket: nothing accepts.
    let single = dump(&virtual_outbound(), &passthrough_clusters(), "");
    let t = evaluate(&single, &query("[::1]:15001", "[2606:2800:21f:cb07:6820:80da:af6b:8b2c]:443"));
    assert!(t.accepted_by.is_none(), "{t:?}");
}

#[test]
fn handoff_finds_a_listener_by_its_additional_address() {
    let app = listener(
        "app_9080",
        "10.0.0.7",
        9080,
        &format!(
            r#", "bind_to_port": false,
               "additional_addresses": [{{"address": {{"socket_address": {{"address": "fd00::7", "port_value": 9080}}}}}}],
               "filter_chains": [{}]"#,
            chain("app", "{}", "app")
        ),
    );
    let cfg = dump(
        &[dual_stack_virtual_outbound(), app].join(","),
        &[passthrough_clusters(), static_cluster("app", "fd00::7", 9080)].join(","),
        "",
    );
    let t = evaluate(&cfg, &query("[::1]:15001", "[fd00::7]:9080"));
    let h = t.handoff.expect("hand-off");
    assert_eq!(h.target.name, "app_9080");
    assert_eq!(h.matched, Some(listener::HandoffMatch::Exact));
}
