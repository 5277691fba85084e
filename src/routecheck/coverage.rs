//! router_check_tool's coverage arithmetic (E:test/tools/router_check/coverage.cc): a route
//! is covered once a passing check touched it; weighted routes count once per cluster;
//! `--covall` weighs each route by the share of its checkable fields that were checked.

use crate::envoy::route::{Action, Route, RouteConfig};

/// Which entry a coverage mark belongs to (Envoy keys coverage by route object).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum CoverKey {
    /// A forwarding route; weighted routes count once per chosen cluster.
    Entry { vh: usize, route: usize, branch: Option<usize> },
    /// A redirect or direct response (`route: None` = the virtual host's TLS redirect).
    Direct { vh: usize, route: Option<usize> },
}

#[derive(Debug, Clone, Default)]
pub(super) struct CoverFields {
    pub(super) cluster: bool,
    pub(super) virtual_cluster: bool,
    pub(super) virtual_host: bool,
    pub(super) path_rewrite: bool,
    pub(super) host_rewrite: bool,
    pub(super) redirect_path: bool,
    pub(super) redirect_code: bool,
}

/// `Coverage::report` (plain) or `comprehensiveReport` (`--covall`), in percent.
pub(super) fn coverage_percent(
    covered: &[(CoverKey, CoverFields)],
    config: &RouteConfig,
    comprehensive: bool,
) -> f64 {
    let total = route_count(config);
    if total == 0 {
        return f64::NAN;
    }
    let covered = if comprehensive {
        covered.iter().map(|(k, f)| field_fraction(k, f)).sum::<f64>()
    } else {
        covered.len() as f64
    };
    100.0 * covered / total as f64
}

/// Routes no test covered, as `(virtual host name, route)` in configuration order, where
/// route is the match in proto text (`comprehensive`) or the route's unique name.
pub(super) fn missing_tests(
    covered: &[(CoverKey, CoverFields)],
    config: &RouteConfig,
    comprehensive: bool,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (vi, vh) in config.virtual_hosts.iter().enumerate() {
        for (ri, r) in vh.routes.iter().enumerate() {
            let hit = covered.iter().any(|(k, _)| match *k {
                CoverKey::Entry { vh, route, .. } => vh == vi && route == ri,
                CoverKey::Direct { vh, route } => vh == vi && route == Some(ri),
            });
            if hit {
                continue;
            }
            let what = if comprehensive { match_text(r) } else { unique_route_name(r) };
            out.push((vh.name.clone(), what));
        }
    }
    out
}

/// The name router_check_tool gives a route (`<name>-<unique suffix>`); the suffix here is
/// the route's index path instead of a random UUID so output is reproducible.
pub fn unique_route_name(r: &Route) -> String {
    format!("{}-{}", r.name, r.source)
}

fn route_count(config: &RouteConfig) -> usize {
    config
        .virtual_hosts
        .iter()
        .flat_map(|vh| &vh.routes)
        .map(|r| match &r.action {
            Action::Route(a) => a.weighted_clusters.as_ref().map_or(1, |w| w.clusters.len()),
            _ => 1,
        })
        .sum()
}

fn field_fraction(k: &CoverKey, f: &CoverFields) -> f64 {
    let fields: Vec<bool> = match k {
        CoverKey::Entry { .. } => {
            vec![f.cluster, f.virtual_cluster, f.virtual_host, f.path_rewrite, f.host_rewrite]
        }
        CoverKey::Direct { .. } => vec![f.redirect_path, f.redirect_code],
    };
    fields.iter().filter(|b| **b).count() as f64 / fields.len() as f64
}

/// The route's match in protobuf text format, as the tool prints missing tests.
fn match_text(r: &Route) -> String {
    use crate::envoy::route::PathSpecifier;
    let m = &r.r#match;
    let mut s = match &m.path {
        PathSpecifier::Prefix(p) => format!("prefix: {p:?}\n"),
        PathSpecifier::Path(p) => format!("path: {p:?}\n"),
        PathSpecifier::SafeRegex(re) => format!("safe_regex {{\n  regex: {:?}\n}}\n", re.pattern()),
        PathSpecifier::PathSeparatedPrefix(p) => format!("path_separated_prefix: {p:?}\n"),
        PathSpecifier::Connect => "connect_matcher {\n}\n".to_string(),
        PathSpecifier::Unsupported(w) => format!("{w} {{\n}}\n"),
    };
    if m.case_sensitive_explicit {
        s.push_str(&format!("case_sensitive {{\n  value: {}\n}}\n", m.case_sensitive));
    }
    for h in &m.headers {
        s.push_str(&format!("headers {{\n  name: {:?}\n}}\n", h.name));
    }
    if m.grpc {
        s.push_str("grpc {\n}\n");
    }
    if let Some(rf) = &m.runtime_fraction {
        s.push_str(&format!(
            "runtime_fraction {{\n  default_value {{\n    numerator: {}\n  }}\n  runtime_key: {:?}\n}}\n",
            rf.default_value.numerator, rf.runtime_key
        ));
    }
    s
}
