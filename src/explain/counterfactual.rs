//! Counterfactuals: a small change to a copy of the snapshot, re-simulated with the same
//! start. Each one is reported only with the endings it produces. The catalogue (one small
//! function each) is in docs/explain.md.

use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use super::rules;
use crate::engine::{self, Detail, Ending, EngineError, From, Hop, Mesh, MeshTrace, Path, Start};
use crate::envoy::model::{EnvoyConfig, LoadAssignment};
use crate::netfilter::eval::{self, Disposition};
use crate::netfilter::eval::{Hook, StepKind, Verdict};
use crate::netfilter::model::TableName;
use crate::netns::L4;

/// One change and what happens then.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Counterfactual {
    /// The change, as a condition ("if the app listened on 0.0.0.0:9080").
    pub change: String,
    /// Assumptions the change had to make (e.g. which endpoints a new subset holds).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub assumed: Vec<String>,
    /// `Ending::kind()` of each resulting path.
    pub kinds: Vec<&'static str>,
    /// For a walk that looped: whether the change removes the loop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loop_verdict: Option<LoopVerdict>,
    /// The re-simulated walk, or why it failed.
    #[serde(skip)]
    pub outcome: Result<MeshTrace, EngineError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoopVerdict {
    StillLoops,
    Disappears,
}

/// Every counterfactual that applies to `t`, at most [`super::MAX_COUNTERFACTUALS`].
pub(super) fn all(mesh: &Mesh, start: &Start, t: &MeshTrace) -> Vec<Counterfactual> {
    let mut changes: Vec<Change> = Vec::new();
    for p in &t.paths {
        wildcard_socket(mesh, p, &mut changes);
        loop_rules(mesh, t, p, &mut changes);
        subset_cluster(mesh, start, p, &mut changes);
        allow_any_domain(mesh, start, p, &mut changes);
        catch_all_chain(mesh, start, p, &mut changes);
    }
    sender(mesh, start, t, &mut changes);
    let looped = t.paths.iter().any(|p| matches!(p.ending, Ending::Loop { .. }));
    let mut out: Vec<Counterfactual> = Vec::new();
    for c in changes {
        if out.len() >= super::MAX_COUNTERFACTUALS {
            break;
        }
        if out.iter().any(|o| o.change == c.change) {
            continue;
        }
        let start = c.start.as_ref().unwrap_or(start);
        let outcome = engine::trace(&c.mesh, start);
        let kinds: Vec<&'static str> = match &outcome {
            Ok(t) => t.paths.iter().map(|p| p.ending.kind()).collect(),
            Err(_) => Vec::new(),
        };
        if c.only_if_different && outcome.as_ref().is_ok_and(|n| same_endings(t, n)) {
            continue;
        }
        let loop_verdict = (looped && !kinds.is_empty()).then(|| {
            if kinds.contains(&"loop") {
                LoopVerdict::StillLoops
            } else {
                LoopVerdict::Disappears
            }
        });
        out.push(Counterfactual { change: c.change, assumed: c.assumed, kinds, loop_verdict, outcome });
    }
    out
}

/// Whether two walks end the same way, path by path (weights included).
fn same_endings(a: &MeshTrace, b: &MeshTrace) -> bool {
    a.paths.len() == b.paths.len()
        && a.paths.iter().zip(&b.paths).all(|(x, y)| x.ending == y.ending && x.weight == y.weight)
}

/// A modified snapshot (and start) to re-simulate.
struct Change {
    change: String,
    assumed: Vec<String>,
    mesh: Mesh,
    start: Option<Start>,
    only_if_different: bool,
}

impl Change {
    fn new(change: String, mesh: Mesh) -> Change {
        Change { change, assumed: Vec::new(), mesh, start: None, only_if_different: false }
    }
}

/// The last kernel hop of a path and its result, re-run.
pub(super) fn last_kernel(mesh: &Mesh, p: &Path) -> Option<(usize, eval::Outcome)> {
    let (pod, probe, branch) = p.hops.iter().rev().find_map(|h| match h {
        Hop::Kernel { pod, probe, branch, .. } => Some((*pod, probe, *branch)),
        Hop::Envoy { .. } => None,
    })?;
    let prog = mesh.pods.get(pod)?.program(probe.dst.is_ipv6())?;
    let t = eval::trace(prog, &mesh.pods.get(pod)?.netns, probe).ok()?;
    Some((pod, t.branches.into_iter().nth(branch)?.result))
}

