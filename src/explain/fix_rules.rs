//! Fixes that change the capture rules through the pod annotations istio-iptables reads, and
//! the app's identity the rules exempt. Each edits the rule file the way istio-iptables writes
//! it (tools/istio-iptables/pkg/capture/run.go; the golden files in
//! tools/istio-iptables/pkg/capture/testdata show the order), re-parsed so the edited set is
//! what `iptables-restore` would load. Only rule sets that hold Istio's chains (ISTIO_OUTPUT,
//! ISTIO_INBOUND in the table istio-iptables writes them to) are edited.

use super::fix::{Annotation, Candidate, Edit, Goal, ListChange, Setting};
use super::rules;
use crate::engine::{Ending, From, Hop, Mesh, MeshTrace, Path, Pod, Start};

/// The rule-derived fixes for one path.
pub(super) fn candidates(mesh: &Mesh, start: &Start, p: &Path, out: &mut Vec<Candidate>) {
    exclude_outbound_port(mesh, start, p, out);
    inbound_port(mesh, p, out);
    include_outbound_range(mesh, start, p, out);
    inbound_sidecar_skipped(mesh, p, out);
    without_dropping_rule(mesh, p, out);
}

/// Endings a user would want changed when they pass the sidecar.
fn failed(e: &Ending) -> bool {
    matches!(
        e,
        Ending::EnvoyResponse { .. }
            | Ending::Stalled { .. }
            | Ending::Loop { .. }
            | Ending::Blackhole { .. }
            | Ending::RejectedConfig(_)
            | Ending::Refused { .. }
            | Ending::Dropped { .. }
    )
}

/// The app (a process of neither the proxy's uid nor its gid) of a pod with a sidecar.
fn app_sender<'m>(mesh: &'m Mesh, start: &Start) -> Option<&'m Pod> {
    app_process(mesh, start).filter(|pod| pod.envoy.is_some())
}

/// A process of neither the proxy's uid nor its gid: the app, or an init container.
fn app_process<'m>(mesh: &'m Mesh, start: &Start) -> Option<&'m Pod> {
    let From::Process { uid, gid } = start.from else { return None };
    let pod = mesh.pods.get(start.pod)?;
    (uid != pod.proxy.uid && gid != pod.proxy.gid).then_some(pod)
}

/// The connection of the path's first kernel hop: its destination.
fn first_dst(p: &Path) -> Option<std::net::SocketAddr> {
    p.hops.iter().find_map(|h| match h {
        Hop::Kernel { probe, .. } => Some(std::net::SocketAddr::new(probe.dst, probe.dport)),
        Hop::Envoy { .. } => None,
    })
}

/// The 0-based line range `[start, end)` of table `table`'s section (`*table` .. `COMMIT`).
fn section(lines: &[String], table: &str) -> Option<(usize, usize)> {
    let head = format!("*{table}");
    let start = lines.iter().position(|l| l.trim_end() == head)?;
    let end = lines[start..].iter().position(|l| l.trim_end() == "COMMIT")? + start;
    Some((start, end))
}

/// The 0-based indexes of the lines of chain `chain` in table `table`, in order.
fn chain_lines(text: &str, table: &str, chain: &str) -> Vec<(usize, String)> {
    let lines: Vec<String> = text.split('\n').map(|l| l.trim_end_matches('\r').to_string()).collect();
    let Some((s, e)) = section(&lines, table) else { return Vec::new() };
    let prefix = format!("-A {chain} ");
    (s..e).filter(|&i| lines[i].starts_with(&prefix)).map(|i| (i, lines[i].clone())).collect()
}

/// A port exemption istio-iptables writes for the exclude flags: `-p tcp --dport N -j RETURN`
/// (or `-m multiport --dports`), as iptables-save prints it.
fn is_port_exemption(line: &str) -> bool {
    line.ends_with(" -j RETURN")
        && (line.contains(" --dport ") || line.contains(" --dports "))
        && !line.contains(" -o ")
        && !line.contains(" -m owner ")
}

