//! What Envoy would refuse in a dump: the checks Envoy makes when it receives a listener, the
//! updates a v3 dump says Envoy rejected (`error_state`), fields Envoy does not know, and route
//! configurations a listener names but RDS did not deliver. Each [`Finding`] names the object,
//! the JSON path, the reason in Envoy's own words where Envoy has words for it, and what Envoy
//! serves instead.
//!
//! Envoy's checks followed here:
//! * envoy source/common/listener_manager/filter_chain_manager_impl.cc,
//!   `FilterChainManagerImpl::addFilterChains`: a chain whose `filter_chain_match` equals an
//!   earlier one's ("filter chain '…' has the same matching rules defined as '…'"),
//!   `address_suffix`/`suffix_len` ("contains unimplemented fields"), partial wildcards in
//!   `server_names`; and, while the match tree is built (`addFilterChainForSourcePorts`), a leaf
//!   already taken by another chain ("multiple filter chains with overlapping matching rules
//!   are defined"; Envoy before 1.20 said "multiple filter chains with the same matching rules
//!   are defined").
//! * envoy source/common/listener_manager/listener_manager_impl.cc,
//!   `ListenerManagerImpl::addOrUpdateListenerInternal`: a second listener on an address and
//!   port already bound ("error adding listener: '…' has duplicate address '…' as existing
//!   listener").
//! * envoy source/common/config/utility.h, `Utility::getAndCheckFactory`: a matcher input with
//!   no registered implementation ("Didn't find a registered implementation for … with type
//!   URL: '…'").

use std::collections::HashMap;
use std::net::SocketAddr;

use serde::Serialize;

use super::model::{
    EnvoyConfig, FilterChain, FilterChainMatch, Listener, ListenerAddress, MatchInput, MatchPredicate,
    Matcher, MatcherKind, NetworkFilterKind, OnMatch, ResourceState, RouteSource,
};
use super::raw::known::UnknownField;

/// The kind of object a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    Listener,
    Cluster,
    RouteConfiguration,
}

impl ObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Listener => "listener",
            ObjectKind::Cluster => "cluster",
            ObjectKind::RouteConfiguration => "route configuration",
        }
    }
}

/// What is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    /// The dump's `error_state`: Envoy rejected this update (its `details`).
    UpdateRejected,
    /// Two filter chains with the same `filter_chain_match`.
    IdenticalChainMatch,
    /// Two filter chains whose expanded matches share a branch.
    OverlappingChainMatch,
    /// `address_suffix` / `suffix_len`.
    UnimplementedChainMatchField,
    /// A `server_names` entry with a wildcard that is not a whole leading label.
    PartialWildcard,
    /// A `filter_chain_matcher` input Envoy has no implementation for.
    UnknownMatcherInput,
    /// A second listener bound to an address and port already taken.
    DuplicateAddress,
    /// A field the message's proto does not have.
    UnknownField,
    /// An RDS name with no route configuration in a dump that has routes.
    RouteNotDelivered,
}

/// Whether Envoy refuses the object or only serves it differently than it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Rejected,
    Warning,
}

/// What Envoy serves in place of a rejected object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "serves", rename_all = "snake_case")]
pub enum Instead {
    /// The last version Envoy accepted, which the dump shows at `path`.
    LastGood { path: String },
    /// Nothing: Envoy never accepted a version of it (no listener / no cluster of that name).
    Nothing,
    /// The version Envoy had before this one, if any (the dump does not show it); without one,
    /// nothing.
    PreviousIfAny,
    /// A static resource: Envoy refuses its bootstrap and does not start.
    EnvoyDoesNotStart,
    /// The listener waits for the route configuration (warming), then serves without it
    /// (every request 404, flag NR).
    WarmingThenNoRoute,
}

/// One thing Envoy would refuse (or serve differently).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub object: ObjectKind,
    pub name: String,
    /// JSON path of the problem inside the dump.
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    pub problem: Problem,
    pub severity: Severity,
    /// Envoy's own words where it has them (error_state `details`, its exception text).
    pub reason: String,
    pub instead: Instead,
    /// The listener it makes unusable (index into `EnvoyConfig::listeners`).
    #[serde(skip)]
    pub listener: Option<usize>,
}

impl Finding {
    pub fn rejects(&self) -> bool {
        self.severity == Severity::Rejected
    }
}

