//! `meshpath route-check` output, as Envoy's `router_check_tool` prints it: passing test names
//! on standard output and failures on standard error (with `--details` or
//! `--only-show-failures`), the uncovered routes and the coverage line.

use std::fmt::Write as _;

use crate::envoy::route::RouteConfig;
use crate::routecheck::{format_g6, CheckRun};

/// What to print (the tool's flags).
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub details: bool,
    pub only_show_failures: bool,
    pub why: bool,
    pub covall: bool,
    pub detailed_coverage: bool,
    /// Fail below this coverage (percent); 0 never fails.
    pub fail_under: Option<f64>,
}

/// The two streams, and whether the run passed (every test, and the coverage asked for).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub stdout: String,
    pub stderr: String,
    pub passed: bool,
}

pub fn report(config_name: &str, config: &RouteConfig, run: &CheckRun, o: Options) -> Report {
    let mut r = Report::default();
    for note in &config.unsupported {
        let _ = writeln!(r.stderr, "note: {config_name}: {note}");
    }
    for t in &run.results {
        let show = (o.details && !o.only_show_failures) || (o.only_show_failures && !t.failures.is_empty());
        if !show {
            continue;
        }
        if t.failures.is_empty() {
            let _ = writeln!(r.stdout, "{}", t.test_name);
            continue;
        }
        let _ = writeln!(r.stderr, "{}", t.test_name);
        for f in &t.failures {
            let _ = writeln!(r.stderr, "{f}");
        }
        if o.why {
            for c in &t.decision.considered {
                let verdict = if c.matched { "chosen" } else { "skipped" };
                let source = if c.source.is_empty() { "route table" } else { c.source.as_str() };
                let _ = writeln!(r.stderr, "  why: {source} {:?} {verdict}: {}", c.name, c.detail);
            }
        }
    }
    if !run.passed() {
        return r;
    }
    if o.detailed_coverage && !o.covall {
        for (host, name) in run.missing_tests(config, false) {
            let _ = writeln!(r.stdout, "Missing test for host: {host}, route name: {name}");
        }
    }
    if o.covall {
        for (host, text) in run.missing_tests(config, true) {
            let _ = writeln!(r.stdout, "Missing test for host: {host}, route: {text}");
        }
    }
    let coverage = run.coverage_percent(config, o.covall);
    let _ = writeln!(r.stdout, "Current route coverage: {}%", format_g6(coverage));
    if let Some(min) = o.fail_under.filter(|m| *m != 0.0) {
        if coverage < min || coverage.is_nan() {
            let _ = writeln!(r.stderr, "Failed to meet coverage requirement: {}%", format_g6(min));
            return r;
        }
    }
    r.passed = true;
    r
}
