//! The Envoy v1 route JSON (2018 and earlier; router_check_tool's oldest inputs) converted
//! into the same [`RouteConfig`] model.
//!
//! v1 put the path specifier and the action straight on the route (`prefix`, `cluster`,
//! `host_redirect`, ...), spelled `require_ssl` as `all`/`external_only`, gave virtual clusters
//! a `pattern` + `method`, and wrote runtime gates as `{key, default}` percentages. Regexes were
//! ECMAScript (`std::regex`) then; they are compiled as RE2, with a shim for one top-level
//! look-ahead on a literal ([`Re2::new_ecmascript`]); a virtual-cluster pattern still not
//! expressible is dropped and listed in [`RouteConfig::unsupported`].

use serde::Deserialize;

use super::config::{
    Action, ClusterWeight, PathSpecifier, RedirectAction, RequireTls, Route, RouteAction, RouteConfig,
    RouteMatch, VirtualCluster, VirtualHost, WeightedClusters,
};
use super::headers::HeaderValueOption;
use super::matchers::{
    FractionalPercent, HeaderMatcher, HeaderRule, Metadata, RuntimeFraction, StringMatcher, StringPattern,
};
use super::re2::Re2;
use super::{strip_trailing_commas, RouteConfigError};

#[derive(Deserialize)]
struct V1Config {
    #[serde(default)]
    virtual_hosts: Vec<V1VirtualHost>,
    #[serde(default)]
    internal_only_headers: Vec<String>,
    #[serde(default)]
    response_headers_to_add: Vec<V1Header>,
    #[serde(default)]
    response_headers_to_remove: Vec<String>,
    #[serde(default)]
    request_headers_to_add: Vec<V1Header>,
}

#[derive(Deserialize)]
struct V1Header {
    key: String,
    #[serde(default)]
    value: String,
}

#[derive(Deserialize)]
struct V1VirtualHost {
    #[serde(default)]
    name: String,
    #[serde(default)]
    domains: Vec<String>,
    #[serde(default)]
    routes: Vec<V1Route>,
    #[serde(default)]
    require_ssl: Option<String>,
    #[serde(default)]
    virtual_clusters: Vec<V1VirtualCluster>,
    #[serde(default)]
    request_headers_to_add: Vec<V1Header>,
}

#[derive(Deserialize)]
struct V1VirtualCluster {
    pattern: String,
    #[serde(default)]
    method: Option<String>,
    name: String,
}

#[derive(Deserialize)]
struct V1Route {
    prefix: Option<String>,
    path: Option<String>,
    regex: Option<String>,
    #[serde(default, deserialize_with = "super::de::opt_bool_lenient")]
    case_sensitive: Option<bool>,
    cluster: Option<String>,
    cluster_header: Option<String>,
    weighted_clusters: Option<V1Weighted>,
    #[serde(default)]
    host_redirect: String,
    #[serde(default)]
    path_redirect: String,
    #[serde(default)]
    prefix_rewrite: String,
    #[serde(default)]
    host_rewrite: String,
    #[serde(default, deserialize_with = "super::de::opt_bool_lenient")]
    auto_host_rewrite: Option<bool>,
    #[serde(default, deserialize_with = "opt_u64")]
    timeout_ms: Option<u64>,
    #[serde(default)]
    headers: Vec<V1HeaderMatch>,
    runtime: Option<V1Runtime>,
    #[serde(default)]
    request_headers_to_add: Vec<V1Header>,
}

fn opt_u64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    super::de::u64_lenient(d).map(Some)
}

#[derive(Deserialize)]
struct V1Weighted {
    clusters: Vec<V1WeightedCluster>,
    #[serde(default)]
    runtime_key_prefix: String,
}

#[derive(Deserialize)]
struct V1WeightedCluster {
    name: String,
    #[serde(deserialize_with = "super::de::u32_lenient")]
    weight: u32,
}

#[derive(Deserialize)]
struct V1HeaderMatch {
    name: String,
    value: Option<String>,
    #[serde(default, deserialize_with = "super::de::bool_lenient")]
    regex: bool,
}

#[derive(Deserialize)]
struct V1Runtime {
    key: String,
    #[serde(deserialize_with = "super::de::u32_lenient")]
    default: u32,
}

/// Whether a JSON text looks like a v1 route config: some route carries its path specifier
/// directly instead of under `match`.
pub fn looks_like_v1(value: &serde_json::Value) -> bool {
    value
        .get("virtual_hosts")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .filter_map(|vh| vh.get("routes").and_then(|r| r.as_array()))
        .flatten()
        .any(|r| {
            r.get("match").is_none()
                && (r.get("prefix").is_some() || r.get("path").is_some() || r.get("regex").is_some())
        })
}

/// Reads a v1 route JSON document into the model. `what` names the input in errors.
pub fn from_v1_json(text: &str, what: &str) -> Result<RouteConfig, RouteConfigError> {
    let v1: V1Config =
        serde_json::from_str(&strip_trailing_commas(text)).map_err(|e| RouteConfigError::Json {
            what: what.to_string(),
            message: e.to_string(),
            line: e.line(),
            column: e.column(),
        })?;
    convert(v1).map_err(|message| RouteConfigError::Legacy { what: what.to_string(), message })
}

fn headers(list: Vec<V1Header>) -> Vec<HeaderValueOption> {
    list.iter().map(|h| HeaderValueOption::new(&h.key, &h.value)).collect()
}

