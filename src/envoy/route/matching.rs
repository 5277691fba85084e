//! Envoy's route lookup: virtual host by domain, then routes in order, then the action
//! (Envoy: source/common/router/config_impl.cc `RouteMatcher::findVirtualHost`,
//! `VirtualHostImpl::getRouteFromEntries`, `RouteEntryImplBase::matchRoute`).

use super::config::{Action, PathSpecifier, RequireTls, Route, RouteConfig, RouteMatch, VirtualHost};
use super::decision::{
    Candidate, ClusterTarget, Outcome, Request, RouteDecision, RuntimeMode, Selected, WeightedBranch,
};
use super::finalize::{redirect_uri, ssl_redirect_uri};
use super::matchers::HeaderMap;

/// Routes one request through `config`. Never fails: an unmatched request is
/// [`Outcome::NotFound`] (404, flag NR), and `considered` says what was tried.
pub fn route(config: &RouteConfig, req: &Request) -> RouteDecision {
    let headers = req.header_map();
    let mut considered = Vec::new();
    let Some((vi, vh)) = find_virtual_host(config, &headers, &mut considered) else {
        return RouteDecision { virtual_host: None, route: None, outcome: Outcome::NotFound, considered };
    };
    let vh_sel = Selected {
        index: vi,
        name: vh.name.clone(),
        source: vh.source.clone(),
        istio_config: vh.istio_config().map(str::to_string),
    };
    let not_found = |considered| RouteDecision {
        virtual_host: Some(vh_sel.clone()),
        route: None,
        outcome: Outcome::NotFound,
        considered,
    };

    // `getRouteFromEntries`: the TLS requirement is checked before any route.
    let scheme = headers.get("x-forwarded-proto").unwrap_or("");
    if scheme.is_empty() {
        considered.push(cand(vh, false, "no x-forwarded-proto/scheme: Envoy routes nothing"));
        return not_found(considered);
    }
    let internal = headers.get("x-envoy-internal") == Some("true");
    let tls_redirect = match vh.require_tls {
        RequireTls::All => scheme != "https",
        RequireTls::ExternalOnly => scheme != "https" && !internal,
        RequireTls::None => false,
    };
    if tls_redirect {
        considered.push(cand(vh, true, "require_tls: redirect to https before route matching"));
        return RouteDecision {
            virtual_host: Some(vh_sel),
            route: None,
            outcome: Outcome::Redirect {
                location: ssl_redirect_uri(&headers),
                status: 301,
                require_tls: true,
            },
            considered,
        };
    }
    if vh.matcher.is_some() && vh.routes.is_empty() {
        considered.push(cand(
            vh,
            false,
            "virtual host uses the unified `matcher` tree, which is not evaluated",
        ));
        return not_found(considered);
    }

    for (ri, r) in vh.routes.iter().enumerate() {
        let verdict = match_route(config, r, req, &headers);
        let (matched, detail) = match &verdict {
            Ok(d) => (true, d.clone()),
            Err(d) => (false, d.clone()),
        };
        considered.push(Candidate { source: r.source.clone(), name: r.name.clone(), matched, detail });
        if !matched {
            continue;
        }
        let Some(outcome) = action_outcome(r, req, &headers) else {
            // Envoy treats a zero total weight as no route.
            considered.push(Candidate {
                source: r.source.clone(),
                name: r.name.clone(),
                matched: false,
                detail: "weighted_clusters total weight is 0: no route".into(),
            });
            return not_found(considered);
        };
        return RouteDecision {
            virtual_host: Some(vh_sel),
            route: Some(Selected {
                index: ri,
                name: r.name.clone(),
                source: r.source.clone(),
                istio_config: r.istio_config().map(str::to_string),
            }),
            outcome,
            considered,
        };
    }
    not_found(considered)
}

fn cand(vh: &VirtualHost, matched: bool, detail: &str) -> Candidate {
    Candidate { source: vh.source.clone(), name: vh.name.clone(), matched, detail: detail.to_string() }
}

