//! The fix for a port whose protocol Istio sniffs: the Service port's declared protocol.

use super::fix::{Candidate, Edit, Goal, Setting};
use crate::engine::{Ending, Mesh, Path};
use crate::envoy::model::{FilterChain, FilterChainMatch, NetworkFilterKind};

/// The cluster a chain's terminal tcp_proxy names.
fn tcp_cluster(c: &FilterChain) -> Option<&str> {
    c.filters.iter().find_map(|f| match &f.kind {
        NetworkFilterKind::TcpProxy(t) => t.cluster.as_deref(),
        _ => None,
    })
}

/// A connection stalled at a listener filter of a listener Istio built for a port whose
/// protocol it sniffs (chains matching `application_protocols` http/1.1 or h2c, and a TCP chain
/// to `outbound|P||HOST`). Istio sniffs a port whose Service port declares no protocol
/// (https://istio.io/latest/docs/ops/configuration/traffic-management/protocol-selection/);
/// declared TCP (`appProtocol: tcp`, or a port name `tcp-...`), the listener gets the TCP chain
/// alone and no listener filters (istio/istio#38284; tests/realworld/09's
/// `app.app-protocol-tcp.config_dump.json`).
pub(super) fn service_port_protocol(mesh: &Mesh, p: &Path, out: &mut Vec<Candidate>) {
    let Ending::Stalled { pod, listener, .. } = &p.ending else { return };
    let Some(pi) = mesh.pod_index(pod) else { return };
    let Some(cfg) = mesh.pods.get(pi).and_then(|p| p.envoy.as_ref()) else { return };
    let Some(l) = cfg.listener(listener) else { return };
    let sniffs = |c: &FilterChain| {
        c.filter_chain_match.application_protocols.iter().any(|a| a == "http/1.1" || a == "h2c")
    };
    if !l.filter_chains.iter().any(sniffs) {
        return;
    }
    let tcp = l
        .filter_chains
        .iter()
        .chain(l.default_filter_chain.iter())
        .find(|c| !sniffs(c) && tcp_cluster(c).is_some_and(|n| n.starts_with("outbound|")));
    let Some(tcp) = tcp else { return };
    let Some(cluster) = tcp_cluster(tcp).map(str::to_string) else { return };
    let [_, port, _, host] = cluster.split('|').collect::<Vec<_>>()[..] else { return };
    let Ok(port) = port.parse::<u16>() else { return };
    let mut chain = tcp.clone();
    chain.filter_chain_match = FilterChainMatch::default();
    let mut m = mesh.clone();
    let Some(cfg) = m.pods.get_mut(pi).and_then(|p| p.envoy.as_mut()) else { return };
    let Some(ml) = cfg.listeners.iter_mut().find(|x| &x.name == listener) else { return };
    ml.filter_chains = vec![chain];
    ml.default_filter_chain = None;
    ml.filter_chain_matcher = None;
    ml.listener_filters = Vec::new();
    cfg.build_lookup();
    out.push(Candidate {
        setting: Setting::ServicePortProtocol {
            host: host.to_string(),
            port,
            app_protocol: "tcp".to_string(),
        },
        edits: vec![Edit::ListenerTcpOnly { pod: pod.clone(), listener: listener.clone(), cluster }],
        mesh: m,
        start: None,
        goal: Goal::OtherEnding,
    });
}