fn convert(v1: V1Config) -> Result<RouteConfig, String> {
    let mut unsupported = Vec::new();
    let mut virtual_hosts = Vec::new();
    for (vi, vh) in v1.virtual_hosts.into_iter().enumerate() {
        let require_tls = match vh.require_ssl.as_deref() {
            None | Some("") | Some("none") => RequireTls::None,
            Some("all") => RequireTls::All,
            Some("external_only") => RequireTls::ExternalOnly,
            Some(other) => return Err(format!("virtual_hosts[{vi}]: unknown require_ssl {other:?}")),
        };
        let mut virtual_clusters = Vec::new();
        for (ci, vc) in vh.virtual_clusters.into_iter().enumerate() {
            let re = match Re2::new_ecmascript(&vc.pattern) {
                Ok(re) => re,
                Err(e) => {
                    unsupported.push(format!(
                        "virtual_hosts[{vi}].virtual_clusters[{ci}] ({}): {e}; the virtual \
                         cluster is left out",
                        vc.name
                    ));
                    continue;
                }
            };
            let mut hs = vec![HeaderMatcher {
                name: ":path".into(),
                rule: HeaderRule::SafeRegexMatch(re),
                invert_match: false,
                treat_missing_header_as_empty: false,
            }];
            if let Some(m) = vc.method {
                hs.push(HeaderMatcher {
                    name: ":method".into(),
                    rule: HeaderRule::StringMatch(StringMatcher {
                        pattern: StringPattern::Exact(m),
                        ignore_case: false,
                    }),
                    invert_match: false,
                    treat_missing_header_as_empty: false,
                });
            }
            virtual_clusters.push(VirtualCluster { name: vc.name, headers: hs });
        }
        let mut routes = Vec::new();
        for (ri, r) in vh.routes.into_iter().enumerate() {
            routes.push(convert_route(r).map_err(|e| format!("virtual_hosts[{vi}].routes[{ri}]: {e}"))?);
        }
        virtual_hosts.push(VirtualHost {
            name: vh.name,
            domains: vh.domains,
            routes,
            require_tls,
            virtual_clusters,
            request_headers_to_add: headers(vh.request_headers_to_add),
            ..VirtualHost::default()
        });
    }
    let mut cfg = RouteConfig {
        virtual_hosts,
        internal_only_headers: v1.internal_only_headers,
        request_headers_to_add: headers(v1.request_headers_to_add),
        response_headers_to_add: headers(v1.response_headers_to_add),
        response_headers_to_remove: v1.response_headers_to_remove,
        unsupported,
        ..RouteConfig::default()
    };
    cfg.assign_sources();
    cfg.validate_domains()?;
    Ok(cfg)
}

fn convert_route(r: V1Route) -> Result<Route, String> {
    let path = if let Some(p) = r.prefix {
        PathSpecifier::Prefix(p)
    } else if let Some(p) = r.path {
        PathSpecifier::Path(p)
    } else if let Some(p) = r.regex {
        PathSpecifier::SafeRegex(Re2::new_ecmascript(&p)?)
    } else {
        return Err("route needs prefix, path or regex".into());
    };
    let mut header_matchers = Vec::new();
    for h in r.headers {
        let rule = match (h.value, h.regex) {
            (None, _) => HeaderRule::Present(true),
            (Some(v), true) => HeaderRule::SafeRegexMatch(Re2::new_ecmascript(&v)?),
            (Some(v), false) => HeaderRule::ExactMatch(v),
        };
        header_matchers.push(HeaderMatcher {
            name: h.name,
            rule,
            invert_match: false,
            treat_missing_header_as_empty: false,
        });
    }
    let action = if !r.host_redirect.is_empty() || !r.path_redirect.is_empty() {
        Action::Redirect(Box::new(RedirectAction {
            host_redirect: r.host_redirect,
            path_redirect: r.path_redirect,
            response_code: 301,
            ..RedirectAction::default()
        }))
    } else {
        let weighted_clusters = r.weighted_clusters.map(|w| WeightedClusters {
            clusters: w
                .clusters
                .into_iter()
                .map(|c| ClusterWeight {
                    name: c.name,
                    cluster_header: String::new(),
                    weight: c.weight,
                    host_rewrite_literal: String::new(),
                    request_headers_to_add: Vec::new(),
                    request_headers_to_remove: Vec::new(),
                    response_headers_to_add: Vec::new(),
                    response_headers_to_remove: Vec::new(),
                })
                .collect(),
            total_weight: None,
            runtime_key_prefix: w.runtime_key_prefix,
            header_name: String::new(),
        });
        Action::Route(Box::new(RouteAction {
            cluster: r.cluster,
            cluster_header: r.cluster_header,
            weighted_clusters,
            cluster_specifier_plugin: None,
            inline_cluster_specifier_plugin: None,
            prefix_rewrite: r.prefix_rewrite,
            regex_rewrite: None,
            host_rewrite_literal: r.host_rewrite,
            host_rewrite_header: String::new(),
            host_rewrite_path_regex: None,
            auto_host_rewrite: r.auto_host_rewrite,
            append_x_forwarded_host: false,
            timeout: r.timeout_ms.map(|ms| ms.saturating_mul(1_000_000)),
            retry_policy: None,
        }))
    };
    Ok(Route {
        name: String::new(),
        r#match: RouteMatch {
            path,
            case_sensitive: r.case_sensitive.unwrap_or(true),
            case_sensitive_explicit: r.case_sensitive.is_some(),
            runtime_fraction: r.runtime.map(|rt| RuntimeFraction {
                default_value: FractionalPercent { numerator: rt.default, denominator: 100 },
                runtime_key: rt.key,
            }),
            headers: header_matchers,
            query_parameters: Vec::new(),
            grpc: false,
            dynamic_metadata: Vec::new(),
            unsupported: Vec::new(),
        },
        action,
        metadata: Metadata::default(),
        request_headers_to_add: headers(r.request_headers_to_add),
        request_headers_to_remove: Vec::new(),
        response_headers_to_add: Vec::new(),
        response_headers_to_remove: Vec::new(),
        source: String::new(),
    })
}
