//! `meshpath route-check`: a drop-in for Envoy's `router_check_tool`.
//!
//! Same inputs, same per-test output (`--details`, `--only-show-failures`), same coverage
//! line and `--fail-under`/`--covall` arithmetic. Exit codes: 0 all tests pass (and coverage
//! is met); 1 a test failed or coverage is below `--fail-under`; 2 an input could not be read.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use meshpath::render::routecheck as render;
use meshpath::routecheck::{load_route_config_for_listener, parse_test_file, run_suite, InputError};

#[derive(Debug, Args)]
#[command(after_help = super::args::after_help(
    "every test passed (and coverage is met)",
    Some("a test failed, or coverage is below --fail-under"),
    "meshpath route-check --config tests/fixtures/route-check/routes.yaml \\\n  --tests tests/fixtures/route-check/tests.golden.proto.json --details",
))]
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

fn diagnose(e: InputError, text: &str) -> miette::Report {
    let message = meshpath::diagnostic::clean_message(&e.to_string());
    let Some((line, col)) = e.line.zip(e.column) else { return miette::miette!("{message}") };
    let start: usize = text.split_inclusive('\n').take(line.saturating_sub(1)).map(str::len).sum();
    let line_len = text.get(start..).and_then(|rest| rest.split('\n').next()).map_or(0, str::len);
    let offset = (start + col.saturating_sub(1).min(line_len)).min(text.len());
    let excerpt = meshpath::diagnostic::Excerpt::new(&e.file, text, offset, 1);
    let diag = miette::MietteDiagnostic::new(message).with_labels(vec![excerpt.label("here")]);
    miette::Report::new(diag).with_source_code(excerpt)
}

fn read(path: &std::path::Path) -> miette::Result<String> {
    meshpath::util::read::read_text(path).map_err(|e| miette::miette!("cannot read {}: {e}", path.display()))
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
    let options = render::Options {
        details: args.details,
        only_show_failures: args.only_show_failures,
        why: args.why,
        covall: args.covall,
        detailed_coverage: args.detailed_coverage,
        fail_under: args.fail_under,
    };
    let report = render::report(&config_name, &config, &run, options);
    // Each stream is written whole (a terminal shows standard error's lines first).
    let _ = std::io::stderr().lock().write_all(report.stderr.as_bytes());
    super::output::print(&report.stdout)?;
    Ok(if report.passed { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
