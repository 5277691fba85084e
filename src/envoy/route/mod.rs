//! Envoy HTTP routing: the RouteConfiguration model and Envoy's route matching.
//!
//! * [`RouteConfig`] deserializes from proto3 JSON or YAML (v3 and v2 field names, snake_case
//!   or camelCase) with serde_json or serde-saphyr, including as a field of a larger document;
//!   [`legacy::from_v1_json`] converts the 2018 Envoy v1 route JSON into the same model.
//! * [`route`] picks the virtual host, the route and the action for a [`Request`] exactly as
//!   Envoy does (source/common/router/config_impl.cc) and returns a [`RouteDecision`] that also lists what
//!   was considered.
//! * [`crate::routecheck`] runs Envoy `router_check_tool` test files against a route table.
//!
//! ```
//! use meshpath::envoy::route::{route, Outcome, Request, RouteConfig};
//! let cfg: RouteConfig = serde_json::from_str(r#"{"virtual_hosts": [{"name": "web",
//!     "domains": ["*.example.com"], "routes": [{"match": {"prefix": "/"},
//!     "route": {"cluster": "web"}}]}]}"#).unwrap();
//! let d = route(&cfg, &Request::new("www.example.com", "/index.html"));
//! assert_eq!(d.cluster_name(), Some("web"));
//! assert!(matches!(d.outcome, Outcome::Forward { .. }));
//! ```

mod config;
mod config_de;
pub mod de;
mod decision;
mod finalize;
mod header_map;
mod headers;
pub mod legacy;
mod matchers;
mod matching;
mod metadata;
mod re2;

#[cfg(test)]
mod tests;

pub use config::{
    Action, ClusterWeight, DataSource, DirectResponseAction, PathSpecifier, RedirectAction, RegexRewrite,
    RequireTls, RetryPolicy, Route, RouteAction, RouteConfig, RouteMatch, VirtualCluster, VirtualHost,
    WeightedClusters, DEFAULT_ROUTE_TIMEOUT_NANOS,
};
pub use decision::{
    Candidate, ClusterTarget, Outcome, Request, ResponseFlag, RouteDecision, RuntimeMode, Selected,
    WeightedBranch,
};
pub use finalize::{
    finalize_request_headers, finalize_response_headers, redirect_location, redirect_uri, rewrite_path,
    ssl_redirect_uri,
};
pub use header_map::HeaderMap;
pub use headers::{AppendAction, FormatContext, HeaderValue, HeaderValueOption};
pub use matchers::{
    FractionalPercent, HeaderMatcher, HeaderRule, QueryParameterMatcher, RegexMatcher, RuntimeFraction,
    StringMatcher, StringPattern,
};
pub(crate) use matching::matched_portion;
pub use matching::{route, virtual_cluster};
pub use metadata::{Metadata, MetadataMatcher, MetadataPathSegment, StructValue, ValueMatcher};
pub use re2::Re2;

/// Errors reading a route configuration.
#[derive(Debug, thiserror::Error)]
pub enum RouteConfigError {
    /// JSON syntax or shape error, with line and column.
    #[error("{what}: {message} (line {line}, column {column})")]
    Json { what: String, message: String, line: usize, column: usize },
    /// YAML syntax or shape error, with line and column when known.
    #[error("{what}: {message}")]
    Yaml { what: String, message: String, line: Option<usize>, column: Option<usize> },
    /// A legacy v1 construct that has no equivalent here.
    #[error("{what}: {message}")]
    Legacy { what: String, message: String },
}

impl RouteConfigError {
    /// Line and column (1-based) of the error in the input, when known.
    pub fn location(&self) -> Option<(usize, usize)> {
        match self {
            RouteConfigError::Json { line, column, .. } => Some((*line, *column)),
            RouteConfigError::Yaml { line, column, .. } => line.zip(*column),
            RouteConfigError::Legacy { .. } => None,
        }
    }
}

impl RouteConfig {
    /// Reads a RouteConfiguration from JSON text (a trailing comma before `]`/`}` is
    /// accepted, as Envoy's loader does). `what` names the input in errors.
    pub fn from_json_str(text: &str, what: &str) -> Result<RouteConfig, RouteConfigError> {
        // Valid JSON has no trailing comma to blank: read it as it is (a big sidecar's route
        // tables are tens of megabytes), and only text that fails is cleaned and read again.
        if let Ok(config) = serde_json::from_str(text) {
            return Ok(config);
        }
        let cleaned = strip_trailing_commas(text);
        serde_json::from_str(&cleaned).map_err(|e| RouteConfigError::Json {
            what: what.to_string(),
            message: e.to_string(),
            line: e.line(),
            column: e.column(),
        })
    }

    /// Reads a RouteConfiguration from YAML text.
    pub fn from_yaml_str(text: &str, what: &str) -> Result<RouteConfig, RouteConfigError> {
        serde_saphyr::from_str_with_options(text, crate::util::yaml::options_for(text)).map_err(|e| {
            use serde_saphyr::MessageFormatter as _;
            let loc = e.location();
            RouteConfigError::Yaml {
                what: what.to_string(),
                // The bare message; line and column are fields of their own.
                message: serde_saphyr::DefaultMessageFormatter
                    .format_message(e.without_snippet())
                    .into_owned(),
                line: loc.map(|l| l.line() as usize),
                column: loc.map(|l| l.column() as usize),
            }
        })
    }
}

/// Replaces a comma that directly precedes `]` or `}` (outside strings) with a space, so
/// positions in error messages stay correct (Envoy's loader accepts such commas).
pub fn strip_trailing_commas(text: &str) -> String {
    let out = crate::envoy::parse::blank_trailing_commas(text.as_bytes());
    String::from_utf8(out).unwrap_or_else(|_| text.to_string())
}
