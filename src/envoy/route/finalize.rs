//! What Envoy does to a request once a route is chosen: header mutations, host and path
//! rewrites, and the `Location` of redirects (E:source/common/router/config_impl.cc
//! `finalizeRequestHeaders`, E:source/common/http/utility.cc `newUri`).

use super::config::{RedirectAction, RegexRewrite, Route, RouteAction, RouteConfig, VirtualHost};
use super::headers::{evaluate, FormatContext};
use super::matchers::HeaderMap;
use super::matching::{matched_portion, path_only, port_start};

/// `createSslRedirectPath`: `https://<host><path>`.
pub fn ssl_redirect_uri(headers: &HeaderMap) -> String {
    format!("https://{}{}", headers.get(":authority").unwrap_or(""), headers.get(":path").unwrap_or(""))
}

/// `rewritePathByPrefixOrRegex`: the new `:path` (query kept), or `None` when nothing
/// rewrites.
pub fn rewrite_path(
    path: &str,
    matched: &str,
    prefix_rewrite: &str,
    regex_rewrite: Option<&RegexRewrite>,
) -> Option<String> {
    if !prefix_rewrite.is_empty() {
        let rest = path.get(matched.len()..).unwrap_or("");
        return Some(format!("{prefix_rewrite}{rest}"));
    }
    if let Some(rr) = regex_rewrite {
        let only = path_only(path);
        let new_only = rr.pattern.0.replace_all(only, &rr.substitution);
        if new_only.is_empty() {
            return None;
        }
        return Some(format!("{new_only}{}", &path[only.len()..]));
    }
    None
}

/// The `Location` of a redirect (or of any direct response, as router_check_tool reports
/// it): `redirect` applied to the request's scheme, host and (already rewritten) path.
/// `matched` is the part of the path the route matched (see `prefix_rewrite`).
pub fn redirect_uri(redirect: Option<&RedirectAction>, headers: &HeaderMap, matched: &str) -> String {
    let mut path = headers.get(":path").unwrap_or("").to_string();
    if let Some(rd) = redirect {
        if let Some(p) = rewrite_path(&path, matched, &rd.prefix_rewrite, rd.regex_rewrite.as_ref()) {
            path = p;
        }
    }
    new_uri(redirect, headers, &path)
}

/// `Http::Utility::newUri` on headers whose `:path` is already rewritten (what
/// router_check_tool reports as `path_redirect`).
pub fn redirect_location(redirect: Option<&RedirectAction>, headers: &HeaderMap) -> String {
    new_uri(redirect, headers, headers.get(":path").unwrap_or(""))
}

/// `Http::Utility::newUri` with `path` as the request's current `:path`.
fn new_uri(redirect: Option<&RedirectAction>, headers: &HeaderMap, path: &str) -> String {
    let request_scheme = headers.get(":scheme").unwrap_or("");
    let scheme = match redirect {
        Some(rd) if !rd.scheme_redirect.is_empty() => rd.scheme_redirect.as_str(),
        Some(rd) if rd.https_redirect => "https",
        _ => request_scheme,
    };
    let port = match redirect {
        Some(rd) if rd.port_redirect != 0 => format!(":{}", rd.port_redirect),
        _ => String::new(),
    };
    let host = match redirect {
        Some(rd) if !rd.host_redirect.is_empty() => rd.host_redirect.clone(),
        _ => request_host(headers, scheme, &port),
    };
    let has_query = |p: &str| p.contains('?');
    let mut final_path = match redirect {
        Some(rd) if !rd.path_redirect.is_empty() => {
            if has_query(&rd.path_redirect) {
                rd.path_redirect.clone()
            } else if let Some(q) = path.find('?') {
                format!("{}{}", rd.path_redirect, &path[q..])
            } else {
                rd.path_redirect.clone()
            }
        }
        _ => path.to_string(),
    };
    if !final_path.starts_with('/') {
        final_path.insert(0, '/');
    }
    if let Some(rd) = redirect {
        if !has_query(&rd.path_redirect) && rd.strip_query {
            if let Some(q) = final_path.find('?') {
                final_path.truncate(q);
            }
        }
    }
    format!("{scheme}://{host}{port}{final_path}")
}

