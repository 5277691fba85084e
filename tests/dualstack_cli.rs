//! A dual-stack sidecar (tests/fixtures/mesh/README.md, "Dual stack"): Envoy's `virtualOutbound`
//! listens on `0.0.0.0:15001` and, through `additional_addresses`, on `[::]:15001`, so the
//! app's IPv6 connection that ip6tables redirects to `[::1]:15001` is accepted by it.

mod common;

use common::{meshpath, MESH, RULES_1_25};
use serde_json::Value;

const RULES_V6: &str = "tests/fixtures/mesh/istio-1.25-redirect.v6.ip6tables-save";
/// An outside IPv6 address (example.com's AAAA).
const OUTSIDE_V6: &str = "[2606:2800:21f:cb07:6820:80da:af6b:8b2c]:443";

fn trace_v6(dump: &str) -> Value {
    let out = meshpath()
        .args(["trace", "--pod", "dual", "--iptables", RULES_1_25, "--ip6tables", RULES_V6])
        .args(["--envoy", &format!("{MESH}/{dump}.config_dump.json")])
        .args(["--pod-ip", "10.244.0.5,fd00:10:244::5", "--dst", OUTSIDE_V6, "--sni", "example.com"])
        .args(["--format", "json"])
        .output()
        .expect("runs");
    let json = String::from_utf8(out.stdout).expect("utf-8");
    let v: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    let paths = v["paths"].as_array().expect("paths");
    assert_eq!(paths.len(), 1, "{json}");
    paths[0].clone()
}

/// Istio's dual-stack `virtualOutbound` carries the IPv6 wildcard as an additional address
/// (pilot/pkg/networking/core/listener_builder.go, `ListenerBuilder.buildVirtualOutboundListener`: the first
/// wildcard is `address`, the others `additional_addresses`). Envoy binds a socket for each
/// (source/common/listener_manager/listener_impl.cc, `ListenerImpl::ListenerImpl` puts `address`
/// and every `additional_addresses` entry in `addresses_`, one listen socket factory each;
/// connection_handler_impl.cc, `ConnectionHandlerImpl::addListener` starts an `ActiveTcpListener`
/// per socket and indexes `tcp_listener_map_by_address_` by each address). The rules send the
/// app's IPv6 connection to `[::1]:15001` (`-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports
/// 15001`), the kernel hands it to the `[::]:15001` socket, `use_original_dst` finds no listener
/// for :443 and `virtualOutbound-catchall-tcp` sends it to `PassthroughCluster`; Envoy's own
/// connection (uid 1337) returns from ISTIO_OUTPUT and leaves the pod.
#[test]
fn ipv6_connection_redirected_to_15001_is_accepted_on_the_additional_address() {
    let path = trace_v6("dualstack.istio-1.25");
    assert_eq!(path["ending"]["kind"], "left", "{path}");
    let listeners: Vec<&str> =
        path["envoy"].as_array().expect("envoy").iter().filter_map(|e| e["listener"].as_str()).collect();
    assert_eq!(listeners, ["virtualOutbound"], "{path}");
    let clusters: Vec<&str> =
        path["envoy"].as_array().expect("envoy").iter().filter_map(|e| e["cluster"].as_str()).collect();
    assert_eq!(clusters, ["PassthroughCluster"], "{path}");
}

/// The same pod with Istio's single-stack dump (no `additional_addresses`): Envoy has no IPv6
/// socket on 15001, so the redirected connection finds no listener and the kernel refuses it
/// (`tcp_v6_rcv`: no socket, RST).
#[test]
fn without_the_additional_address_the_ipv6_connection_is_refused() {
    let path = trace_v6("productpage.istio-1.25");
    assert_eq!(path["ending"]["kind"], "refused", "{path}");
    assert_eq!(path["ending"]["by"], "no_socket", "{path}");
    assert_eq!(path["ending"]["dst"], "[::1]:15001", "{path}");
}
