//! The RouteConfiguration model (`envoy.config.route.v3.RouteConfiguration` and its v2 names).
//!
//! The structs deserialize straight from proto3 JSON or YAML (snake_case or camelCase, unknown
//! fields and `@type` ignored) and can sit as a field inside a larger serde document (a config
//! dump's `dynamic_route_configs[].route_config` or an HCM's inline `route_config`).
//! After deserializing, every virtual host and route knows its index path
//! (`virtual_hosts[2].routes[0]`) and its Istio `metadata.filter_metadata.istio.config`.

use serde::de::{self, Deserializer, IgnoredAny};
use serde::Deserialize;

use super::de::{bool_lenient, duration_nanos, enum_index, opt_bool_lenient, u32_lenient};
use super::headers::HeaderValueOption;
use super::matchers::{
    HeaderMatcher, Metadata, MetadataMatcher, QueryParameterMatcher, RegexMatcher, RuntimeFraction,
};
use super::re2::Re2;

/// Envoy's default route timeout when `route.timeout` is absent (15 s).
pub const DEFAULT_ROUTE_TIMEOUT_NANOS: u64 = 15_000_000_000;

/// `envoy.config.route.v3.RouteConfiguration`.
#[derive(Debug, Clone, Default)]
pub struct RouteConfig {
    pub name: String,
    pub virtual_hosts: Vec<VirtualHost>,
    pub internal_only_headers: Vec<String>,
    pub request_headers_to_add: Vec<HeaderValueOption>,
    pub request_headers_to_remove: Vec<String>,
    pub response_headers_to_add: Vec<HeaderValueOption>,
    pub response_headers_to_remove: Vec<String>,
    /// Match the Host header without its `:port` (Envoy: source/common/router/config_impl.cc).
    pub ignore_port_in_host_matching: bool,
    /// Use this header instead of `:authority` for virtual-host selection.
    pub vhost_header: Option<String>,
    /// Header mutations evaluate route → vhost → config unless this is set.
    pub most_specific_header_mutations_wins: bool,
    /// Strip `;params` before path matching.
    pub ignore_path_parameters_in_path_matching: bool,
    /// `metadata` (newer Envoy), including Istio's `filter_metadata.istio.config`.
    pub metadata: Metadata,
    /// Fields present in the input that this model does not evaluate (e.g. `vhds`).
    pub unsupported: Vec<String>,
}

impl RouteConfig {
    /// Istio's `metadata.filter_metadata.istio.config`, when present.
    pub fn istio_config(&self) -> Option<&str> {
        self.metadata.istio_config()
    }

    /// The virtual host a decision selected.
    pub fn virtual_host(&self, selected: &super::decision::Selected) -> Option<&VirtualHost> {
        self.virtual_hosts.get(selected.index)
    }
}

/// `envoy.config.route.v3.VirtualHost`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct VirtualHost {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub routes: Vec<Route>,
    #[serde(default, alias = "requireTls", deserialize_with = "require_tls")]
    pub require_tls: RequireTls,
    #[serde(default, alias = "virtualClusters")]
    pub virtual_clusters: Vec<VirtualCluster>,
    /// The retry policy of routes that have none.
    #[serde(default, alias = "retryPolicy")]
    pub retry_policy: Option<RetryPolicy>,
    #[serde(default, alias = "requestHeadersToAdd")]
    pub request_headers_to_add: Vec<HeaderValueOption>,
    #[serde(default, alias = "requestHeadersToRemove")]
    pub request_headers_to_remove: Vec<String>,
    #[serde(default, alias = "responseHeadersToAdd")]
    pub response_headers_to_add: Vec<HeaderValueOption>,
    #[serde(default, alias = "responseHeadersToRemove")]
    pub response_headers_to_remove: Vec<String>,
    #[serde(default)]
    pub metadata: Metadata,
    /// The unified `matcher` tree replaces `routes`; it is not evaluated here.
    #[serde(default)]
    pub matcher: Option<IgnoredAny>,
    /// Index path inside the route configuration, e.g. `virtual_hosts[2]`.
    #[serde(skip)]
    pub source: String,
}