/// Envoy's `findVirtualHost`: exact domain, then `*suffix` longest first, then `prefix*`
/// longest first, then `*`. The host must be strictly longer than a wildcard's fixed part.
fn find_virtual_host<'a>(
    config: &'a RouteConfig,
    headers: &HeaderMap,
    considered: &mut Vec<Candidate>,
) -> Option<(usize, &'a VirtualHost)> {
    let mut exact = Vec::new();
    let mut suffixes = Vec::new();
    let mut prefixes = Vec::new();
    let mut default = None;
    for (i, vh) in config.virtual_hosts.iter().enumerate() {
        for d in &vh.domains {
            let d = d.to_ascii_lowercase();
            if d == "*" {
                default = default.or(Some(i));
            } else if let Some(s) = d.strip_prefix('*') {
                suffixes.push((s.to_string(), i));
            } else if let Some(p) = d.strip_suffix('*') {
                prefixes.push((p.to_string(), i));
            } else {
                exact.push((d, i));
            }
        }
    }
    let pick = |i: usize, detail: String, considered: &mut Vec<Candidate>| {
        let vh = config.virtual_hosts.get(i)?;
        considered.push(cand(vh, true, &detail));
        Some((i, vh))
    };
    // Fast path in Envoy: only a `*` host means no header is consulted at all.
    if exact.is_empty() && suffixes.is_empty() && prefixes.is_empty() {
        return match default {
            Some(i) => pick(i, "the only virtual host, domain \"*\"".into(), considered),
            None => {
                considered.push(no_vhost("the route configuration has no virtual hosts"));
                None
            }
        };
    }
    let header_name = config.vhost_header.as_deref().unwrap_or(":authority");
    let Some(raw_host) = headers.get(header_name) else {
        considered.push(no_vhost(&format!("request has no {header_name} header")));
        return None;
    };
    let mut host = raw_host;
    if config.ignore_port_in_host_matching {
        if let Some(p) = port_start(host) {
            host = &host[..p];
        }
    }
    let host = host.to_ascii_lowercase();
    if let Some((_, i)) = exact.iter().find(|(d, _)| *d == host) {
        return pick(*i, format!("exact domain {host:?}"), considered);
    }
    suffixes.sort_by_key(|s| std::cmp::Reverse(s.0.len()));
    for (s, i) in &suffixes {
        if s.len() < host.len() && host.ends_with(s.as_str()) {
            return pick(*i, format!("wildcard domain \"*{s}\" (longest suffix)"), considered);
        }
    }
    prefixes.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
    for (p, i) in &prefixes {
        if p.len() < host.len() && host.starts_with(p.as_str()) {
            return pick(*i, format!("wildcard domain \"{p}*\" (longest prefix)"), considered);
        }
    }
    match default {
        Some(i) => {
            pick(i, format!("no exact or wildcard domain matches {host:?}; default \"*\""), considered)
        }
        None => {
            considered.push(no_vhost(&format!("no domain matches {host:?}")));
            None
        }
    }
}

fn no_vhost(detail: &str) -> Candidate {
    Candidate { source: String::new(), name: String::new(), matched: false, detail: detail.to_string() }
}

/// Where `:port` starts in a Host value (`Http::HeaderUtility::getPortStart`), handling
/// `[v6]:port`.
pub(crate) fn port_start(host: &str) -> Option<usize> {
    let colon = host.rfind(':')?;
    if host.starts_with('[') {
        // `[::1]:80`: the colon must follow the closing bracket.
        return host[..colon].ends_with(']').then_some(colon);
    }
    if host[..colon].contains(':') {
        return None; // bare IPv6 without brackets has no port
    }
    Some(colon)
}

/// The path without `?query` and `#fragment` (`Http::PathUtil::removeQueryAndFragment`).
pub(crate) fn path_only(path: &str) -> &str {
    match path.find(['?', '#']) {
        Some(i) => &path[..i],
        None => path,
    }
}

