//! router_check_tool test files: `envoy.RouterCheckToolSchema.Validation` as proto JSON,
//! YAML or proto text, and the legacy v1 array of `{test_name, input, validate}`.
//!
//! Unknown fields are errors here, as they are for the original tool (a misspelt assertion
//! must not pass silently).

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use super::{pbtext, InputError};
use crate::envoy::route::de::{bool_lenient, u32_lenient, u64_lenient};
use crate::envoy::route::strip_trailing_commas;
use crate::envoy::route::{HeaderMatcher, StructValue};

/// Which form a test file had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestFormat {
    ProtoJson,
    ProtoYaml,
    ProtoText,
    /// The 2018 v1 array (`":authority"` inputs, `header_fields` assertions).
    LegacyV1,
}

/// A whole test file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestSuite {
    pub tests: Vec<TestCase>,
    /// Runtime overrides for the whole file (newer schema); accepted and not evaluated.
    #[serde(default)]
    pub runtime: Option<StructValue>,
    #[serde(skip, default = "default_format")]
    pub format: TestFormat,
}

fn default_format() -> TestFormat {
    TestFormat::ProtoJson
}

/// One `tests[]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    #[serde(alias = "testName")]
    pub test_name: String,
    pub input: TestInput,
    pub validate: Expectations,
}

/// `ValidationInput`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestInput {
    #[serde(default)]
    pub authority: String,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub method: String,
    #[serde(default, alias = "randomValue", deserialize_with = "u64_lenient")]
    pub random_value: u64,
    #[serde(default, deserialize_with = "bool_lenient")]
    pub ssl: bool,
    #[serde(default, deserialize_with = "bool_lenient")]
    pub internal: bool,
    #[serde(default, alias = "additionalRequestHeaders")]
    pub additional_request_headers: Vec<KeyValue>,
    #[serde(default, alias = "additionalResponseHeaders")]
    pub additional_response_headers: Vec<KeyValue>,
    #[serde(default, alias = "dynamicMetadata")]
    pub dynamic_metadata: Vec<DynamicMetadataInput>,
    #[serde(default)]
    pub runtime: String,
}

/// `envoy.config.core.v3.HeaderValue` as written in test files.
#[derive(Debug, Clone, Deserialize)]
pub struct KeyValue {
    #[serde(alias = "field")]
    pub key: String,
    #[serde(default)]
    pub value: String,
}

/// `set_metadata.v3.Metadata` in a test input.
#[derive(Debug, Clone, Deserialize)]
pub struct DynamicMetadataInput {
    #[serde(alias = "metadataNamespace")]
    pub metadata_namespace: String,
    #[serde(default)]
    pub value: Option<StructValue>,
    #[serde(default, alias = "typedValue")]
    pub typed_value: Option<IgnoredAny>,
    #[serde(default, alias = "allowOverwrite", deserialize_with = "bool_lenient")]
    pub allow_overwrite: bool,
}

/// `ValidationAssert`: every field is optional; an empty string is an assertion too.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    #[serde(default, alias = "clusterName", deserialize_with = "wrapped_string")]
    pub cluster_name: Option<String>,
    #[serde(default, alias = "virtualClusterName", deserialize_with = "wrapped_string")]
    pub virtual_cluster_name: Option<String>,
    #[serde(default, alias = "virtualHostName", deserialize_with = "wrapped_string")]
    pub virtual_host_name: Option<String>,
    #[serde(default, alias = "hostRewrite", deserialize_with = "wrapped_string")]
    pub host_rewrite: Option<String>,
    #[serde(default, alias = "pathRewrite", deserialize_with = "wrapped_string")]
    pub path_rewrite: Option<String>,
    #[serde(default, alias = "pathRedirect", deserialize_with = "wrapped_string")]
    pub path_redirect: Option<String>,
    #[serde(default, alias = "codeRedirect", deserialize_with = "wrapped_u32")]
    pub code_redirect: Option<u32>,
    #[serde(default, alias = "requestHeaderFields")]
    pub request_header_fields: Vec<KeyValue>,
    #[serde(default, alias = "responseHeaderFields")]
    pub response_header_fields: Vec<KeyValue>,
    #[serde(default, alias = "requestHeaderMatches")]
    pub request_header_matches: Vec<HeaderMatcher>,
    #[serde(default, alias = "responseHeaderMatches")]
    pub response_header_matches: Vec<HeaderMatcher>,
    /// Newer schema: the route timeout as proto JSON duration text (`"120s"`).
    #[serde(default, deserialize_with = "wrapped_string")]
    pub timeout: Option<String>,
    /// Newer schema: `filter_metadata[namespace][key]` of the route.
    #[serde(default, alias = "routeMetadata")]
    pub route_metadata: Vec<RouteMetadataExpectation>,
    /// Legacy v1: request headers after the route's changes.
    #[serde(default)]
    pub header_fields: Vec<KeyValue>,
    /// Legacy v1: request headers after `request_headers_to_add` with formatters.
    #[serde(default)]
    pub custom_header_fields: Vec<KeyValue>,
}