/// The rule set's family, file name and text for a connection of that family.
fn rules_of(pod: &Pod, v6: bool) -> Option<(String, &str)> {
    let file = pod.program(v6)?.ruleset.source.clone();
    Some((file, pod.rules_text(v6)?))
}

/// A candidate with rules inserted at 0-based line `at` of the pod's rule file.
fn with_inserted(
    mesh: &Mesh,
    pi: usize,
    v6: bool,
    at: usize,
    new_rules: &[String],
    setting: Setting,
) -> Option<Candidate> {
    let pod = mesh.pods.get(pi)?;
    let (file, _) = rules_of(pod, v6)?;
    let edited = rules::edited(pod, v6, |lines| {
        if at <= lines.len() {
            for (k, r) in new_rules.iter().enumerate() {
                lines.insert(at + k, r.clone());
            }
        }
    })?;
    let mut m = mesh.clone();
    rules::replace(m.pods.get_mut(pi)?, v6, edited);
    let before = u32::try_from(at + 1).ok()?;
    let edits = new_rules
        .iter()
        .map(|rule| Edit::RuleInserted {
            pod: pod.name.clone(),
            file: file.clone(),
            before,
            rule: rule.clone(),
        })
        .collect();
    Some(Candidate { setting, edits, mesh: m, start: None, goal: Goal::OtherEnding })
}

/// The app's connection went through its own sidecar and failed there, or was redirected to
/// the sidecar's capture port where nothing listens (an init container runs before Envoy
/// starts, istio/istio#27382): `traffic.sidecar.istio.io/excludeOutboundPorts: N`, which
/// istio-iptables (`-o N`) writes as `-A ISTIO_OUTPUT -p tcp --dport N -j RETURN` and the same
/// for udp, the first rules of ISTIO_OUTPUT (run.go, `OutboundPortsExclude`;
/// testdata/outbound-ports-exclude-single.golden).
fn exclude_outbound_port(mesh: &Mesh, start: &Start, p: &Path, out: &mut Vec<Candidate>) {
    if !failed(&p.ending) {
        return;
    }
    let Some(pod) = app_process(mesh, start) else { return };
    let through_sidecar = p.envoy.first().is_some_and(|h| h.pod == pod.name);
    let capture_port_closed = p.envoy.is_empty()
        && matches!(&p.ending, Ending::Refused { pod: at, dst, .. }
            if *at == pod.name && dst.ip().is_loopback() && dst.port() == pod.istio.outbound_capture_port);
    if !through_sidecar && !capture_port_closed {
        return;
    }
    let Some(dst) = first_dst(p) else { return };
    let v6 = dst.is_ipv6();
    let Some((_, text)) = rules_of(pod, v6) else { return };
    let chain = chain_lines(text, "nat", "ISTIO_OUTPUT");
    let Some(&(at, _)) = chain.iter().find(|(_, l)| !is_port_exemption(l)) else { return };
    let port = dst.port();
    let new_rules = [
        format!("-A ISTIO_OUTPUT -p tcp -m tcp --dport {port} -j RETURN"),
        format!("-A ISTIO_OUTPUT -p udp -m udp --dport {port} -j RETURN"),
    ];
    let setting = Setting::PodAnnotation {
        pod: pod.name.clone(),
        annotation: Annotation::ExcludeOutboundPorts,
        change: ListChange::Add(port.to_string()),
    };
    out.extend(with_inserted(mesh, start.pod, v6, at, &new_rules, setting));
}