/// `RouteEntryImplBase::matchRoute` then the path specifier. `Ok` carries why it matched,
/// `Err` the first criterion that failed.
fn match_route(
    config: &RouteConfig,
    r: &Route,
    req: &Request,
    headers: &HeaderMap,
) -> Result<String, String> {
    let m: &RouteMatch = &r.r#match;
    let mut notes = Vec::new();
    if let Some(rf) = &m.runtime_fraction {
        let (on, note) = runtime_enabled(rf, req);
        if !on {
            return Err(format!("runtime_fraction {:?}: {note}", rf.runtime_key));
        }
        notes.push(format!("runtime_fraction {:?}: {note}", rf.runtime_key));
    }
    if m.grpc && !is_grpc(headers) {
        return Err("grpc: content-type is not application/grpc".into());
    }
    for h in &m.headers {
        if !h.matches(headers) {
            return Err(format!("header {:?} ({}) does not match", h.name, h.kind()));
        }
    }
    for q in &m.query_parameters {
        if !q.matches(&req.path) {
            return Err(format!("query parameter {:?} does not match", q.name));
        }
    }
    if let Some(u) = m.unsupported.first() {
        return Err(format!("match criterion `{u}` is not evaluated; treated as no match"));
    }
    for dm in &m.dynamic_metadata {
        if !dm.matches(&req.dynamic_metadata) {
            return Err(format!("dynamic_metadata {:?} does not match", dm.filter));
        }
    }
    let mut path = req.path.as_str();
    if config.ignore_path_parameters_in_path_matching {
        if let Some(i) = path.find(';') {
            path = &path[..i];
        }
    }
    let p = path_only(path);
    let ci = !m.case_sensitive;
    let lower = |s: &str| s.to_ascii_lowercase();
    let (ok, what) = match &m.path {
        PathSpecifier::Prefix(pre) => (
            if ci { lower(p).starts_with(&lower(pre)) } else { p.starts_with(pre.as_str()) },
            format!("prefix {pre:?}"),
        ),
        PathSpecifier::Path(exact) => {
            (if ci { lower(p) == lower(exact) } else { p == exact }, format!("path {exact:?}"))
        }
        PathSpecifier::SafeRegex(re) => (re.full_match(p), format!("safe_regex {:?}", re.pattern())),
        PathSpecifier::PathSeparatedPrefix(pre) => {
            let head_ok =
                p.len() >= pre.len()
                    && p.get(..pre.len()).is_some_and(|h| {
                        if ci {
                            h.eq_ignore_ascii_case(pre)
                        } else {
                            h == pre
                        }
                    });
            let sep_ok = p.len() == pre.len() || p.as_bytes().get(pre.len()) == Some(&b'/');
            (head_ok && sep_ok, format!("path_separated_prefix {pre:?}"))
        }
        PathSpecifier::Connect => (req.method.eq_ignore_ascii_case("CONNECT"), "connect_matcher".to_string()),
        PathSpecifier::Unsupported(what) => {
            return Err(format!("{what} is not evaluated; treated as no match"));
        }
    };
    if !ok {
        return Err(format!("{what} does not match path {p:?}"));
    }
    notes.insert(0, format!("{what} matches"));
    Ok(notes.join("; "))
}

fn runtime_enabled(rf: &super::matchers::RuntimeFraction, req: &Request) -> (bool, String) {
    match &req.runtime {
        RuntimeMode::Defaults => match req.random_value {
            Some(r) => {
                let on = rf.default_value.evaluate(r);
                (
                    on,
                    format!(
                        "{r} % {} {} {}",
                        rf.default_value.denominator,
                        if on { "<" } else { ">=" },
                        rf.default_value.numerator
                    ),
                )
            }
            None => (
                rf.default_value.numerator > 0,
                format!(
                    "enabled for {}/{} of requests (no random value given)",
                    rf.default_value.numerator, rf.default_value.denominator
                ),
            ),
        },
        RuntimeMode::RouterCheckTool { enabled_key } => {
            if enabled_key.as_deref() != Some(rf.runtime_key.as_str()) || rf.runtime_key.is_empty() {
                return (false, "runtime key not enabled by the test".into());
            }
            let mut frac = rf.default_value;
            if frac.numerator == 0 {
                frac.numerator = 1;
            }
            let r = req.random_value.unwrap_or(0);
            (frac.evaluate(r), format!("{r} % {} vs {}", frac.denominator, frac.numerator))
        }
    }
}

