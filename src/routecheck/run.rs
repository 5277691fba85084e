//! Running test cases the way Envoy's `router_check_tool` does
//! (E:test/tools/router_check/router.cc `compareEntries`, coverage.cc): the same request
//! headers, the same header finalization, the same checks in the same order, the same
//! failure texts and the same coverage arithmetic.

use std::collections::BTreeMap;

use super::coverage::{coverage_percent, missing_tests, CoverFields, CoverKey};
use super::testfile::{TestCase, TestFormat, TestSuite};
use crate::envoy::route::de::format_duration;
use crate::envoy::route::FormatContext;
use crate::envoy::route::{
    finalize_request_headers, finalize_response_headers, redirect_location, rewrite_path, ssl_redirect_uri,
};
use crate::envoy::route::{matched_portion, route, virtual_cluster};
use crate::envoy::route::{Action, RouteConfig, VirtualHost};
use crate::envoy::route::{ClusterTarget, Outcome, Request, RouteDecision, RuntimeMode};
use crate::envoy::route::{HeaderMap, HeaderMatcher, HeaderRule, StringPattern, StructValue};

/// The downstream peer router_check_tool gives every request.
const TOOL_REMOTE_ADDRESS: &str = "127.0.0.1:0";

/// The result of one test case.
#[derive(Debug, Clone)]
pub struct TestResult {
    pub test_name: String,
    pub passed: bool,
    /// Failure lines exactly as router_check_tool prints them.
    pub failures: Vec<String>,
    /// Remarks that do not fail the test (e.g. legacy v1 checks skipped without a route).
    pub notes: Vec<String>,
    /// What the router decided for this test's request.
    pub decision: RouteDecision,
}

/// All results of one test file plus the coverage bookkeeping.
#[derive(Debug, Clone)]
pub struct CheckRun {
    pub results: Vec<TestResult>,
    covered: Vec<(CoverKey, CoverFields)>,
}

impl CheckRun {
    /// True when no test failed.
    pub fn passed(&self) -> bool {
        self.results.iter().all(|r| r.passed)
    }

    /// `Coverage::report` (plain) or `comprehensiveReport` (`--covall`), in percent.
    pub fn coverage_percent(&self, config: &RouteConfig, comprehensive: bool) -> f64 {
        coverage_percent(&self.covered, config, comprehensive)
    }

    /// Routes no test covered, as `(virtual host name, route)` in configuration order, where
    /// route is the match in proto text (`comprehensive`) or the route's unique name.
    pub fn missing_tests(&self, config: &RouteConfig, comprehensive: bool) -> Vec<(String, String)> {
        missing_tests(&self.covered, config, comprehensive)
    }
}

/// Runs every test of `suite` against `config`.
pub fn run_suite(config: &RouteConfig, suite: &TestSuite) -> CheckRun {
    let mut run = CheckRun { results: Vec::new(), covered: Vec::new() };
    for t in &suite.tests {
        let r = run_test(config, t, suite.format, &mut run.covered);
        run.results.push(r);
    }
    run
}

fn request_for(t: &TestCase, legacy: bool) -> Request {
    let scheme = if t.input.ssl { "https" } else { "http" };
    let mut headers = Vec::new();
    if t.input.internal {
        headers.push(("x-envoy-internal".to_string(), "true".to_string()));
    }
    for h in &t.input.additional_request_headers {
        headers.push((h.key.clone(), h.value.clone()));
    }
    let mut dynamic_metadata: BTreeMap<String, StructValue> = BTreeMap::new();
    for m in &t.input.dynamic_metadata {
        let Some(v) = &m.value else { continue };
        match dynamic_metadata.get_mut(&m.metadata_namespace) {
            None => {
                dynamic_metadata.insert(m.metadata_namespace.clone(), v.clone());
            }
            Some(existing) if m.allow_overwrite => existing.merge(v),
            Some(_) => {}
        }
    }
    Request {
        authority: t.input.authority.clone(),
        path: t.input.path.clone(),
        method: t.input.method.clone(),
        headers,
        scheme: scheme.to_string(),
        forwarded_proto: None,
        random_value: Some(t.input.random_value),
        runtime: RuntimeMode::RouterCheckTool {
            enabled_key: (!legacy && !t.input.runtime.is_empty()).then(|| t.input.runtime.clone()),
        },
        dynamic_metadata,
    }
}