impl VirtualHost {
    /// Istio's `metadata.filter_metadata.istio.config`, when present.
    pub fn istio_config(&self) -> Option<&str> {
        self.metadata.istio_config()
    }
}

/// `require_tls` of a virtual host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RequireTls {
    #[default]
    None,
    ExternalOnly,
    All,
}

fn require_tls<'de, D: Deserializer<'de>>(d: D) -> Result<RequireTls, D::Error> {
    const NAMES: &[&str] = &["NONE", "EXTERNAL_ONLY", "ALL"];
    Ok([RequireTls::None, RequireTls::ExternalOnly, RequireTls::All][enum_index(d, "require_tls", NAMES)?])
}

/// `envoy.config.route.v3.VirtualCluster`: named request classes for stats.
#[derive(Debug, Clone, Deserialize)]
pub struct VirtualCluster {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub headers: Vec<HeaderMatcher>,
}

/// `envoy.config.route.v3.Route`.
#[derive(Debug, Clone)]
pub struct Route {
    pub name: String,
    pub r#match: RouteMatch,
    pub action: Action,
    pub metadata: Metadata,
    pub request_headers_to_add: Vec<HeaderValueOption>,
    pub request_headers_to_remove: Vec<String>,
    pub response_headers_to_add: Vec<HeaderValueOption>,
    pub response_headers_to_remove: Vec<String>,
    /// Index path inside the route configuration, e.g. `virtual_hosts[2].routes[0]`.
    pub source: String,
}

impl Route {
    /// Istio's `metadata.filter_metadata.istio.config`, when present.
    pub fn istio_config(&self) -> Option<&str> {
        self.metadata.istio_config()
    }
}

/// What a route does once it matched.
#[derive(Debug, Clone)]
pub enum Action {
    Route(Box<RouteAction>),
    Redirect(Box<RedirectAction>),
    DirectResponse(DirectResponseAction),
    /// `non_forwarding_action` / `filter_action`: a filter handles the request.
    NonForwarding,
}

impl<'de> Deserialize<'de> for Route {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            #[serde(default)]
            name: String,
            #[serde(rename = "match")]
            r#match: RouteMatch,
            route: Option<RouteAction>,
            redirect: Option<RedirectAction>,
            #[serde(alias = "directResponse")]
            direct_response: Option<DirectResponseAction>,
            #[serde(alias = "filterAction")]
            filter_action: Option<IgnoredAny>,
            #[serde(alias = "nonForwardingAction")]
            non_forwarding_action: Option<IgnoredAny>,
            #[serde(default)]
            metadata: Metadata,
            #[serde(default, alias = "requestHeadersToAdd")]
            request_headers_to_add: Vec<HeaderValueOption>,
            #[serde(default, alias = "requestHeadersToRemove")]
            request_headers_to_remove: Vec<String>,
            #[serde(default, alias = "responseHeadersToAdd")]
            response_headers_to_add: Vec<HeaderValueOption>,
            #[serde(default, alias = "responseHeadersToRemove")]
            response_headers_to_remove: Vec<String>,
        }
        let r = Raw::deserialize(d)?;
        let action = if let Some(a) = r.route {
            // PGV: the `cluster_specifier` one-of is required.
            if a.cluster.is_none()
                && a.cluster_header.is_none()
                && a.weighted_clusters.is_none()
                && a.cluster_specifier_plugin.is_none()
                && a.inline_cluster_specifier_plugin.is_none()
            {
                return Err(de::Error::custom(
                    "route action needs one of cluster, cluster_header, weighted_clusters, \
                     cluster_specifier_plugin, inline_cluster_specifier_plugin",
                ));
            }
            Action::Route(Box::new(a))
        } else if let Some(a) = r.redirect {
            Action::Redirect(Box::new(a))
        } else if let Some(a) = r.direct_response {
            Action::DirectResponse(a)
        } else if r.filter_action.is_some() || r.non_forwarding_action.is_some() {
            Action::NonForwarding
        } else {
            return Err(de::Error::custom(
                "route needs one of route, redirect, direct_response, non_forwarding_action",
            ));
        };
        Ok(Route {
            name: r.name,
            r#match: r.r#match,
            action,
            metadata: r.metadata,
            request_headers_to_add: r.request_headers_to_add,
            request_headers_to_remove: r.request_headers_to_remove,
            response_headers_to_add: r.response_headers_to_add,
            response_headers_to_remove: r.response_headers_to_remove,
            source: String::new(),
        })
    }
}