/// A connection into a pod's sidecar (the destination is the pod's own address) that failed
/// there. With the wildcard `includeInboundPorts` (`-b *`), istio-iptables writes
/// `-A ISTIO_INBOUND -p tcp --dport N -j RETURN` for `excludeInboundPorts` before the rule that
/// sends the rest on (testdata/inbound-wildcard-exclude.golden); with a list, each port gets
/// `-A ISTIO_INBOUND -p tcp --dport N -j ISTIO_IN_REDIRECT` (or `ISTIO_TPROXY`), so the fix is
/// to take N out of `includeInboundPorts`.
fn inbound_port(mesh: &Mesh, p: &Path, out: &mut Vec<Candidate>) {
    if !failed(&p.ending) {
        return;
    }
    let mut seen = Vec::new();
    for h in &p.hops {
        let Hop::Envoy { pod: pi, orig_dst, .. } = h else { continue };
        let Some(pod) = mesh.pods.get(*pi) else { continue };
        if !pod.owns(orig_dst.ip()) || seen.contains(&(*pi, orig_dst.port())) {
            continue;
        }
        seen.push((*pi, orig_dst.port()));
        let v6 = orig_dst.is_ipv6();
        let Some((file, text)) = rules_of(pod, v6) else { continue };
        let port = orig_dst.port();
        for table in ["nat", "mangle"] {
            let chain = chain_lines(text, table, "ISTIO_INBOUND");
            let listed = format!("-A ISTIO_INBOUND -p tcp -m tcp --dport {port} -j ISTIO_");
            if let Some((at, line)) = chain.iter().find(|(_, l)| l.starts_with(&listed)) {
                let Some(edited) = rules::edited(pod, v6, |lines| {
                    if *at < lines.len() {
                        lines.remove(*at);
                    }
                }) else {
                    continue;
                };
                let mut m = mesh.clone();
                let Some(pm) = m.pods.get_mut(*pi) else { continue };
                rules::replace(pm, v6, edited);
                let Ok(line_no) = u32::try_from(at + 1) else { continue };
                out.push(Candidate {
                    setting: Setting::PodAnnotation {
                        pod: pod.name.clone(),
                        annotation: Annotation::IncludeInboundPorts,
                        change: ListChange::Remove(port.to_string()),
                    },
                    edits: vec![Edit::RuleRemoved {
                        pod: pod.name.clone(),
                        file,
                        line: line_no,
                        rule: line.clone(),
                    }],
                    mesh: m,
                    start: None,
                    goal: Goal::OtherEnding,
                });
                break;
            }
            let wildcard =
                |l: &String| l.starts_with("-A ISTIO_INBOUND -p tcp -j ISTIO_") && !l.contains("--dport");
            // The exemptions go after the RETURNs istio-iptables writes first (TPROXY's mark
            // and lo exemptions, the proxy's own ports) and before the rules that send the rest
            // on (testdata/inbound-ports-wildcard-tproxy.golden, inbound-wildcard-exclude.golden).
            let first_on = chain.iter().find(|(_, l)| !l.ends_with(" -j RETURN"));
            if let (true, Some(&(at, _))) = (chain.iter().any(|(_, l)| wildcard(l)), first_on) {
                let rule = format!("-A ISTIO_INBOUND -p tcp -m tcp --dport {port} -j RETURN");
                let setting = Setting::PodAnnotation {
                    pod: pod.name.clone(),
                    annotation: Annotation::ExcludeInboundPorts,
                    change: ListChange::Add(port.to_string()),
                };
                out.extend(with_inserted(mesh, *pi, v6, at, &[rule], setting));
                break;
            }
        }
    }
}

/// The app's connection left without its sidecar because the destination is outside
/// `includeOutboundIPRanges`: istio-iptables (`-i CIDRS`) writes `-A ISTIO_OUTPUT -d CIDR -j
/// ISTIO_REDIRECT` for each range, then `-A ISTIO_OUTPUT -j RETURN` (run.go,
/// `OutboundIPRangesInclude`; testdata/ip-range.golden). The fix adds the destination's
/// address: one more `-d ADDR/32 -j ISTIO_REDIRECT` before that RETURN.
fn include_outbound_range(mesh: &Mesh, start: &Start, p: &Path, out: &mut Vec<Candidate>) {
    if !p.envoy.is_empty() {
        return;
    }
    let Some(pod) = app_sender(mesh, start) else { return };
    let Some(dst) = first_dst(p) else { return };
    let v6 = dst.is_ipv6();
    let Some((_, text)) = rules_of(pod, v6) else { return };
    let chain = chain_lines(text, "nat", "ISTIO_OUTPUT");
    let Some((at, last)) = chain.last() else { return };
    let ranges = chain.iter().any(|(_, l)| l.contains(" -d ") && l.ends_with(" -j ISTIO_REDIRECT"));
    if last != "-A ISTIO_OUTPUT -j RETURN" || !ranges {
        return;
    }
    let cidr = format!("{}/{}", dst.ip(), if v6 { 128 } else { 32 });
    let rule = format!("-A ISTIO_OUTPUT -d {cidr} -j ISTIO_REDIRECT");
    let setting = Setting::PodAnnotation {
        pod: pod.name.clone(),
        annotation: Annotation::IncludeOutboundIpRanges,
        change: ListChange::Add(cidr),
    };
    out.extend(with_inserted(mesh, start.pod, v6, *at, &[rule], setting));
}