/// Refused (or Envoy's upstream refused: UF) while the app listens on that port but bound to
/// one address: the same socket on the wildcard address.
fn wildcard_socket(mesh: &Mesh, p: &Path, out: &mut Vec<Change>) {
    for r in app_rebinds(mesh, p) {
        let change =
            format!("if the {} in pod {} listened on {} instead of {}", r.process, r.pod, r.to, r.from);
        out.push(Change::new(change, r.mesh));
    }
}

/// An app socket moved to the wildcard address, and the mesh with it moved.
pub(super) struct Rebind {
    pub pod: String,
    pub process: String,
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub mesh: Mesh,
}

/// Refused (or Envoy's upstream refused: UF) while an app (not Envoy, not pilot-agent) listens
/// on that port bound to one address: each such socket on the wildcard address instead.
pub(super) fn app_rebinds(mesh: &Mesh, p: &Path) -> Vec<Rebind> {
    let refused = match &p.ending {
        Ending::Refused { .. } => true,
        Ending::EnvoyResponse { upstream, .. } => upstream.is_some(),
        _ => false,
    };
    let mut out = Vec::new();
    if !refused {
        return out;
    }
    let Some((pi, r)) = last_kernel(mesh, p) else { return out };
    if r.disposition != Disposition::Local || r.socket.is_some() {
        return out;
    }
    let Some(pod) = mesh.pods.get(pi) else { return out };
    for (si, s) in pod.netns.sockets.iter().enumerate() {
        if s.port != r.dst.port()
            || s.addr.is_unspecified()
            || matches!(s.owner, crate::netns::Owner::Envoy | crate::netns::Owner::PilotAgent)
            || s.proto != p_proto(p)
        {
            continue;
        }
        let any: IpAddr = if s.addr.is_ipv6() { [0u16; 8].into() } else { [0u8; 4].into() };
        let mut m = mesh.clone();
        if let Some(sock) = m.pods.get_mut(pi).and_then(|pod| pod.netns.sockets.get_mut(si)) {
            sock.addr = any;
        }
        out.push(Rebind {
            pod: pod.name.clone(),
            process: s.owner.as_str().to_string(),
            from: SocketAddr::new(s.addr, s.port),
            to: SocketAddr::new(any, s.port),
            mesh: m,
        });
    }
    out
}

/// The protocol of the path's connection (as its first packet was sent).
pub(super) fn p_proto(p: &Path) -> L4 {
    p.steps
        .iter()
        .find_map(|s| match s.detail {
            Detail::Send { proto, .. } => Some(proto),
            _ => None,
        })
        .unwrap_or(L4::Tcp)
}