/// `envoy.config.route.v3.RouteMatch`.
#[derive(Debug, Clone)]
pub struct RouteMatch {
    pub path: PathSpecifier,
    /// Default true; applies to prefix, path and path_separated_prefix, not to regex.
    pub case_sensitive: bool,
    /// Whether `case_sensitive` was written in the input (router_check_tool prints it then).
    pub case_sensitive_explicit: bool,
    pub runtime_fraction: Option<RuntimeFraction>,
    pub headers: Vec<HeaderMatcher>,
    pub query_parameters: Vec<QueryParameterMatcher>,
    /// `grpc: {}`: only requests with a gRPC content type.
    pub grpc: bool,
    pub dynamic_metadata: Vec<MetadataMatcher>,
    /// Criteria present in the input that are not evaluated (`tls_context`, `cookies`, ...).
    pub unsupported: Vec<String>,
}

/// The `path_specifier` one-of.
#[derive(Debug, Clone)]
pub enum PathSpecifier {
    Prefix(String),
    Path(String),
    SafeRegex(Re2),
    PathSeparatedPrefix(String),
    /// `connect_matcher`: CONNECT requests only.
    Connect,
    /// `path_match_policy` (URI templates): not evaluated; never matches here.
    Unsupported(String),
}

impl<'de> Deserialize<'de> for RouteMatch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            prefix: Option<String>,
            path: Option<String>,
            #[serde(alias = "safeRegex")]
            safe_regex: Option<RegexMatcher>,
            /// v2 `regex` (deprecated, RE2 since 1.11).
            regex: Option<String>,
            #[serde(alias = "pathSeparatedPrefix")]
            path_separated_prefix: Option<String>,
            #[serde(alias = "connectMatcher")]
            connect_matcher: Option<IgnoredAny>,
            #[serde(alias = "pathMatchPolicy")]
            path_match_policy: Option<IgnoredAny>,
            #[serde(default, alias = "caseSensitive", deserialize_with = "opt_bool_lenient")]
            case_sensitive: Option<bool>,
            #[serde(alias = "runtimeFraction")]
            runtime_fraction: Option<RuntimeFraction>,
            #[serde(default)]
            headers: Vec<HeaderMatcher>,
            #[serde(default, alias = "queryParameters")]
            query_parameters: Vec<QueryParameterMatcher>,
            grpc: Option<IgnoredAny>,
            #[serde(default, alias = "dynamicMetadata")]
            dynamic_metadata: Vec<MetadataMatcher>,
            #[serde(alias = "tlsContext")]
            tls_context: Option<IgnoredAny>,
            cookies: Option<IgnoredAny>,
            #[serde(alias = "filterState")]
            filter_state: Option<IgnoredAny>,
        }
        let r = Raw::deserialize(d)?;
        let path = if let Some(p) = r.prefix {
            PathSpecifier::Prefix(p)
        } else if let Some(p) = r.path {
            PathSpecifier::Path(p)
        } else if let Some(p) = r.safe_regex {
            PathSpecifier::SafeRegex(p.0)
        } else if let Some(p) = r.regex {
            PathSpecifier::SafeRegex(Re2::new(&p).map_err(de::Error::custom)?)
        } else if let Some(p) = r.path_separated_prefix {
            PathSpecifier::PathSeparatedPrefix(p)
        } else if r.connect_matcher.is_some() {
            PathSpecifier::Connect
        } else if r.path_match_policy.is_some() {
            PathSpecifier::Unsupported("path_match_policy".into())
        } else {
            return Err(de::Error::custom(
                "route match needs one of prefix, path, safe_regex, path_separated_prefix, \
                 connect_matcher, path_match_policy",
            ));
        };
        let mut unsupported = Vec::new();
        for (present, what) in [
            (r.tls_context.is_some(), "tls_context"),
            (r.cookies.is_some(), "cookies"),
            (r.filter_state.is_some(), "filter_state"),
        ] {
            if present {
                unsupported.push(what.to_string());
            }
        }
        Ok(RouteMatch {
            path,
            case_sensitive: r.case_sensitive.unwrap_or(true),
            case_sensitive_explicit: r.case_sensitive.is_some(),
            runtime_fraction: r.runtime_fraction,
            headers: r.headers,
            query_parameters: r.query_parameters,
            grpc: r.grpc.is_some(),
            dynamic_metadata: r.dynamic_metadata,
            unsupported,
        })
    }
}

