//! Filter-chain selection by `FilterChainMatch` (Envoy: source/common/listener_manager/filter_chain_manager_impl.cc): at each level keep only
//! the most specific branch that matches; never backtrack.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use super::super::model::{FilterChain, SourceType};

/// What the connection offers to filter-chain matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchInputs {
    /// The (restored) local address.
    pub local: SocketAddr,
    /// The downstream peer (after PROXY protocol; equals `direct_source` here).
    pub source: SocketAddr,
    pub direct_source: SocketAddr,
    /// Lower-case SNI, `""` if none.
    pub server_name: String,
    pub transport_protocol: String,
    pub application_protocols: Vec<String>,
}

/// One narrowing step, for the trace.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Step {
    pub criterion: &'static str,
    /// The branch taken (e.g. `"9080"`, `"10.0.0.0/8"`, `"*.example.com"`, `"(any)"`).
    pub branch: String,
    /// Chains left after this step (indexes into `filter_chains`).
    pub remaining: Vec<usize>,
}

/// The result of classic selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainDecision {
    pub chain: Option<usize>,
    pub steps: Vec<Step>,
}

/// Longest prefix among `ranges` containing `ip`; an empty list counts as `/0` of any family.
fn best_prefix(ranges: &[IpNet], ip: IpAddr) -> Option<u8> {
    if ranges.is_empty() {
        return Some(0);
    }
    ranges.iter().filter(|n| n.contains(&ip)).map(|n| n.prefix_len()).max()
}

fn narrow(
    cands: Vec<usize>,
    steps: &mut Vec<Step>,
    criterion: &'static str,
    pick: impl Fn(&[usize]) -> Option<(String, Vec<usize>)>,
) -> Option<Vec<usize>> {
    match pick(&cands) {
        Some((branch, remaining)) if !remaining.is_empty() => {
            steps.push(Step { criterion, branch, remaining: remaining.clone() });
            Some(remaining)
        }
        _ => {
            steps.push(Step { criterion, branch: "(no branch matches)".into(), remaining: Vec::new() });
            None
        }
    }
}

/// Longest-prefix narrowing for one of the three CIDR criteria.
fn by_prefix<'c>(
    chains: &'c [FilterChain],
    ip: IpAddr,
    field: fn(&FilterChain) -> &[IpNet],
) -> impl Fn(&[usize]) -> Option<(String, Vec<usize>)> + 'c {
    move |cands: &[usize]| {
        let best = cands.iter().filter_map(|&i| best_prefix(field(&chains[i]), ip)).max()?;
        let remaining: Vec<usize> =
            cands.iter().copied().filter(|&i| best_prefix(field(&chains[i]), ip) == Some(best)).collect();
        let branch = if best == 0 && remaining.iter().all(|&i| field(&chains[i]).is_empty()) {
            "(any)".to_string()
        } else {
            IpNet::new(ip, best).map(|n| n.trunc().to_string()).unwrap_or_default()
        };
        Some((branch, remaining))
    }
}

/// Selects a chain among `chains`; `None` means "no chain" (the caller then tries
/// `default_filter_chain`).
pub fn select(chains: &[FilterChain], inp: &MatchInputs) -> ChainDecision {
    let mut steps = Vec::new();
    let chain = run(chains, inp, &mut steps);
    ChainDecision { chain, steps }
}