/// The app runs as the proxy's uid (or gid), which the rules exempt (`-m owner --uid-owner
/// UID -j RETURN`): a path of the walk left without the sidecar. Istio's application
/// requirements: "Ensure your pods do not run applications as a user with the user ID (UID)
/// value of 1337" (https://istio.io/latest/docs/ops/deployment/application-requirements/).
/// The fix runs the app as another uid (and gid): Istio's conventional app identity, or the
/// next one that is not the proxy's.
pub(super) fn app_identity(mesh: &Mesh, start: &Start, t: &MeshTrace, out: &mut Vec<Candidate>) {
    let From::Process { uid, gid } = start.from else { return };
    let Some(pod) = mesh.pods.get(start.pod) else { return };
    if pod.envoy.is_none() || (uid != pod.proxy.uid && gid != pod.proxy.gid) {
        return;
    }
    if !t.paths.iter().any(|p| p.envoy.is_empty()) {
        return;
    }
    let taken = [pod.proxy.uid, pod.proxy.gid];
    let other = |want: u32| (0..16).map(|k| want.saturating_add(k)).find(|v| !taken.contains(v));
    let nu = if uid == pod.proxy.uid || uid == pod.proxy.gid { other(pod.istio.app_uid) } else { Some(uid) };
    let ng = if gid == pod.proxy.gid || gid == pod.proxy.uid { other(pod.istio.app_gid) } else { Some(gid) };
    let (Some(nu), Some(ng)) = (nu, ng) else { return };
    let mut s = start.clone();
    s.from = From::Process { uid: nu, gid: ng };
    out.push(Candidate {
        setting: Setting::AppIdentity { pod: pod.name.clone(), uid: (uid, nu), gid: (gid, ng) },
        edits: vec![Edit::SenderIdentity { pod: pod.name.clone(), uid: nu, gid: ng }],
        mesh: mesh.clone(),
        start: Some(s),
        goal: Goal::OtherEnding,
    });
}