struct Ctx<'a> {
    failures: Vec<String>,
    covered: &'a mut Vec<(CoverKey, CoverFields)>,
    key: Option<CoverKey>,
}

impl Ctx<'_> {
    fn compare(&mut self, actual: &str, expected: &str, test_type: &str) -> bool {
        if actual == expected {
            return true;
        }
        self.failures.push(format!("expected: [{expected}], actual: [{actual}], test type: {test_type}"));
        false
    }

    fn mark(&mut self, set: impl FnOnce(&mut CoverFields)) {
        let Some(key) = self.key else { return };
        match self.covered.iter_mut().find(|(k, _)| *k == key) {
            Some((_, f)) => set(f),
            None => {
                let mut f = CoverFields::default();
                set(&mut f);
                self.covered.push((key, f));
            }
        }
    }
}

fn run_test(
    config: &RouteConfig,
    t: &TestCase,
    format: TestFormat,
    covered: &mut Vec<(CoverKey, CoverFields)>,
) -> TestResult {
    let legacy = format == TestFormat::LegacyV1;
    let req = request_for(t, legacy);
    let decision = route(config, &req);
    let vh: Option<(usize, &VirtualHost)> =
        decision.virtual_host.as_ref().and_then(|s| config.virtual_hosts.get(s.index).map(|v| (s.index, v)));
    let route_obj = vh.and_then(|(_, v)| decision.route.as_ref().and_then(|r| v.routes.get(r.index)));

    // finalizeHeaders: once, before any check.
    let mut request_headers = req.header_map();
    let mut response_headers = HeaderMap::default();
    for h in &t.input.additional_response_headers {
        response_headers.add(&h.key, &h.value);
    }
    let ctx = FormatContext {
        downstream_remote_address: TOOL_REMOTE_ADDRESS.to_string(),
        request_headers: request_headers.clone(),
    };
    let mut entry = false; // routeEntry() != nullptr
    let mut direct: Option<(u32, Option<String>)> = None; // directResponseEntry(): code, location
    let mut key = None;
    match (&decision.outcome, vh, route_obj) {
        (Outcome::Forward { target, .. }, Some((vi, v)), Some(r)) => {
            entry = true;
            let branch = match target {
                ClusterTarget::Weighted { selected, .. } => *selected,
                _ => None,
            };
            key = Some(CoverKey::Entry {
                vh: vi,
                route: decision.route.as_ref().map_or(0, |s| s.index),
                branch,
            });
            if let Action::Route(a) = &r.action {
                let b = branch.and_then(|i| a.weighted_clusters.as_ref()?.clusters.get(i));
                finalize_request_headers(config, v, r, a, b, &mut request_headers, &ctx);
            }
            finalize_response_headers(config, v, r, &mut response_headers, &ctx);
        }
        (Outcome::Redirect { require_tls: true, .. }, Some((vi, _)), _) => {
            key = Some(CoverKey::Direct { vh: vi, route: None });
            direct = Some((301, Some(ssl_redirect_uri(&request_headers))));
            local_reply(&mut response_headers, 301, "");
        }
        (Outcome::Redirect { status, .. }, Some((vi, v)), Some(r)) => {
            if let Action::Redirect(rd) = &r.action {
                let path = request_headers.get(":path").unwrap_or("").to_string();
                let matched = matched_portion(r, &path);
                if let Some(p) = rewrite_path(&path, &matched, &rd.prefix_rewrite, rd.regex_rewrite.as_ref())
                {
                    request_headers.set(":path", &p);
                }
                direct = Some((u32::from(*status), Some(redirect_location(Some(rd), &request_headers))));
            }
            key = Some(CoverKey::Direct { vh: vi, route: decision.route.as_ref().map(|s| s.index) });
            local_reply(&mut response_headers, u32::from(*status), "");
            finalize_response_headers(config, v, r, &mut response_headers, &ctx);
        }
        (Outcome::DirectResponse { status, body }, Some((vi, v)), Some(r)) => {
            direct = Some((*status, Some(redirect_location(None, &request_headers))));
            key = Some(CoverKey::Direct { vh: vi, route: decision.route.as_ref().map(|s| s.index) });
            local_reply(&mut response_headers, *status, body.as_deref().unwrap_or(""));
            finalize_response_headers(config, v, r, &mut response_headers, &ctx);
        }
        _ => {}
    }

    let mut c = Ctx { failures: Vec::new(), covered, key };
    let mut notes = Vec::new();
    let has_route = entry || direct.is_some();
    if legacy && !has_route {
        notes.push("no route matched; the v1 router_check_tool does not count mismatches then".into());
        return TestResult {
            test_name: t.test_name.clone(),
            passed: true,
            failures: Vec::new(),
            notes,
            decision,
        };
    }
    let e = &t.validate;
    let mut ok = true;
    if let Some(exp) = &e.cluster_name {
        let actual = if entry { decision.cluster_name().unwrap_or("") } else { "" };
        if c.compare(actual, exp, "cluster_name") {
            if entry {
                c.mark(|f| f.cluster = true);
            }
        } else {
            ok = false;
        }
    }
    if let Some(exp) = &e.virtual_cluster_name {
        let actual = match vh {
            Some((_, v)) if entry => virtual_cluster(v, &request_headers).unwrap_or(""),
            _ => "",
        };
        if c.compare(actual, exp, "virtual_cluster_name") {
            if entry {
                c.mark(|f| f.virtual_cluster = true);
            }
        } else {
            ok = false;
        }
    }
    if let Some(exp) = &e.virtual_host_name {
        let actual = match vh {
            Some((_, v)) if entry => v.name.as_str(),
            _ => "",
        };
        if c.compare(actual, exp, "virtual_host_name") {
            if entry {
                c.mark(|f| f.virtual_host = true);
            }
        } else {
            ok = false;
        }
    }
    if let Some(exp) = &e.path_rewrite {
        let actual = if entry { request_headers.get(":path").unwrap_or("") } else { "" };
        if c.compare(actual, exp, "path_rewrite") {
            if entry {
                c.mark(|f| f.path_rewrite = true);
            }
        } else {
            ok = false;
        }
    }
    if let Some(exp) = &e.host_rewrite {
        let actual = if entry { request_headers.get(":authority").unwrap_or("") } else { "" };
        if c.compare(actual, exp, "host_rewrite") {
            if entry {
                c.mark(|f| f.host_rewrite = true);
            }
        } else {
            ok = false;
        }
    }
    if let Some(exp) = &e.path_redirect {
        let actual = direct.as_ref().and_then(|d| d.1.clone()).unwrap_or_default();
        if c.compare(&actual, exp, "path_redirect") {
            if direct.is_some() {
                c.mark(|f| f.redirect_path = true);
            }
        } else {
            ok = false;
        }
    }
    if let Some(exp) = e.code_redirect {
        let actual = direct.as_ref().map_or(0, |d| d.0);
        if c.compare(&actual.to_string(), &exp.to_string(), "code_redirect") {
            if direct.is_some() {
                c.mark(|f| f.redirect_code = true);
            }
        } else {
            ok = false;
        }
    }
    for (matchers, map, what) in [
        (&e.request_header_matches, &request_headers, "request_header_matches"),
        (&e.response_header_matches, &response_headers, "response_header_matches"),
    ] {
        for m in matchers {
            if !m.matches(map) {
                ok = false;
                c.failures.push(header_failure(m, map, what));
            }
        }
    }
    for (fields, map, what) in [
        (&e.request_header_fields, &request_headers, "request_header_fields"),
        (&e.response_header_fields, &response_headers, "response_header_fields"),
        (&e.header_fields, &request_headers, "check_header"),
        (&e.custom_header_fields, &request_headers, "custom_header"),
    ] {
        for kv in fields {
            let actual = map.get(&kv.key).unwrap_or("");
            ok &= c.compare(actual, &kv.value, what);
        }
    }
    if let Some(exp) = &e.timeout {
        let actual = match &decision.outcome {
            Outcome::Forward { timeout_nanos, .. } if entry => format_duration(*timeout_nanos),
            _ => String::new(),
        };
        ok &= c.compare(&actual, exp, "timeout");
    }
    for rm in &e.route_metadata {
        let actual = route_obj
            .filter(|_| has_route)
            .and_then(|r| r.metadata.filter_metadata.get(&rm.namespace))
            .and_then(|ns| ns.get(&rm.key))
            .map(metadata_text)
            .unwrap_or_default();
        ok &= c.compare(&actual, &rm.value, "route_metadata");
    }
    TestResult { test_name: t.test_name.clone(), passed: ok, failures: c.failures, notes, decision }
}