fn run(chains: &[FilterChain], inp: &MatchInputs, steps: &mut Vec<Step>) -> Option<usize> {
    let m = |i: usize| &chains[i].filter_chain_match;
    let all: Vec<usize> = (0..chains.len()).collect();
    if all.is_empty() {
        return None;
    }
    // 1. destination_port: a chain naming the exact port takes the whole decision.
    let port = inp.local.port();
    let c = narrow(all, steps, "destination_port", |c| {
        let exact: Vec<usize> = c.iter().copied().filter(|&i| m(i).destination_port == Some(port)).collect();
        if !exact.is_empty() {
            return Some((port.to_string(), exact));
        }
        Some(("(any)".into(), c.iter().copied().filter(|&i| m(i).destination_port.is_none()).collect()))
    })?;
    // 2. prefix_ranges on the local IP.
    let c = narrow(
        c,
        steps,
        "prefix_ranges",
        by_prefix(chains, inp.local.ip(), |ch| &ch.filter_chain_match.prefix_ranges),
    )?;
    // 3. server_names: exact, then wildcards longest first, then chains without names.
    let sni = inp.server_name.as_str();
    let c = narrow(c, steps, "server_names", |c| {
        let with = |name: &str| -> Vec<usize> {
            c.iter().copied().filter(|&i| m(i).server_names.iter().any(|s| s == name)).collect()
        };
        if !sni.is_empty() {
            let exact = with(sni);
            if !exact.is_empty() {
                return Some((sni.to_string(), exact));
            }
            for wildcard in wildcards(sni) {
                let w = with(&wildcard);
                if !w.is_empty() {
                    return Some((wildcard, w));
                }
            }
        }
        Some(("(any)".into(), c.iter().copied().filter(|&i| m(i).server_names.is_empty()).collect()))
    })?;
    // 4. transport_protocol.
    let tp = inp.transport_protocol.as_str();
    let c = narrow(c, steps, "transport_protocol", |c| {
        let exact: Vec<usize> =
            c.iter().copied().filter(|&i| m(i).transport_protocol.as_deref() == Some(tp)).collect();
        if !exact.is_empty() {
            return Some((tp.to_string(), exact));
        }
        Some(("(any)".into(), c.iter().copied().filter(|&i| m(i).transport_protocol.is_none()).collect()))
    })?;
    // 5. application_protocols: the connection's list in order; first value any chain lists.
    let c = narrow(c, steps, "application_protocols", |c| {
        for alpn in &inp.application_protocols {
            let w: Vec<usize> =
                c.iter().copied().filter(|&i| m(i).application_protocols.iter().any(|a| a == alpn)).collect();
            if !w.is_empty() {
                return Some((alpn.clone(), w));
            }
        }
        Some(("(any)".into(), c.iter().copied().filter(|&i| m(i).application_protocols.is_empty()).collect()))
    })?;
    // 6. direct_source_prefix_ranges.
    let c = narrow(
        c,
        steps,
        "direct_source_prefix_ranges",
        by_prefix(chains, inp.direct_source.ip(), |ch| &ch.filter_chain_match.direct_source_prefix_ranges),
    )?;
    // 7. source_type.
    let local_peer = inp.source.ip().is_loopback() || inp.source.ip() == inp.local.ip();
    let c = narrow(c, steps, "source_type", |c| {
        let of =
            |t: SourceType| -> Vec<usize> { c.iter().copied().filter(|&i| m(i).source_type == t).collect() };
        let wanted = if local_peer { SourceType::SameIpOrLoopback } else { SourceType::External };
        let specific = of(wanted);
        if !specific.is_empty() {
            let label = if local_peer { "SAME_IP_OR_LOOPBACK" } else { "EXTERNAL" };
            return Some((label.into(), specific));
        }
        Some(("ANY".into(), of(SourceType::Any)))
    })?;
    // 8. source_prefix_ranges.
    let c = narrow(
        c,
        steps,
        "source_prefix_ranges",
        by_prefix(chains, inp.source.ip(), |ch| &ch.filter_chain_match.source_prefix_ranges),
    )?;
    // 9. source_ports.
    let sp = inp.source.port();
    let c = narrow(c, steps, "source_ports", |c| {
        let exact: Vec<usize> = c.iter().copied().filter(|&i| m(i).source_ports.contains(&sp)).collect();
        if !exact.is_empty() {
            return Some((sp.to_string(), exact));
        }
        Some(("(any)".into(), c.iter().copied().filter(|&i| m(i).source_ports.is_empty()).collect()))
    })?;
    // Identical matches are rejected by Envoy at load time; the first is reported if present.
    c.first().copied()
}

/// `a.b.c.com` → `*.b.c.com`, `*.c.com`, `*.com` (longest first).
pub fn wildcards(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut pos = name.get(1..).and_then(|s| s.find('.')).map(|p| p + 1);
    while let Some(p) = pos {
        if p + 1 >= name.len() {
            break;
        }
        out.push(format!("*{}", &name[p..]));
        pos = name[p + 1..].find('.').map(|q| q + p + 1);
    }
    out
}
