//! A drop-in for Envoy's `router_check_tool`: load a route table and a test file, run every
//! test, report failures in the tool's words and compute its coverage figures.

mod coverage;
mod pbtext;
mod run;
mod testfile;

pub use coverage::unique_route_name;
pub use run::{format_g6, run_suite, CheckRun, TestResult};
pub use testfile::{
    parse_test_file, DynamicMetadataInput, Expectations, KeyValue, RouteMetadataExpectation,
    TestCase, TestFormat, TestInput, TestSuite,
};

use super::legacy;
use super::RouteConfig;

/// Top-level fields of `envoy.config.route.v3.RouteConfiguration` (snake and camel case).
const ROUTE_CONFIGURATION_FIELDS: &[&str] = &[
    "@type",
    "name",
    "virtual_hosts",
    "vhds",
    "internal_only_headers",
    "response_headers_to_add",
    "response_headers_to_remove",
    "request_headers_to_add",
    "request_headers_to_remove",
    "most_specific_header_mutations_wins",
    "validate_clusters",
    "max_direct_response_body_size_bytes",
    "cluster_specifier_plugins",
    "request_mirror_policies",
    "ignore_port_in_host_matching",
    "ignore_path_parameters_in_path_matching",
    "typed_per_filter_config",
    "metadata",
    "vhost_header",
    "virtualHosts",
    "internalOnlyHeaders",
    "responseHeadersToAdd",
    "responseHeadersToRemove",
    "requestHeadersToAdd",
    "requestHeadersToRemove",
    "mostSpecificHeaderMutationsWins",
    "validateClusters",
    "maxDirectResponseBodySizeBytes",
    "clusterSpecifierPlugins",
    "requestMirrorPolicies",
    "ignorePortInHostMatching",
    "ignorePathParametersInPathMatching",
    "typedPerFilterConfig",
    "vhostHeader",
];

/// Which form a route configuration file had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigFormat {
    V3Json,
    V3Yaml,
    LegacyV1Json,
}

/// Loads a route table as router_check_tool does: YAML (by `.yaml`/`.yml` name) or JSON, v3
/// or the legacy v1 JSON, rejecting unknown top-level fields the way the tool's strict proto
/// loader does (`INVALID_ARGUMENT ... no such field`).
pub fn load_route_config(text: &str, name: &str) -> Result<(RouteConfig, ConfigFormat), String> {
    let lower = name.to_ascii_lowercase();
    let yaml = lower.ends_with(".yaml") || lower.ends_with(".yml");
    let value: serde_json::Value = if yaml {
        serde_saphyr::from_str(text).map_err(|e| format!("{name}: {e}"))?
    } else {
        serde_json::from_str(&super::strip_trailing_commas(text))
            .map_err(|e| format!("{name}: line {} column {}: {e}", e.line(), e.column()))?
    };
    let Some(obj) = value.as_object() else {
        return Err(format!(
            "{name}: Unable to parse JSON as proto (INVALID_ARGUMENT: \
             envoy.config.route.v3.RouteConfiguration must be an object)"
        ));
    };
    if !yaml && legacy::looks_like_v1(&value) {
        let cfg = legacy::from_v1_json(text, name).map_err(|e| e.to_string())?;
        return Ok((cfg, ConfigFormat::LegacyV1Json));
    }
    if let Some(bad) = obj
        .keys()
        .find(|k| !ROUTE_CONFIGURATION_FIELDS.contains(&k.as_str()))
    {
        return Err(format!(
            "{name}: Unable to parse JSON as proto (INVALID_ARGUMENT: invalid JSON in \
             envoy.config.route.v3.RouteConfiguration @ {bad}: no such field: '{bad}')"
        ));
    }
    let cfg = if yaml {
        RouteConfig::from_yaml_str(text, name)
    } else {
        RouteConfig::from_json_str(text, name)
    }
    .map_err(|e| e.to_string())?;
    let fmt = if yaml {
        ConfigFormat::V3Yaml
    } else {
        ConfigFormat::V3Json
    };
    Ok((cfg, fmt))
}