/// The rules of a loop's cycle that send the connection on (jumps, gotos, NAT): each one
/// removed; and an exemption for Envoy's uid inserted before the closing one in nat OUTPUT.
fn loop_rules(mesh: &Mesh, t: &MeshTrace, p: &Path, out: &mut Vec<Change>) {
    let Ending::Loop { cycle, .. } = &p.ending else { return };
    let mut rules_in_cycle: Vec<(usize, &engine::RuleStep)> = Vec::new();
    for s in p.steps.iter().skip(cycle[0]).take(cycle[1].saturating_sub(cycle[0]) + 1) {
        let Detail::Rule(r) = &s.detail else { continue };
        let st = &r.step;
        if st.kind != StepKind::Rule || st.line.is_none() {
            continue;
        }
        match st.verdict {
            Verdict::Jump | Verdict::Goto => {}
            Verdict::Accept if st.target.is_some() => {}
            _ => continue,
        }
        let same = |(pod, o): &(usize, &engine::RuleStep)| {
            *pod == s.pod && o.file == r.file && o.step.line == st.line
        };
        if rules_in_cycle.iter().any(same) || rules_in_cycle.len() >= 4 {
            continue;
        }
        rules_in_cycle.push((s.pod, r));
    }
    // The closing rule: the one that sends the packet into the NAT rule (the jump right before
    // it in nat OUTPUT), else the NAT rule itself.
    let in_nat_output = |r: &engine::RuleStep| r.step.hook == Hook::Output && r.step.table == TableName::Nat;
    let nat_at = rules_in_cycle.iter().position(|(_, r)| r.step.verdict == Verdict::Accept);
    let closing = nat_at.and_then(|i| {
        let before = i.checked_sub(1).filter(|&b| in_nat_output(rules_in_cycle[b].1));
        before.or(Some(i)).filter(|&c| in_nat_output(rules_in_cycle[c].1))
    });
    for (ri, &(pi, r)) in rules_in_cycle.iter().enumerate() {
        let st = &r.step;
        let (table, chain, num) = (st.table, &st.chain, st.rule.unwrap_or(0));
        let Some(line) = st.line else { continue };
        let Some(pod) = mesh.pods.get(pi) else { continue };
        let pod_name = t.pod_name(pi);
        let v6 = r.v6;
        let source = format!("{}:{line}", r.file);
        let text = rules::line_text(pod, v6, line).unwrap_or_default();
        let idx = (line as usize).saturating_sub(1);
        if let Some(edited) = rules::edited(pod, v6, |lines| {
            if idx < lines.len() {
                lines.remove(idx);
            }
        }) {
            let mut m = mesh.clone();
            if let Some(pm) = m.pods.get_mut(pi) {
                rules::replace(pm, v6, edited);
            }
            let change =
                format!("without rule {table} {chain} #{num} ({source}) `{}` in pod {pod_name}", text.trim());
            out.push(Change::new(change, m));
        }
        if closing == Some(ri) {
            let rule = format!("-A {chain} -m owner --uid-owner {} -j RETURN", pod.istio.proxy_uid);
            if let Some(edited) = rules::edited(pod, v6, |lines| {
                if idx <= lines.len() {
                    lines.insert(idx, rule.clone());
                }
            }) {
                let mut m = mesh.clone();
                if let Some(pm) = m.pods.get_mut(pi) {
                    rules::replace(pm, v6, edited);
                }
                let change =
                    format!("with `{rule}` inserted before {source} (rule {chain} #{num}) in pod {pod_name}");
                out.push(Change::new(change, m));
            }
        }
    }
}

/// Envoy answered 503 NC for `outbound|P|SUBSET|HOST` while `outbound|P||HOST` exists: add
/// the subset cluster as Istio builds it from a DestinationRule subset.
fn subset_cluster(mesh: &Mesh, start: &Start, p: &Path, out: &mut Vec<Change>) {
    let Ending::EnvoyResponse { flag: Some(f), pod, .. } = &p.ending else { return };
    if f != "NC" {
        return;
    }
    let Some(name) = missing_cluster(mesh, start, p) else { return };
    let parts: Vec<&str> = name.split('|').collect();
    let [dir, port, subset, host] = parts[..] else { return };
    if subset.is_empty() {
        return;
    }
    let base = format!("{dir}|{port}||{host}");
    let Some(pi) = mesh.pod_index(pod) else { return };
    let mut m = mesh.clone();
    let Some(cfg) = m.pods.get_mut(pi).and_then(|p| p.envoy.as_mut()) else { return };
    let Some(assumed) = add_subset(cfg, &base, &name, subset) else { return };
    let mut c = Change::new(
        format!("with a DestinationRule subset {subset} for {host} (cluster {name} built from {base})"),
        m,
    );
    c.assumed = assumed;
    out.push(c);
}

/// The cluster the last Envoy of the path did not find (re-run: the router's 503 NC does
/// not name it in the path).
pub(super) fn missing_cluster(mesh: &Mesh, start: &Start, p: &Path) -> Option<String> {
    let (pi, l, d, s) = p.hops.iter().rev().find_map(|h| match h {
        Hop::Envoy { pod, listener, orig_dst, src, .. } => Some((*pod, *listener, *orig_dst, *src)),
        Hop::Kernel { .. } => None,
    })?;
    let t = engine::envoy_hop_trace(mesh, start, pi, (l, d, s))?;
    t.clusters
        .iter()
        .find(|c| matches!(c.upstream, crate::envoy::select::Upstream::ClusterNotFound))
        .map(|c| c.cluster.clone())
}