/// `envoy.config.route.v3.RouteAction` (the forwarding parts).
#[derive(Debug, Clone, Deserialize)]
pub struct RouteAction {
    #[serde(default)]
    pub cluster: Option<String>,
    #[serde(default, alias = "clusterHeader")]
    pub cluster_header: Option<String>,
    #[serde(default, alias = "weightedClusters")]
    pub weighted_clusters: Option<WeightedClusters>,
    #[serde(default, alias = "clusterSpecifierPlugin")]
    pub cluster_specifier_plugin: Option<IgnoredAny>,
    #[serde(default, alias = "inlineClusterSpecifierPlugin")]
    pub inline_cluster_specifier_plugin: Option<IgnoredAny>,
    #[serde(default, alias = "prefixRewrite")]
    pub prefix_rewrite: String,
    #[serde(default, alias = "regexRewrite")]
    pub regex_rewrite: Option<RegexRewrite>,
    #[serde(default, alias = "hostRewriteLiteral", alias = "host_rewrite")]
    pub host_rewrite_literal: String,
    #[serde(default, alias = "hostRewriteHeader")]
    pub host_rewrite_header: String,
    #[serde(default, alias = "hostRewritePathRegex")]
    pub host_rewrite_path_regex: Option<RegexRewrite>,
    #[serde(default, alias = "autoHostRewrite", deserialize_with = "opt_bool_lenient")]
    pub auto_host_rewrite: Option<bool>,
    /// Append the pre-rewrite host to `x-forwarded-host` on a host rewrite.
    #[serde(default, alias = "appendXForwardedHost", deserialize_with = "bool_lenient")]
    pub append_x_forwarded_host: bool,
    /// Route timeout in nanoseconds (`None` = Envoy's default of 15 s).
    #[serde(default, deserialize_with = "duration_nanos")]
    pub timeout: Option<u64>,
    #[serde(default, alias = "retryPolicy")]
    pub retry_policy: Option<RetryPolicy>,
}

/// `envoy.config.route.v3.RetryPolicy`: what makes the router try again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct RetryPolicy {
    /// Comma-separated conditions (`connect-failure`, `reset`, `5xx`, ...).
    #[serde(default, alias = "retryOn")]
    pub retry_on: String,
    /// `None`: Envoy's default of 1.
    #[serde(default, alias = "numRetries", deserialize_with = "super::de::opt_u32_lenient")]
    pub num_retries: Option<u32>,
}

impl RetryPolicy {
    /// Whether a stream reset for this reason is retried (source/common/router/retry_state_impl.cc,
    /// `RetryStateImpl::wouldRetryFromReset`: `reset`, `5xx` and `gateway-error` retry every
    /// reset; `connect-failure` only a connection failure), with at least one retry left.
    pub fn retries_reset(&self, connection_failure: bool) -> bool {
        let on = |c: &str| self.retry_on.split(',').any(|x| x.trim() == c);
        self.num_retries.unwrap_or(1) > 0
            && (on("reset")
                || on("5xx")
                || on("gateway-error")
                || (connection_failure && on("connect-failure")))
    }
}

impl RouteAction {
    /// The effective route timeout in nanoseconds (absent = 15 s; 0 = disabled).
    pub fn timeout_nanos(&self) -> u64 {
        self.timeout.unwrap_or(DEFAULT_ROUTE_TIMEOUT_NANOS)
    }
}

/// `envoy.type.matcher.v3.RegexMatchAndSubstitute`.
#[derive(Debug, Clone, Deserialize)]
pub struct RegexRewrite {
    pub pattern: RegexMatcher,
    #[serde(default)]
    pub substitution: String,
}

