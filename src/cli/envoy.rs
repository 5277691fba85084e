//! `meshpath envoy summary|match`: a config dump read by the pod builder, summarised or asked
//! where one connection goes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use miette::{miette, Result};

use meshpath::engine::evidence::{self, PodFiles};
use meshpath::engine::Pick;
use meshpath::envoy::model::EnvoyConfig;
use meshpath::envoy::select::{self, ClientBytes, Query};
use meshpath::envoy::summary;
use meshpath::render::envoy as render;
use meshpath::scenario::syntax::parse_src;

use super::args::{
    after_help, Format, Formats, NameArgs, OutputArgs, PickArgs, RequestArgs, CONNECTION, OUTPUT,
};
use super::output;
use super::resolve::{self, load_scenario, syntax};

const DUMP_HEADING: &str = "Config dump (required: --envoy, or --scenario)";
const DUMP: &str = "tests/fixtures/mesh/productpage.istio-1.25.config_dump.json";

#[derive(Debug, Subcommand)]
pub enum EnvoyCommand {
    /// Print listeners, filter chains, routes, clusters and endpoints of a config dump, plus
    /// everything that was not understood.
    #[command(after_help = after_help(
        "the summary was printed",
        None,
        &format!("meshpath envoy summary --envoy {DUMP}"),
    ))]
    Summary(SummaryArgs),
    /// Evaluate one connection (and request) the way Envoy would: listener, listener filters,
    /// filter chain, route, cluster and endpoint.
    #[command(after_help = after_help(
        "the evaluation was printed",
        None,
        &format!("meshpath envoy match --envoy {DUMP} \\\n  --listener-addr 10.244.0.5:15001 --dst 10.96.0.20:9080 --host reviews:9080"),
    ))]
    Match(Box<MatchArgs>),
}

#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// Envoy /config_dump (JSON or YAML; also istioctl proxy-config output).
    #[arg(long, value_name = "FILE")]
    envoy: PathBuf,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClientKind {
    Tls,
    Http1,
    Http10,
    H2c,
    Opaque,
}

const MATCH_FORMATS: Formats = Formats(&[Format::Text, Format::Json]);