/// Adds cluster `name` as a copy of `base` whose endpoints are those of the subset; returns
/// what had to be assumed about the endpoints.
pub(super) fn add_subset(cfg: &mut EnvoyConfig, base: &str, name: &str, subset: &str) -> Option<Vec<String>> {
    let b = cfg.cluster(base)?.clone();
    let service = b.eds_service_name.clone().unwrap_or_else(|| b.name.clone());
    let mut assumed = Vec::new();
    let mut c = b.clone();
    c.name = name.to_string();
    let source = b.load_assignment.clone().or_else(|| cfg.eds_assignment(&service).cloned());
    if let Some(la) = source {
        let all: Vec<String> =
            la.localities.iter().flat_map(|l| &l.endpoints).map(|e| endpoint_words(&e.address)).collect();
        // Istio's EDS metadata `istio.workload` is `name;namespace;canonical-name;revision;
        // cluster`, the revision being the pod's `version` label: the usual subset selector.
        let revision = |e: &crate::envoy::model::LbEndpoint| {
            e.istio_workload.as_deref().and_then(|w| w.split(';').nth(3)).map(str::to_string)
        };
        let marker = format!("-{subset}-");
        let by_revision = la.localities.iter().flat_map(|l| &l.endpoints).any(|e| revision(e).is_some());
        let mut filtered: LoadAssignment = la.clone();
        filtered.cluster_name = name.to_string();
        for l in &mut filtered.localities {
            if by_revision {
                l.endpoints.retain(|e| revision(e).as_deref() == Some(subset));
            } else {
                l.endpoints.retain(|e| e.hostname.as_deref().is_some_and(|h| h.contains(&marker)));
            }
        }
        filtered.localities.retain(|l| !l.endpoints.is_empty());
        if by_revision {
            assumed.push(format!(
                "subset {subset} selects version={subset}: the endpoints whose istio.workload revision is {subset}"
            ));
        } else if filtered.localities.is_empty() {
            filtered = la.clone();
            filtered.cluster_name = name.to_string();
            assumed.push(format!(
                "the dump records no endpoint labels: all endpoints of {base} ({}) are assumed to be in subset {subset}",
                all.join(", ")
            ));
        } else {
            assumed.push(format!("subset {subset} holds the endpoints whose host name contains {marker}"));
        }
        if c.load_assignment.is_some() {
            c.load_assignment = Some(filtered);
        } else {
            c.eds_service_name = Some(name.to_string());
            cfg.load_assignments.push(filtered);
        }
    }
    cfg.clusters.push(c);
    cfg.build_lookup();
    Some(assumed)
}

fn endpoint_words(a: &crate::envoy::model::EndpointAddress) -> String {
    match a {
        crate::envoy::model::EndpointAddress::Ip { ip, port } => SocketAddr::new(*ip, *port).to_string(),
        other => format!("{other:?}"),
    }
}