/// `envoy.config.route.v3.WeightedCluster`.
#[derive(Debug, Clone, Deserialize)]
pub struct WeightedClusters {
    #[serde(default)]
    pub clusters: Vec<ClusterWeight>,
    /// Deprecated; older Envoy required Σ weights == total_weight (default 100).
    #[serde(default, alias = "totalWeight", deserialize_with = "super::de::opt_u32_lenient")]
    pub total_weight: Option<u32>,
    #[serde(default, alias = "runtimeKeyPrefix")]
    pub runtime_key_prefix: String,
    /// Take the random value from this request header when it holds one integer.
    #[serde(default, alias = "headerName")]
    pub header_name: String,
}

/// One branch of [`WeightedClusters`].
#[derive(Debug, Clone, Deserialize)]
pub struct ClusterWeight {
    #[serde(default)]
    pub name: String,
    #[serde(default, alias = "clusterHeader")]
    pub cluster_header: String,
    #[serde(default, deserialize_with = "u32_lenient")]
    pub weight: u32,
    #[serde(default, alias = "hostRewriteLiteral")]
    pub host_rewrite_literal: String,
    #[serde(default, alias = "requestHeadersToAdd")]
    pub request_headers_to_add: Vec<HeaderValueOption>,
    #[serde(default, alias = "requestHeadersToRemove")]
    pub request_headers_to_remove: Vec<String>,
    #[serde(default, alias = "responseHeadersToAdd")]
    pub response_headers_to_add: Vec<HeaderValueOption>,
    #[serde(default, alias = "responseHeadersToRemove")]
    pub response_headers_to_remove: Vec<String>,
}

/// `envoy.config.route.v3.RedirectAction`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RedirectAction {
    #[serde(default, alias = "httpsRedirect", deserialize_with = "bool_lenient")]
    pub https_redirect: bool,
    #[serde(default, alias = "schemeRedirect")]
    pub scheme_redirect: String,
    #[serde(default, alias = "hostRedirect")]
    pub host_redirect: String,
    #[serde(default, alias = "portRedirect", deserialize_with = "u32_lenient")]
    pub port_redirect: u32,
    #[serde(default, alias = "pathRedirect")]
    pub path_redirect: String,
    #[serde(default, alias = "prefixRewrite")]
    pub prefix_rewrite: String,
    #[serde(default, alias = "regexRewrite")]
    pub regex_rewrite: Option<RegexRewrite>,
    /// HTTP status: 301 (default), 302, 303, 307 or 308.
    #[serde(default = "default_redirect_code", alias = "responseCode", deserialize_with = "redirect_code")]
    pub response_code: u16,
    #[serde(default, alias = "stripQuery", deserialize_with = "bool_lenient")]
    pub strip_query: bool,
}

fn default_redirect_code() -> u16 {
    301
}

fn redirect_code<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    const NAMES: &[&str] =
        &["MOVED_PERMANENTLY", "FOUND", "SEE_OTHER", "TEMPORARY_REDIRECT", "PERMANENT_REDIRECT"];
    Ok([301, 302, 303, 307, 308][enum_index(d, "redirect response_code", NAMES)?])
}

/// `envoy.config.route.v3.DirectResponseAction`.
#[derive(Debug, Clone, Deserialize)]
pub struct DirectResponseAction {
    #[serde(deserialize_with = "u32_lenient")]
    pub status: u32,
    #[serde(default)]
    pub body: Option<DataSource>,
}

/// `envoy.config.core.v3.DataSource` (the body of a direct response).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DataSource {
    #[serde(default, alias = "inlineString")]
    pub inline_string: Option<String>,
    /// Base64 in proto JSON; kept as written.
    #[serde(default, alias = "inlineBytes")]
    pub inline_bytes: Option<String>,
    #[serde(default)]
    pub filename: Option<String>,
}

impl DataSource {
    /// The body text when it is known without reading files.
    pub fn inline_text(&self) -> Option<String> {
        if let Some(s) = &self.inline_string {
            return Some(s.clone());
        }
        self.inline_bytes.as_deref().and_then(decode_base64)
    }
}

fn decode_base64(text: &str) -> Option<String> {
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut out = Vec::new();
    for b in text.bytes().filter(|b| !b.is_ascii_whitespace() && *b != b'=') {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(v);
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    String::from_utf8(out).ok()
}