/// What Envoy serves instead of a listener or cluster it refuses in state `state`.
pub fn instead_for(state: ResourceState) -> Instead {
    match state {
        ResourceState::Static => Instead::EnvoyDoesNotStart,
        _ => Instead::PreviousIfAny,
    }
}

/// The finding that makes listener `i` unusable, if any.
pub fn rejection(cfg: &EnvoyConfig, i: usize) -> Option<&Finding> {
    cfg.findings.iter().find(|f| f.listener == Some(i) && f.rejects())
}

/// The finding that makes the cluster Envoy would use under `name` unusable: the active
/// cluster is one Envoy refuses, or the only version of it is a rejected update.
pub fn cluster_rejection<'c>(cfg: &'c EnvoyConfig, name: &str) -> Option<&'c Finding> {
    cfg.findings.iter().find(|f| {
        f.object == ObjectKind::Cluster
            && f.name == name
            && f.rejects()
            && (f.problem != Problem::UpdateRejected || cfg.cluster(name).is_none())
    })
}

/// Runs every model-level check over `cfg` and appends the findings (after those the reading
/// already made: `error_state`, unknown fields).
pub fn validate(cfg: &mut EnvoyConfig) {
    let mut out = Vec::new();
    for (i, l) in cfg.listeners.iter().enumerate() {
        if l.state == ResourceState::Error {
            continue;
        }
        if let Some(f) = listener_finding(l, i) {
            out.push(f);
        }
    }
    duplicate_addresses(cfg, &mut out);
    routes_not_delivered(cfg, &mut out);
    cfg.findings.extend(out);
}

/// Ties each field Envoy does not know to the listener or cluster it is in (the one whose
/// path starts its path) and records it: Envoy refuses that resource. The reason is the JSON
/// loader's (envoy source/common/protobuf/utility.cc `MessageUtil::loadFromJson`, through
/// `ValidationVisitor::onUnknownField`: "Protobuf message (type … reason …) has unknown
/// fields"), with protobuf's "Cannot find field." status.
pub fn unknown_fields(cfg: &mut EnvoyConfig, found: Vec<(ObjectKind, UnknownField)>) {
    for (object, u) in found {
        let inside = |origin: &str| {
            u.path.len() > origin.len()
                && u.path.starts_with(origin)
                && u.path[origin.len()..].starts_with('.')
        };
        let (index, name, root, state, ty) = match object {
            ObjectKind::Listener => {
                let Some(i) = cfg.listeners.iter().position(|l| inside(&l.origin.path)) else { continue };
                let l = &cfg.listeners[i];
                (Some(i), l.name.clone(), l.origin.path.clone(), l.state, "envoy.config.listener.v3.Listener")
            }
            _ => {
                let Some(c) = cfg.clusters.iter().find(|c| inside(&c.origin.path)) else { continue };
                (None, c.name.clone(), c.origin.path.clone(), c.state, "envoy.config.cluster.v3.Cluster")
            }
        };
        let within = &u.path[root.len() + 1..];
        let parent = within.rsplit_once('.').map(|(p, _)| p).unwrap_or("");
        let reason = format!(
            "Protobuf message (type {ty} reason INVALID_ARGUMENT:({parent}) {}: Cannot find field.) has unknown fields",
            u.field
        );
        cfg.findings.push(Finding {
            object,
            name,
            path: u.path.clone(),
            line: None,
            problem: Problem::UnknownField,
            severity: Severity::Rejected,
            reason,
            instead: instead_for(state),
            listener: index,
        });
    }
}

fn finding(l: &Listener, i: usize, path: String, problem: Problem, reason: String) -> Finding {
    Finding {
        object: ObjectKind::Listener,
        name: l.name.clone(),
        path,
        line: l.origin.line,
        problem,
        severity: Severity::Rejected,
        reason,
        instead: instead_for(l.state),
        listener: Some(i),
    }
}

/// The address Envoy's messages print for a listener (`Address::asString`).
fn address_text(l: &Listener) -> String {
    match &l.address {
        ListenerAddress::Socket(s) => s.to_string(),
        other => other.to_string(),
    }
}