/// Left through PassthroughCluster from the `allow_any` virtual host while another virtual
/// host of that route configuration names an address of the service: that virtual host with
/// the destination address added to its domains.
fn allow_any_domain(mesh: &Mesh, start: &Start, p: &Path, out: &mut Vec<Change>) {
    let Ending::Left { pod, dst, cluster: Some(cluster) } = &p.ending else { return };
    let Some(pi) = mesh.pod_index(pod) else { return };
    let Some(istio) = mesh.pods.get(pi).map(|p| &p.istio) else { return };
    if !istio.is_passthrough_cluster(cluster) {
        return;
    }
    let allow_any = |vh: &str| istio.is_allow_any_virtual_host(vh);
    let Some(hop) = p.envoy.iter().rev().find(|h| h.virtual_host.as_deref().is_some_and(allow_any)) else {
        return;
    };
    let Some(rc_name) = &hop.route_config else { return };
    let dst = *dst;
    let Some(cfg) = mesh.pods.get(pi).and_then(|p| p.envoy.as_ref()) else { return };
    let Some(rc) = cfg.route_configs.iter().find(|r| &r.name == rc_name) else { return };
    let host = start.request.as_ref().and_then(|r| r.host.clone()).unwrap_or_default().to_ascii_lowercase();
    let host = host.split(':').next().unwrap_or("").to_string();
    // Virtual hosts that name an IP address (a ServiceEntry's addresses) or the request's host.
    let candidates: Vec<usize> = rc
        .config
        .virtual_hosts
        .iter()
        .enumerate()
        .filter(|(_, vh)| !allow_any(&vh.name))
        .filter(|(_, vh)| {
            vh.domains.iter().any(|d| {
                let bare = d.rsplit_once(':').map_or(d.as_str(), |(h, _)| h);
                bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_ipv6() == dst.is_ipv6())
                    || (!host.is_empty() && bare.eq_ignore_ascii_case(&host))
            })
        })
        .map(|(i, _)| i)
        .take(2)
        .collect();
    for vi in candidates {
        let mut m = mesh.clone();
        let Some(cfg) = m.pods.get_mut(pi).and_then(|p| p.envoy.as_mut()) else { return };
        let Some(rc) = cfg.route_configs.iter_mut().find(|r| &r.name == rc_name) else { return };
        let Some(vh) = rc.config.virtual_hosts.get_mut(vi) else { continue };
        let ip = dst.ip().to_string();
        let vname = vh.name.clone();
        vh.domains.push(ip.clone());
        vh.domains.push(format!("{ip}:{}", dst.port()));
        let change = format!("if virtual host {vname} of route config {rc_name} also had the domain {ip}");
        out.push(Change::new(change, m));
    }
}

/// TLS that landed on a filter chain with no match criteria (a catch-all) leading to a cluster
/// other than PassthroughCluster: the walk without that chain.
fn catch_all_chain(mesh: &Mesh, start: &Start, p: &Path, out: &mut Vec<Change>) {
    if !matches!(start.client, crate::envoy::select::ClientBytes::Tls { .. }) {
        return;
    }
    for h in &p.envoy {
        let (Some(ln), Some(fc)) = (&h.listener, &h.filter_chain) else { continue };
        if h.cluster.as_deref().is_none_or(|c| c.contains("Passthrough")) {
            continue;
        }
        let Some(pi) = mesh.pod_index(&h.pod) else { continue };
        let Some(cfg) = mesh.pods.get(pi).and_then(|p| p.envoy.as_ref()) else { continue };
        let Some(l) = cfg.listener(ln) else { continue };
        let idx = l.filter_chains.iter().enumerate().position(|(i, c)| {
            let name = c.name.clone().unwrap_or_else(|| format!("#{i}"));
            &name == fc && c.filter_chain_match.is_empty()
        });
        let Some(idx) = idx else { continue };
        let mut m = mesh.clone();
        let Some(cfg) = m.pods.get_mut(pi).and_then(|p| p.envoy.as_mut()) else { continue };
        let Some(l) = cfg.listeners.iter_mut().find(|l| &l.name == ln) else { continue };
        l.filter_chains.remove(idx);
        cfg.build_lookup();
        let change =
            format!("without filter chain {fc} (it has no match criteria) of listener {ln} in pod {}", h.pod);
        out.push(Change::new(change, m));
    }
}

/// The same connection from the other side of the proxy's uid exemption (the app as the
/// proxy's uid, or the proxy as the app's uid, both as the pod's Istio sets them); reported
/// only when the ending changes.
fn sender(mesh: &Mesh, start: &Start, _t: &MeshTrace, out: &mut Vec<Change>) {
    let From::Process { uid, .. } = start.from else { return };
    let Some(istio) = mesh.pods.get(start.pod).map(|p| &p.istio) else { return };
    let (other, gid, who) = if istio.is_proxy_uid(uid) {
        (istio.app_uid, istio.app_gid, "the app")
    } else {
        (istio.proxy_uid, istio.proxy_gid, "Envoy")
    };
    let mut s = start.clone();
    s.from = From::Process { uid: other, gid };
    let mut c = Change::new(format!("if the sender were {who} (uid {other})"), mesh.clone());
    c.start = Some(s);
    c.only_if_different = true;
    out.push(c);
}