/// One `route_metadata` assertion.
#[derive(Debug, Clone, Deserialize)]
pub struct RouteMetadataExpectation {
    pub namespace: String,
    pub key: String,
    #[serde(default)]
    pub value: String,
}

/// A `google.protobuf.StringValue`: a bare string or `{value: "..."}`.
fn wrapped_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string or {value: string}")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = String::new();
            while let Some(k) = map.next_key::<String>()? {
                if k == "value" {
                    out = map.next_value()?;
                } else {
                    return Err(de::Error::unknown_field(&k, &["value"]));
                }
            }
            Ok(Some(out))
        }
    }
    d.deserialize_any(V)
}

fn wrapped_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    u32_lenient(d).map(Some)
}

/// Legacy v1 test entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyCase {
    #[serde(default)]
    test_name: String,
    input: LegacyInput,
    validate: Expectations,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyInput {
    #[serde(rename = ":authority", default)]
    authority: String,
    #[serde(rename = ":path", default)]
    path: String,
    #[serde(rename = ":method", default)]
    method: Option<String>,
    #[serde(default, deserialize_with = "u64_lenient")]
    random_value: u64,
    #[serde(default, deserialize_with = "bool_lenient")]
    ssl: bool,
    #[serde(default, deserialize_with = "bool_lenient")]
    internal: bool,
    #[serde(default)]
    additional_headers: Vec<KeyValue>,
}

/// Reads a test file; `name` (its file name) selects the form: `.pb_text`/`.pbtxt` is proto
/// text, `.yaml`/`.yml` YAML, otherwise JSON (a top-level array is the legacy v1 form).
pub fn parse_test_file(text: &str, name: &str) -> Result<TestSuite, InputError> {
    let lower = name.to_ascii_lowercase();
    let mut suite: TestSuite =
        if lower.ends_with(".pb_text") || lower.ends_with(".pbtxt") || lower.ends_with(".textproto") {
            let v = pbtext::parse(text).map_err(|(m, l, c)| InputError::at(name, m, l, c))?;
            let mut s: TestSuite =
                serde_json::from_value(v).map_err(|e| InputError::new(name, e.to_string()))?;
            s.format = TestFormat::ProtoText;
            s
        } else if lower.ends_with(".yaml") || lower.ends_with(".yml") {
            let mut s: TestSuite =
                serde_saphyr::from_str_with_options(text, crate::util::yaml::options_for(text))
                    .map_err(|e| InputError::yaml(name, &e))?;
            s.format = TestFormat::ProtoYaml;
            s
        } else {
            let cleaned = strip_trailing_commas(text);
            if cleaned.trim_start().starts_with('[') {
                let cases: Vec<LegacyCase> =
                    serde_json::from_str(&cleaned).map_err(|e| InputError::json(name, &e))?;
                TestSuite {
                    tests: cases.into_iter().map(from_legacy).collect(),
                    runtime: None,
                    format: TestFormat::LegacyV1,
                }
            } else {
                serde_json::from_str(&cleaned).map_err(|e| InputError::json(name, &e))?
            }
        };
    if suite.format != TestFormat::LegacyV1 {
        validate_suite(&suite).map_err(|e| InputError::new(name, e))?;
    }
    if suite.tests.is_empty() {
        return Err(InputError::new(name, "the test file has no tests"));
    }
    suite.tests.shrink_to_fit();
    Ok(suite)
}

fn from_legacy(c: LegacyCase) -> TestCase {
    TestCase {
        test_name: c.test_name,
        input: TestInput {
            authority: c.input.authority,
            path: c.input.path,
            method: c.input.method.unwrap_or_else(|| "GET".to_string()),
            random_value: c.input.random_value,
            ssl: c.input.ssl,
            internal: c.input.internal,
            additional_request_headers: c.input.additional_headers,
            ..TestInput::default()
        },
        validate: c.validate,
    }
}

/// The `validate` rules of validation.proto (`TestUtility::validate`).
fn validate_suite(s: &TestSuite) -> Result<(), String> {
    for (i, t) in s.tests.iter().enumerate() {
        let at = |f: &str| format!("tests[{i}] ({:?}): {f}", t.test_name);
        if t.test_name.is_empty() {
            return Err(at("test_name must not be empty"));
        }
        if t.input.authority.is_empty() {
            return Err(at("input.authority must not be empty"));
        }
        if t.input.path.is_empty() {
            return Err(at("input.path must not be empty"));
        }
        if t.input.method.chars().count() < 3 {
            return Err(at("input.method must be at least 3 characters"));
        }
    }
    Ok(())
}