/// The first reason Envoy refuses listener `l`, in the order `addFilterChains` checks.
fn listener_finding(l: &Listener, i: usize) -> Option<Finding> {
    let addr = address_text(l);
    let chains = &l.filter_chains;
    let chain_path = |j: usize| format!("{}.filter_chains[{j}]", l.origin.path);
    let chain_name = |c: &FilterChain| c.name.clone().unwrap_or_default();
    if l.filter_chain_matcher.is_none() {
        // Identical matches first (a hash map of FilterChainMatch → name, in list order).
        let mut seen: HashMap<&FilterChainMatch, usize> = HashMap::new();
        for (j, c) in chains.iter().enumerate() {
            if let Some(&k) = seen.get(&c.filter_chain_match) {
                let reason = format!(
                    "error adding listener '{addr}': filter chain '{}' has the same matching rules defined as '{}'",
                    chain_name(c),
                    chain_name(&chains[k])
                );
                let p = format!("{}.filter_chain_match", chain_path(j));
                return Some(finding(l, i, p, Problem::IdenticalChainMatch, reason));
            }
            seen.insert(&c.filter_chain_match, j);
            if let Some(w) = c.filter_chain_match.server_names.iter().find(|n| partial_wildcard(n)) {
                let reason = format!(
                    "error adding listener '{addr}': partial wildcards are not supported in \"server_names\" ({w})"
                );
                let p = format!("{}.filter_chain_match.server_names", chain_path(j));
                return Some(finding(l, i, p, Problem::PartialWildcard, reason));
            }
        }
        if let Some(j) = overlapping(chains) {
            let reason = format!(
                "error adding listener '{addr}': multiple filter chains with overlapping matching rules are defined"
            );
            let p = format!("{}.filter_chain_match", chain_path(j));
            return Some(finding(l, i, p, Problem::OverlappingChainMatch, reason));
        }
    }
    if let Some(m) = &l.filter_chain_matcher {
        if let Some(url) = unknown_input(m) {
            let reason = format!("Didn't find a registered implementation for type URL: '{url}'");
            let p = format!("{}.filter_chain_matcher", l.origin.path);
            return Some(finding(l, i, p, Problem::UnknownMatcherInput, reason));
        }
    }
    None
}

/// `*` must be a whole leading label (`*.example.com`); `*w.example.com`, `a.*.com` are not.
fn partial_wildcard(name: &str) -> bool {
    let whole_label = name.starts_with("*.") && !name[1..].contains('*');
    name.contains('*') && !whole_label
}

/// One leaf of Envoy's filter-chain match tree: every criterion with a single value (an empty
/// list is its own key, the empty string / 0, as in `addFilterChainFor*`).
type Leaf = (u16, String, String, String, String, String, u8, String, u16);

/// Bounds the expansion of one chain (Istio chains list a handful of values per criterion).
const LEAF_LIMIT: usize = 100_000;

fn leaves(m: &FilterChainMatch) -> Vec<Leaf> {
    fn or_empty<T: ToString>(v: &[T]) -> Vec<String> {
        if v.is_empty() {
            vec![String::new()]
        } else {
            v.iter().map(|x| x.to_string()).collect()
        }
    }
    let dst = or_empty(&m.prefix_ranges);
    let sni = or_empty(&m.server_names);
    let alpn = or_empty(&m.application_protocols);
    let direct = or_empty(&m.direct_source_prefix_ranges);
    let src = or_empty(&m.source_prefix_ranges);
    let ports: Vec<u16> = if m.source_ports.is_empty() { vec![0] } else { m.source_ports.clone() };
    let n = dst.len() * sni.len() * alpn.len() * direct.len() * src.len() * ports.len();
    if n > LEAF_LIMIT {
        return Vec::new();
    }
    let tp = m.transport_protocol.clone().unwrap_or_default();
    let st = m.source_type as u8;
    let mut out = Vec::with_capacity(n);
    for d in &dst {
        for s in &sni {
            for a in &alpn {
                for ds in &direct {
                    for sp in &src {
                        for p in &ports {
                            out.push((
                                m.destination_port.unwrap_or(0),
                                d.clone(),
                                s.clone(),
                                tp.clone(),
                                a.clone(),
                                ds.clone(),
                                st,
                                sp.clone(),
                                *p,
                            ));
                        }
                    }
                }
            }
        }
    }
    out
}

/// The first chain (index) with a leaf an earlier chain already holds.
fn overlapping(chains: &[FilterChain]) -> Option<usize> {
    let mut taken: HashMap<Leaf, usize> = HashMap::new();
    for (j, c) in chains.iter().enumerate() {
        for leaf in leaves(&c.filter_chain_match) {
            match taken.get(&leaf) {
                Some(&k) if k != j => return Some(j),
                _ => {
                    taken.insert(leaf, j);
                }
            }
        }
    }
    None
}