fn metadata_text(v: &StructValue) -> String {
    match v {
        StructValue::String(s) => s.clone(),
        StructValue::Bool(b) => b.to_string(),
        StructValue::Number(n) => format!("{n}"),
        StructValue::Null => "null".into(),
        other => format!("{other:?}"),
    }
}

/// `Http::Utility::sendLocalReply` headers for a body-only reply.
fn local_reply(headers: &mut HeaderMap, status: u32, body: &str) {
    headers.add(":status", &status.to_string());
    if !body.is_empty() {
        headers.add("content-length", &body.len().to_string());
        headers.add("content-type", "text/plain");
    }
}

/// `RouterCheckTool::matchHeaderField`'s failure text.
fn header_failure(m: &HeaderMatcher, map: &HeaderMap, test_type: &str) -> String {
    let kind = format!("{test_type}.{}", m.kind());
    let value = map.get(&m.name).unwrap_or("NULL");
    match &m.rule {
        HeaderRule::Present(_) => {
            let actual = if m.invert_match { "true" } else { "false" };
            let expected = if m.invert_match { "false" } else { "true" };
            format!(
                "expected: [has({n}):{expected}], actual: [has({n}):{actual}], test type: {kind}",
                n = m.name
            )
        }
        HeaderRule::StringMatch(sm) => match &sm.pattern {
            StringPattern::Exact(x) => format!(
                "expected: [{n}: {x}], actual: {not}[{n}: {value}], test type: {kind}",
                n = m.name,
                not = if m.invert_match { "NOT " } else { "" }
            ),
            _ => format!("actual: [{}: {value}], test type: {kind}", m.name),
        },
        _ => format!("actual: [{}: {value}], test type: {kind}", m.name),
    }
}

/// C++ `std::ostream << double` with the default precision (`%g`, 6 significant digits), as
/// the tool prints coverage.
pub fn format_g6(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x == 0.0 {
        return "0".into();
    }
    let sci = format!("{x:.5e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if !(-5..6).contains(&exp) {
        let m = trim(mant.to_string());
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{m}e{sign}{:02}", exp.abs());
    }
    let decimals = (5 - exp).max(0) as usize;
    trim(format!("{x:.decimals$}"))
}

#[cfg(test)]
mod tests {
    use super::format_g6;

    #[test]
    fn coverage_numbers_print_like_cpp() {
        assert_eq!(format_g6(100.0), "100");
        assert_eq!(format_g6(100.0 / 3.0), "33.3333");
        assert_eq!(format_g6(85.714_285_7), "85.7143");
        assert_eq!(format_g6(1.0), "1");
        assert_eq!(format_g6(12.5), "12.5");
    }
}