/// A pod's Envoy sent the connection to its own pod's address through an outbound cluster and
/// the app got it straight away: the rules have no `-o lo` rule to bring it back to the
/// inbound side (scenarios/3, the Istio 1.1 workaround's second half). Istio 1.10 or later,
/// re-simulated as Istio 1.10 applies it: istio-iptables writes, at the head of ISTIO_OUTPUT,
/// `-s 127.0.0.6/32 -o lo -j RETURN`, `! -d 127.0.0.1/32 -o lo -m owner --uid-owner UID -j
/// ISTIO_IN_REDIRECT` and `-o lo -m owner ! --uid-owner UID -j RETURN` (run.go; the order of
/// testdata/outbound-ports-exclude.golden, before the 15008 clause of later releases), and the
/// inbound clusters connect from 127.0.0.6 (`upstream_bind_config`). Offered when the walk then
/// passes the pod's Envoy once more (the inbound side) and ends as before.
fn inbound_sidecar_skipped(mesh: &Mesh, p: &Path, out: &mut Vec<Candidate>) {
    let Ending::Delivered { pod: at, socket, .. } = &p.ending else { return };
    let Some(h) = p.envoy.last() else { return };
    if &h.pod != at || !h.cluster.as_deref().is_some_and(|c| c.starts_with("outbound|")) {
        return;
    }
    let Some(pi) = mesh.pod_index(at) else { return };
    let Some(pod) = mesh.pods.get(pi) else { return };
    if !pod.owns(socket.ip()) && !socket.ip().is_unspecified() {
        return;
    }
    let endpoint = h.endpoint.as_deref().and_then(|e| e.parse::<std::net::SocketAddr>().ok());
    let Some(endpoint) = endpoint.filter(|e| pod.owns(e.ip())) else { return };
    let v6 = endpoint.is_ipv6();
    let Some((_, text)) = rules_of(pod, v6) else { return };
    let chain = chain_lines(text, "nat", "ISTIO_OUTPUT");
    if chain.iter().any(|(_, l)| l.contains(" -o lo")) {
        return;
    }
    let Some(&(at_line, _)) = chain.iter().find(|(_, l)| !is_port_exemption(l)) else { return };
    let source: std::net::IpAddr =
        if v6 { pod.istio.inbound_passthrough_v6.into() } else { pod.istio.inbound_passthrough_v4.into() };
    let (prefix, lo) = if v6 { (128, "::1/128") } else { (32, "127.0.0.1/32") };
    let uid = pod.proxy.uid;
    let new_rules = [
        format!("-A ISTIO_OUTPUT -s {source}/{prefix} -o lo -j RETURN"),
        format!("-A ISTIO_OUTPUT ! -d {lo} -o lo -m owner --uid-owner {uid} -j ISTIO_IN_REDIRECT"),
        format!("-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner {uid} -j RETURN"),
    ];
    let setting = Setting::InboundPassthroughSource { pod: pod.name.clone(), source };
    let Some(mut c) = with_inserted(mesh, pi, v6, at_line, &new_rules, setting) else { return };
    let Some(cfg) = c.mesh.pods.get_mut(pi).and_then(|p| p.envoy.as_mut()) else { return };
    for cl in
        cfg.clusters.iter_mut().filter(|cl| cl.name.starts_with("inbound|") && cl.upstream_bind.is_none())
    {
        cl.upstream_bind =
            Some(crate::envoy::model::UpstreamBind { source_addresses: vec![source], freebind: false });
        c.edits.push(Edit::ClusterBound { pod: pod.name.clone(), cluster: cl.name.clone(), source });
    }
    cfg.build_lookup();
    c.goal = Goal::MoreEnvoyHops;
    out.push(c);
}

/// A packet dropped (or rejected) by a rule: the walk without that rule, the rule file as it
/// would be if the rule were never written.
fn without_dropping_rule(mesh: &Mesh, p: &Path, out: &mut Vec<Candidate>) {
    let Ending::Dropped { pod, reason: crate::netfilter::eval::Reason::Rule { at, .. } } = &p.ending else {
        return;
    };
    let Some(pi) = mesh.pod_index(pod) else { return };
    let Some(v6) = p.hops.iter().rev().find_map(|h| match h {
        Hop::Kernel { pod, probe, .. } if *pod == pi => Some(probe.dst.is_ipv6()),
        _ => None,
    }) else {
        return;
    };
    let Some(pm) = mesh.pods.get(pi) else { return };
    let Some((file, _)) = rules_of(pm, v6) else { return };
    let Some(rule) = rules::line_text(pm, v6, at.line) else { return };
    let idx = (at.line as usize).saturating_sub(1);
    let Some(edited) = rules::edited(pm, v6, |lines| {
        if idx < lines.len() {
            lines.remove(idx);
        }
    }) else {
        return;
    };
    let mut m = mesh.clone();
    let Some(target) = m.pods.get_mut(pi) else { return };
    rules::replace(target, v6, edited);
    out.push(Candidate {
        setting: Setting::WithoutRule {
            pod: pod.clone(),
            file: file.clone(),
            line: at.line,
            rule: rule.clone(),
        },
        edits: vec![Edit::RuleRemoved { pod: pod.clone(), file, line: at.line, rule }],
        mesh: m,
        start: None,
        goal: Goal::OtherEnding,
    });
}