/// Network matching inputs Envoy registers besides those meshpath evaluates
/// (envoy source/extensions/matching/network/common/inputs.h and common_inputs/).
const OTHER_KNOWN_INPUTS: &[&str] = &[
    "FilterStateInput",
    "DynamicMetadataInput",
    "NetworkNamespaceInput",
    "envoy.extensions.matching.common_inputs.environment_variable.v3.Config",
];

fn unknown_input(m: &Matcher) -> Option<String> {
    let check = |i: &MatchInput| match i {
        MatchInput::Unsupported(url) if !OTHER_KNOWN_INPUTS.iter().any(|k| url.ends_with(k)) => {
            Some(url.clone())
        }
        _ => None,
    };
    let in_on_match = |o: &OnMatch| match o {
        OnMatch::Matcher(m) => unknown_input(m),
        _ => None,
    };
    fn in_predicate(p: &MatchPredicate, check: &dyn Fn(&MatchInput) -> Option<String>) -> Option<String> {
        match p {
            MatchPredicate::Single { input, .. } => check(input),
            MatchPredicate::Or(v) | MatchPredicate::And(v) => v.iter().find_map(|p| in_predicate(p, check)),
            MatchPredicate::Not(p) => in_predicate(p, check),
            MatchPredicate::Unsupported(_) => None,
        }
    }
    let found = match &m.kind {
        MatcherKind::Exact { input, map } | MatcherKind::Prefix { input, map } => {
            check(input).or_else(|| map.iter().find_map(|(_, o)| in_on_match(o)))
        }
        MatcherKind::Ip { input, ranges } => {
            check(input).or_else(|| ranges.iter().find_map(|r| in_on_match(&r.on_match)))
        }
        MatcherKind::List(v) => {
            v.iter().find_map(|(p, o)| in_predicate(p, &check).or_else(|| in_on_match(o)))
        }
        MatcherKind::Empty | MatcherKind::Unsupported(_) => None,
    };
    found.or_else(|| m.on_no_match.as_deref().and_then(in_on_match))
}

/// Two serving listeners that bind the same address and port: the later one (in the dump's
/// order) is the one Envoy refuses.
fn duplicate_addresses(cfg: &EnvoyConfig, out: &mut Vec<Finding>) {
    let mut bound: HashMap<SocketAddr, usize> = HashMap::new();
    for (i, l) in cfg.listeners.iter().enumerate() {
        if !l.bind_to_port || !l.state.serves() || out.iter().any(|f| f.listener == Some(i)) {
            continue;
        }
        for addr in l.address.socket().into_iter().chain(l.additional_addresses.iter().copied()) {
            match bound.get(&addr) {
                Some(&k) if cfg.listeners[k].name != l.name => {
                    let reason = format!(
                        "error adding listener: '{}' has duplicate address '{addr}' as existing listener",
                        l.name
                    );
                    let mut f = finding(
                        l,
                        i,
                        format!("{}.address", l.origin.path),
                        Problem::DuplicateAddress,
                        reason,
                    );
                    if l.address.socket() != Some(addr) {
                        f.path = format!("{}.additional_addresses", l.origin.path);
                    }
                    out.push(f);
                    break;
                }
                Some(_) => {}
                None => {
                    bound.insert(addr, i);
                }
            }
        }
    }
}

/// RDS names no route configuration answers, in a dump that carries routes.
fn routes_not_delivered(cfg: &EnvoyConfig, out: &mut Vec<Finding>) {
    if !cfg.has_routes() {
        return;
    }
    let mut reported: Vec<&str> = Vec::new();
    for l in cfg.listeners.iter().filter(|l| l.state.serves()) {
        let chains = l.filter_chains.iter().chain(l.default_filter_chain.iter());
        for c in chains {
            for f in &c.filters {
                let NetworkFilterKind::HttpConnectionManager(h) = &f.kind else { continue };
                let RouteSource::Rds(name) = &h.route_source else { continue };
                if cfg.route_config(name).is_some() || reported.contains(&name.as_str()) {
                    continue;
                }
                reported.push(name);
                out.push(Finding {
                    object: ObjectKind::RouteConfiguration,
                    name: name.clone(),
                    path: c.origin.path.clone(),
                    line: c.origin.line,
                    problem: Problem::RouteNotDelivered,
                    severity: Severity::Warning,
                    reason: format!(
                        "listener '{}' names route configuration '{name}' (RDS) and the dump has none of that name",
                        l.name
                    ),
                    instead: Instead::WarmingThenNoRoute,
                    listener: None,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests;