#[derive(Debug, Args)]
#[command(
    override_usage = "meshpath envoy match --envoy FILE (--listener-addr IP:PORT | --listener NAME) --dst IP:PORT [OPTIONS]\n       meshpath envoy match --scenario FILE [--pod NAME] (--listener-addr IP:PORT | --listener NAME) --dst IP:PORT [OPTIONS]"
)]
pub struct MatchArgs {
    /// Envoy /config_dump (JSON or YAML).
    #[arg(long, value_name = "FILE", required_unless_present = "scenario", help_heading = DUMP_HEADING)]
    pub envoy: Option<PathBuf>,
    /// A scenario file (docs/scenarios.md): the config dump of its pod --pod, and its names.
    #[arg(long, value_name = "FILE", conflicts_with = "envoy", help_heading = DUMP_HEADING)]
    pub scenario: Option<PathBuf>,
    /// With --scenario: which of its pods (default the first).
    #[arg(long, value_name = "NAME", requires = "scenario", help_heading = DUMP_HEADING)]
    pub pod: Option<String>,
    /// Where the kernel delivered the connection (e.g. 10.244.0.5:15001 after REDIRECT).
    #[arg(long, value_name = "IP:PORT", required_unless_present = "listener", help_heading = CONNECTION)]
    pub listener_addr: Option<SocketAddr>,
    /// Start at the listener with this name instead (e.g. an internal listener).
    #[arg(long, value_name = "NAME", conflicts_with = "listener_addr", help_heading = CONNECTION)]
    pub listener: Option<String>,
    /// The connection's original destination, IP:PORT.
    #[arg(long, value_name = "IP:PORT", help_heading = CONNECTION)]
    pub dst: SocketAddr,
    /// The downstream peer, IP[:PORT] (default 127.0.0.1:40000, [::1]:40000 for IPv6; port
    /// 50000 when only an IP is given).
    #[arg(long, value_name = "IP[:PORT]", help_heading = CONNECTION)]
    pub src: Option<String>,
    #[command(flatten)]
    pub request: RequestArgs,
    /// What the client's first bytes are (default: inferred from --sni/--alpn/--host/--path).
    #[arg(long, value_enum, help_heading = CONNECTION)]
    pub client: Option<ClientKind>,
    #[command(flatten)]
    pub names: NameArgs,
    #[command(flatten)]
    pub pick: PickArgs,
    /// text (one line per decision) or json (meshpath.envoy-match/v1, docs/envoy.md).
    #[arg(long, value_name = "FORMAT", value_parser = MATCH_FORMATS, default_value = "text", help_heading = OUTPUT)]
    pub format: Format,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn run(cmd: EnvoyCommand) -> Result<ExitCode> {
    match cmd {
        EnvoyCommand::Summary(a) => {
            let cfg = evidence::read_envoy(&a.envoy).map_err(resolve::evidence)?;
            output::emit(&a.output, &summary::render(&cfg))?;
            Ok(ExitCode::SUCCESS)
        }
        EnvoyCommand::Match(args) => run_match(*args),
    }
}

/// The config dump (through the pod builder, as every command reads it) and the scenario's
/// names when the dump is a scenario pod's.
fn config(args: &MatchArgs) -> Result<(EnvoyConfig, select::NameTable)> {
    if let Some(path) = &args.envoy {
        let files = PodFiles { name: "pod".into(), envoy: Some(path.clone()), ..PodFiles::default() };
        let pod = files.read().map_err(resolve::evidence)?.build();
        return Ok((pod.envoy.unwrap_or_default(), select::NameTable::new()));
    }
    let Some(path) = &args.scenario else { return Err(miette!("give the config dump with --envoy FILE")) };
    let sc = load_scenario(path)?;
    let index = match &args.pod {
        None => 0,
        Some(name) => sc.mesh.pod_index(name).ok_or_else(|| {
            miette!("{}: no pod named `{name}`; the pods are: {}", path.display(), sc.pod_names().join(", "))
        })?,
    };
    let mut mesh = sc.mesh;
    let pod = mesh.pods.swap_remove(index);
    let cfg = pod
        .envoy
        .ok_or_else(|| miette!("{}: pod {} has no config dump (`envoy:`)", path.display(), pod.name))?;
    Ok((cfg, mesh.names))
}

fn query(args: &MatchArgs, mut dns: select::NameTable) -> Result<Query<'static>> {
    let (client, request) = resolve::client(&args.request)?;
    let client = match args.client {
        None => client,
        Some(ClientKind::Tls) => {
            ClientBytes::Tls { sni: args.request.sni.clone(), alpn: args.request.alpn.clone() }
        }
        Some(ClientKind::Http1) => ClientBytes::Http1,
        Some(ClientKind::Http10) => ClientBytes::Http10,
        Some(ClientKind::H2c) => ClientBytes::H2c,
        Some(ClientKind::Opaque) => ClientBytes::Opaque,
    };
    for (host, ips) in resolve::names(&args.names)? {
        dns.entry(host).or_default().extend(ips);
    }
    let src = match &args.src {
        Some(s) => syntax("--src", parse_src(s))?,
        None if args.dst.is_ipv4() => SocketAddr::from(([127, 0, 0, 1], 40000)),
        None => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 40000)),
    };
    let random_value = match resolve::pick(&args.pick)? {
        Pick::All => None,
        Pick::First => Some(0),
        Pick::RandomValue(n) => Some(n),
    };
    Ok(Query {
        listener_addr: args.listener_addr.unwrap_or(args.dst),
        listener_name: args.listener.clone(),
        dst: args.dst,
        src,
        client,
        request,
        dns: std::borrow::Cow::Owned(dns),
        random_value,
    })
}

fn run_match(args: MatchArgs) -> Result<ExitCode> {
    let (cfg, names) = config(&args)?;
    if let Some(name) = &args.listener {
        known_listener(&cfg, &dump_name(&args), name)?;
    }
    let q = query(&args, names)?;
    let trace = select::evaluate(&cfg, &q);
    let out = match args.format {
        Format::Json => render::match_json(&q, &trace, cfg.notes.len()).map_err(output::json_error)?,
        _ => render::match_text(&trace),
    };
    output::emit(&args.output, &out)?;
    Ok(ExitCode::SUCCESS)
}

/// The file the dump came from, for messages.
fn dump_name(args: &MatchArgs) -> String {
    args.envoy.as_ref().or(args.scenario.as_ref()).map(|p| p.display().to_string()).unwrap_or_default()
}

/// `--listener NAME` must name a listener of the dump; otherwise the error says which exist.
fn known_listener(cfg: &EnvoyConfig, dump: &str, name: &str) -> Result<()> {
    if cfg.listeners.iter().any(|l| l.name == name) {
        return Ok(());
    }
    const SHOWN: usize = 12;
    let mut names: Vec<&str> = cfg.listeners.iter().map(|l| l.name.as_str()).collect();
    names.sort_unstable();
    let more = names.len().saturating_sub(SHOWN);
    names.truncate(SHOWN);
    let help = match (names.is_empty(), more) {
        (true, _) => "the dump has no listeners".to_string(),
        (false, 0) => format!("listeners in the dump: {}", names.join(", ")),
        (false, more) => format!(
            "listeners in the dump: {}, and {more} more (`meshpath envoy summary` lists them all)",
            names.join(", ")
        ),
    };
    Err(miette!(help = help, "--listener {name:?}: {dump} has no listener of that name"))
}