/// `processRequestHost`: drop the request's port when a new port is set, or when the scheme
/// changes and the port was the old scheme's default.
fn request_host(headers: &HeaderMap, new_scheme: &str, new_port: &str) -> String {
    let host = headers.get(":authority").unwrap_or("");
    let Some(p) = port_start(host) else {
        return host.to_string();
    };
    let request_port = &host[p..];
    let proto = headers.get("x-forwarded-proto").unwrap_or("");
    let mut remove = !new_port.is_empty();
    if new_scheme != proto {
        remove |= proto.eq_ignore_ascii_case("https") && request_port == ":443";
        remove |= proto.eq_ignore_ascii_case("http") && request_port == ":80";
    }
    if remove {
        host[..p].to_string()
    } else {
        host.to_string()
    }
}

/// `finalizeRequestHeaders` for a forwarding route: header mutations (route, virtual host,
/// configuration; reversed with `most_specific_header_mutations_wins`), then the host
/// rewrite, then the path rewrite. `branch` is the chosen weighted cluster, if any. As with
/// the router's default (`suppress_envoy_headers: false`), a rewritten host or path is kept in
/// `x-envoy-original-host` / `x-envoy-original-path`.
pub fn finalize_request_headers(
    config: &RouteConfig,
    vh: &VirtualHost,
    route: &Route,
    action: &RouteAction,
    branch: Option<&super::config::ClusterWeight>,
    headers: &mut HeaderMap,
    ctx: &FormatContext,
) {
    let levels = [
        (&route.request_headers_to_add, &route.request_headers_to_remove),
        (&vh.request_headers_to_add, &vh.request_headers_to_remove),
        (&config.request_headers_to_add, &config.request_headers_to_remove),
    ];
    let ctx = FormatContext {
        downstream_remote_address: ctx.downstream_remote_address.clone(),
        request_headers: headers.clone(),
    };
    let ordered: Vec<_> = if config.most_specific_header_mutations_wins {
        levels.iter().rev().collect()
    } else {
        levels.iter().collect()
    };
    for (add, remove) in ordered {
        evaluate(headers, add, remove, &ctx);
    }
    if let Some(b) = branch {
        evaluate(headers, &b.request_headers_to_add, &b.request_headers_to_remove, &ctx);
    }

    let path = headers.get(":path").unwrap_or("").to_string();
    let literal = branch
        .map(|b| b.host_rewrite_literal.as_str())
        .filter(|h| !h.is_empty())
        .unwrap_or(action.host_rewrite_literal.as_str());
    let new_host = if !literal.is_empty() {
        Some(literal.to_string())
    } else if !action.host_rewrite_header.is_empty() {
        headers.get(&action.host_rewrite_header).map(str::to_string)
    } else {
        action
            .host_rewrite_path_regex
            .as_ref()
            .map(|rr| rr.pattern.0.replace_all(path_only(&path), &rr.substitution))
    };
    if let Some(h) = new_host.filter(|h| !h.is_empty()) {
        let old = headers.get(":authority").unwrap_or("").to_string();
        if !old.is_empty() {
            headers.set("x-envoy-original-host", &old);
            if action.append_x_forwarded_host {
                let xfh = headers.get("x-forwarded-host").unwrap_or("").to_string();
                let last = xfh.split(',').map(str::trim).rfind(|s| !s.is_empty());
                if last != Some(old.as_str()) {
                    let joined = if xfh.is_empty() { old.clone() } else { format!("{xfh},{old}") };
                    headers.set("x-forwarded-host", &joined);
                }
            }
        }
        headers.set(":authority", &h);
    }

    let matched = matched_portion(route, &path);
    if let Some(p) = rewrite_path(&path, &matched, &action.prefix_rewrite, action.regex_rewrite.as_ref()) {
        headers.set("x-envoy-original-path", &path);
        headers.set(":path", &p);
    }
}

/// Response header mutations of a route (route, virtual host, configuration order as for
/// requests).
pub fn finalize_response_headers(
    config: &RouteConfig,
    vh: &VirtualHost,
    route: &Route,
    headers: &mut HeaderMap,
    ctx: &FormatContext,
) {
    let levels = [
        (&route.response_headers_to_add, &route.response_headers_to_remove),
        (&vh.response_headers_to_add, &vh.response_headers_to_remove),
        (&config.response_headers_to_add, &config.response_headers_to_remove),
    ];
    let ordered: Vec<_> = if config.most_specific_header_mutations_wins {
        levels.iter().rev().collect()
    } else {
        levels.iter().collect()
    };
    for (add, remove) in ordered {
        evaluate(headers, add, remove, ctx);
    }
}