/// `Grpc::Common::isGrpcRequestHeaders`: content-type `application/grpc` or
/// `application/grpc+…`.
fn is_grpc(headers: &HeaderMap) -> bool {
    headers.get("content-type").is_some_and(|ct| {
        ct == "application/grpc"
            || ct.strip_prefix("application/grpc").is_some_and(|rest| rest.starts_with('+'))
    })
}

fn action_outcome(r: &Route, req: &Request, headers: &HeaderMap) -> Option<Outcome> {
    Some(match &r.action {
        Action::Route(a) => {
            let target = if let Some(c) = &a.cluster {
                ClusterTarget::Cluster(c.clone())
            } else if let Some(h) = &a.cluster_header {
                ClusterTarget::Header { header: h.clone(), cluster: headers.get(h).unwrap_or("").to_string() }
            } else if let Some(w) = &a.weighted_clusters {
                let branches: Vec<WeightedBranch> = w
                    .clusters
                    .iter()
                    .map(|c| WeightedBranch {
                        cluster: if c.cluster_header.is_empty() {
                            c.name.clone()
                        } else {
                            headers.get(&c.cluster_header).unwrap_or("").to_string()
                        },
                        weight: c.weight,
                    })
                    .collect();
                let total: u64 = branches.iter().map(|b| u64::from(b.weight)).sum();
                if total == 0 {
                    return None;
                }
                let from_header = (!w.header_name.is_empty())
                    .then(|| headers.get_joined(&w.header_name))
                    .flatten()
                    .filter(|v| !v.contains(','))
                    .and_then(|v| v.trim().parse::<u64>().ok());
                let selected = from_header.or(req.random_value).and_then(|rv| {
                    let pick = rv % total;
                    let mut end = 0u64;
                    branches.iter().position(|b| {
                        end += u64::from(b.weight);
                        pick < end
                    })
                });
                ClusterTarget::Weighted { branches, total_weight: total, selected }
            } else {
                // cluster_specifier_plugin: the plugin names the cluster at run time.
                ClusterTarget::Cluster(String::new())
            };
            Outcome::Forward { target, timeout_nanos: a.timeout_nanos() }
        }
        Action::Redirect(rd) => Outcome::Redirect {
            location: redirect_uri(Some(rd), headers, &matched_portion(r, &req.path)),
            status: rd.response_code,
            require_tls: false,
        },
        Action::DirectResponse(dr) => Outcome::DirectResponse {
            status: dr.status,
            body: dr.body.as_ref().and_then(|b| b.inline_text()),
        },
        Action::NonForwarding => Outcome::NonForwarding,
    })
}

/// The part of `:path` a rewrite replaces: the configured prefix/path, or the whole path
/// (without query) for regex and CONNECT routes.
pub(crate) fn matched_portion(r: &Route, path: &str) -> String {
    match &r.r#match.path {
        PathSpecifier::Prefix(p) | PathSpecifier::Path(p) | PathSpecifier::PathSeparatedPrefix(p) => {
            p.clone()
        }
        _ => path_only(path).to_string(),
    }
}

/// The virtual cluster a request falls into: the first whose headers all match, else
/// `"other"` when the host defines any, else none (E:config_impl.cc `virtualCluster`).
pub fn virtual_cluster<'a>(vh: &'a VirtualHost, headers: &HeaderMap) -> Option<&'a str> {
    for vc in &vh.virtual_clusters {
        if vc.headers.iter().all(|h| h.matches(headers)) {
            return Some(&vc.name);
        }
    }
    (!vh.virtual_clusters.is_empty()).then_some("other")
}
