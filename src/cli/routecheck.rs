//! `meshpath route-check`: a drop-in for Envoy's `router_check_tool`.
//!
//! Same inputs, same per-test output (`--details`, `--only-show-failures`), same coverage
//! line and `--fail-under`/`--covall` arithmetic. Exit codes: 0 all tests pass (and coverage
//! is met); 1 a test failed or coverage is below `--fail-under`; 2 an input could not be read.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use meshpath::routecheck::{
    format_g6, load_route_config_for_listener, parse_test_file, run_suite, InputError,
};

#[derive(Debug, Args)]
pub struct RouteCheckArgs {
    /// Route configuration (RouteConfiguration YAML/JSON, or Envoy v1 route JSON).
    #[arg(long = "config", short = 'c', visible_alias = "config-path", value_name = "ROUTES")]
    pub config: PathBuf,
    /// Test file (`.golden.proto.json`, `.yaml`, `.pb_text`, or the v1 `.golden.json` array).
    #[arg(long = "tests", short = 't', visible_alias = "test-path", value_name = "TESTS")]
    pub tests: PathBuf,
    /// With a Bootstrap as --config: the static listener whose HTTP connection manager holds
    /// the inline route_config to check.
    #[arg(long, short = 'l', value_name = "NAME")]
    pub listener: Option<String>,
    /// Print every test name (passing ones to stdout, failing ones and their failures to
    /// stderr).
    #[arg(long, short = 'd')]
    pub details: bool,
    /// Print only failing tests and their failures.
    #[arg(long)]
    pub only_show_failures: bool,
    /// Measure coverage over every checked field of each route (comprehensive coverage).
    #[arg(long)]
    pub covall: bool,
    /// Fail if route coverage (percent) is below this value.
    #[arg(long, short = 'f', value_name = "PCT")]
    pub fail_under: Option<f64>,
    /// List routes no test covered, by unique route name.
    #[arg(long)]
    pub detailed_coverage: bool,
    /// After a failing test, also print what the router considered (virtual host and each
    /// route tried, with the first criterion that failed).
    #[arg(long)]
    pub why: bool,
    /// Accepted for compatibility; deprecated fields are never rejected here.
    #[arg(long)]
    pub disable_deprecation_check: bool,
}

/// An unreadable input, shown with the offending snippet when the location is known.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{message}")]
struct InputDiagnostic {
    message: String,
    #[source_code]
    src: miette::NamedSource<String>,
    #[label("here")]
    span: Option<miette::SourceSpan>,
}

fn diagnose(e: InputError, text: &str) -> miette::Report {
    let span = e.line.zip(e.column).map(|(line, col)| {
        let start: usize = text.split_inclusive('\n').take(line.saturating_sub(1)).map(str::len).sum();
        let line_len = text.get(start..).and_then(|rest| rest.split('\n').next()).map_or(0, str::len);
        let offset = start + col.saturating_sub(1).min(line_len);
        miette::SourceSpan::from((offset.min(text.len()), 1usize.min(text.len() - offset.min(text.len()))))
    });
    miette::Report::new(InputDiagnostic {
        message: e.to_string(),
        src: miette::NamedSource::new(e.file.clone(), text.to_string()),
        span,
    })
}

fn read(path: &PathBuf) -> miette::Result<String> {
    std::fs::read_to_string(path).map_err(|e| miette::miette!("cannot read {}: {e}", path.display()))
}

pub fn run(args: RouteCheckArgs) -> miette::Result<ExitCode> {
    let config_name = args.config.display().to_string();
    let tests_name = args.tests.display().to_string();
    let config_text = read(&args.config)?;
    let (config, _) = load_route_config_for_listener(&config_text, &config_name, args.listener.as_deref())
        .map_err(|e| diagnose(e, &config_text))?;
    let tests_text = read(&args.tests)?;
    let suite = parse_test_file(&tests_text, &tests_name).map_err(|e| diagnose(e, &tests_text))?;
    let run = run_suite(&config, &suite);

    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let mut out = stdout.lock();
    let mut err = stderr.lock();
    for note in &config.unsupported {
        let _ = writeln!(err, "note: {config_name}: {note}");
    }
    for r in &run.results {
        let show =
            (args.details && !args.only_show_failures) || (args.only_show_failures && !r.failures.is_empty());
        if !show {
            continue;
        }
        if r.failures.is_empty() {
            writeln!(out, "{}", r.test_name).map_err(super::output::stdout_error)?;
        } else {
            let _ = writeln!(err, "{}", r.test_name);
            for f in &r.failures {
                let _ = writeln!(err, "{f}");
            }
            if args.why {
                for c in &r.decision.considered {
                    let verdict = if c.matched { "chosen" } else { "skipped" };
                    let _ = writeln!(
                        err,
                        "  why: {} {:?} {verdict}: {}",
                        if c.source.is_empty() { "route table" } else { c.source.as_str() },
                        c.name,
                        c.detail
                    );
                }
            }
        }
    }
    if !run.passed() {
        return Ok(ExitCode::from(1));
    }
    if args.detailed_coverage && !args.covall {
        for (host, name) in run.missing_tests(&config, false) {
            writeln!(out, "Missing test for host: {host}, route name: {name}")
                .map_err(super::output::stdout_error)?;
        }
    }
    if args.covall {
        for (host, text) in run.missing_tests(&config, true) {
            writeln!(out, "Missing test for host: {host}, route: {text}")
                .map_err(super::output::stdout_error)?;
        }
    }
    let coverage = run.coverage_percent(&config, args.covall);
    writeln!(out, "Current route coverage: {}%", format_g6(coverage)).map_err(super::output::stdout_error)?;
    if let Some(min) = args.fail_under.filter(|m| *m != 0.0) {
        if coverage < min || coverage.is_nan() {
            let _ = writeln!(err, "Failed to meet coverage requirement: {}%", format_g6(min));
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}
