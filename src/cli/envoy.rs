//! `meshpath envoy summary|match`.
//!
//! Exit codes: 0 success; 2 the dump could not be read or an argument is invalid.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use meshpath::envoy::model::EnvoyConfig;
use meshpath::envoy::select::{self, ClientBytes, HttpRequest, NameTable, Outcome, Query, Trace, Upstream};
use meshpath::envoy::{summary, LoadError, ParseError};
use miette::{LabeledSpan, MietteDiagnostic, NamedSource};

use super::output::Format;

/// The JSON schema identifier of `envoy match --format json` (docs/envoy.md).
pub const MATCH_SCHEMA: &str = "meshpath.envoy-match/v1";

#[derive(Debug, Subcommand)]
pub enum EnvoyCommand {
    /// Print listeners, filter chains, routes, clusters and endpoints of a config dump, plus
    /// everything that was not understood.
    Summary {
        /// Envoy /config_dump (JSON or YAML; also istioctl proxy-config output).
        #[arg(long, value_name = "DUMP")]
        envoy: PathBuf,
    },
    /// Evaluate one connection (and request) the way Envoy would.
    Match(Box<MatchArgs>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClientKind {
    Tls,
    Http1,
    Http10,
    H2c,
    Opaque,
}

#[derive(Debug, Args)]
pub struct MatchArgs {
    /// Envoy /config_dump (JSON or YAML).
    #[arg(long, value_name = "DUMP")]
    pub envoy: PathBuf,
    /// Where the kernel delivered the connection (e.g. 10.1.2.3:15001 after REDIRECT).
    #[arg(long, value_name = "IP:PORT", required_unless_present = "listener")]
    pub listener_addr: Option<SocketAddr>,
    /// Start at the listener with this name instead (e.g. an internal listener).
    #[arg(long, value_name = "NAME", conflicts_with = "listener_addr")]
    pub listener: Option<String>,
    /// The connection's original destination.
    #[arg(long, value_name = "IP:PORT")]
    pub dst: SocketAddr,
    /// The downstream peer (default 127.0.0.1:40000 for a v4 destination, [::1]:40000 for v6).
    #[arg(long, value_name = "IP:PORT")]
    pub src: Option<SocketAddr>,
    /// TLS SNI sent by the client (implies a TLS ClientHello).
    #[arg(long, value_name = "S")]
    pub sni: Option<String>,
    /// ALPN offered by the client, in order (implies a TLS ClientHello).
    #[arg(long, value_name = "a,b", value_delimiter = ',')]
    pub alpn: Vec<String>,
    /// HTTP Host / :authority (implies an HTTP/1.1 request unless TLS).
    #[arg(long, value_name = "H")]
    pub host: Option<String>,
    /// HTTP path.
    #[arg(long, value_name = "P")]
    pub path: Option<String>,
    /// HTTP method.
    #[arg(long, value_name = "M")]
    pub method: Option<String>,
    /// HTTP request header (repeatable).
    #[arg(long = "header", value_name = "K:V")]
    pub headers: Vec<String>,
    /// What the client's first bytes are (default: inferred from --sni/--alpn/--host/--path).
    #[arg(long, value_enum)]
    pub client: Option<ClientKind>,
    /// DNS answer for STRICT_DNS/LOGICAL_DNS clusters, NAME=IP[,IP...] (repeatable).
    #[arg(long = "dns", value_name = "NAME=IP")]
    pub dns: Vec<String>,
    /// Picks among weighted clusters (r % total weight); without it every branch is shown.
    #[arg(long, value_name = "N")]
    pub random_value: Option<u64>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

pub fn run(cmd: EnvoyCommand) -> miette::Result<ExitCode> {
    match cmd {
        EnvoyCommand::Summary { envoy } => {
            let cfg = load(&envoy)?;
            super::output::print(summary::render(&cfg))?;
            Ok(ExitCode::SUCCESS)
        }
        EnvoyCommand::Match(args) => run_match(*args),
    }
}

/// Reads and parses a dump; a syntax error is shown with its source line.
pub fn load(path: &std::path::Path) -> miette::Result<EnvoyConfig> {
    meshpath::envoy::load(path).map_err(|e| match e {
        LoadError::Parse { path, bytes, error } => diagnostic(std::path::Path::new(&path), &bytes, error),
        io => miette::miette!("{io}"),
    })
}

pub fn diagnostic(path: &std::path::Path, bytes: &[u8], e: ParseError) -> miette::Report {
    let name = path.display().to_string();
    let Some((line, col)) = e.position() else {
        return miette::miette!("{name}: {e}");
    };
    let text = String::from_utf8_lossy(bytes).into_owned();
    let offset: usize = text.split_inclusive('\n').take(line.saturating_sub(1)).map(str::len).sum::<usize>()
        + col.saturating_sub(1);
    let offset = offset.min(text.len().saturating_sub(1));
    let diag = MietteDiagnostic::new(format!("{name}: cannot read the Envoy config dump"))
        .with_labels(vec![LabeledSpan::at(offset..offset + 1, e.to_string())]);
    miette::Report::new(diag).with_source_code(NamedSource::new(name, text))
}

/// `--listener NAME` must name a listener of the dump; otherwise the error says which exist.
fn known_listener(cfg: &EnvoyConfig, dump: &std::path::Path, name: &str) -> miette::Result<()> {
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
    Err(miette::miette!(help = help, "--listener {name:?}: {} has no listener of that name", dump.display()))
}

fn query(args: &MatchArgs) -> miette::Result<Query<'static>> {
    let tls = args.sni.is_some() || !args.alpn.is_empty();
    let http =
        args.host.is_some() || args.path.is_some() || args.method.is_some() || !args.headers.is_empty();
    let kind = args.client.unwrap_or(if tls {
        ClientKind::Tls
    } else if http {
        ClientKind::Http1
    } else {
        ClientKind::Opaque
    });
    let client = match kind {
        ClientKind::Tls => ClientBytes::Tls { sni: args.sni.clone(), alpn: args.alpn.clone() },
        ClientKind::Http1 => ClientBytes::Http1,
        ClientKind::Http10 => ClientBytes::Http10,
        ClientKind::H2c => ClientBytes::H2c,
        ClientKind::Opaque => ClientBytes::Opaque,
    };
    let mut headers = Vec::new();
    for h in &args.headers {
        let (k, v) =
            h.split_once(':').ok_or_else(|| miette::miette!("--header {h:?}: expected NAME:VALUE"))?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let request = http.then(|| HttpRequest {
        host: args.host.clone(),
        path: args.path.clone().unwrap_or_else(|| "/".into()),
        method: args.method.clone().unwrap_or_else(|| "GET".into()),
        headers,
    });
    let mut dns = NameTable::new();
    for d in &args.dns {
        let (name, ips) =
            d.split_once('=').ok_or_else(|| miette::miette!("--dns {d:?}: expected NAME=IP[,IP...]"))?;
        let mut list = Vec::new();
        for ip in ips.split(',') {
            list.push(
                ip.trim()
                    .parse::<IpAddr>()
                    .map_err(|e| miette::miette!("--dns {d:?}: {ip:?} is not an IP address ({e})"))?,
            );
        }
        dns.entry(name.trim().to_ascii_lowercase()).or_default().extend(list);
    }
    let src = args.src.unwrap_or_else(|| {
        if args.dst.is_ipv4() {
            SocketAddr::from(([127, 0, 0, 1], 40000))
        } else {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 40000))
        }
    });
    Ok(Query {
        listener_addr: args.listener_addr.unwrap_or(args.dst),
        listener_name: args.listener.clone(),
        dst: args.dst,
        src,
        client,
        request,
        dns: std::borrow::Cow::Owned(dns),
        random_value: args.random_value,
    })
}

fn run_match(args: MatchArgs) -> miette::Result<ExitCode> {
    let cfg = load(&args.envoy)?;
    if let Some(name) = &args.listener {
        known_listener(&cfg, &args.envoy, name)?;
    }
    let q = query(&args)?;
    let trace = select::evaluate(&cfg, &q);
    match args.format {
        Format::Json => {
            let doc = serde_json::json!({
                "schema": MATCH_SCHEMA,
                "query": {
                    "listener_addr": q.listener_addr.to_string(),
                    "listener": args.listener,
                    "dst": q.dst.to_string(),
                    "src": q.src.to_string(),
                    "sni": args.sni,
                    "alpn": args.alpn,
                    "request": q.request.as_ref().map(|r| serde_json::json!({
                        "host": r.host, "path": r.path, "method": r.method,
                        "headers": r.headers.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>(),
                    })),
                    "random_value": q.random_value,
                },
                "trace": trace,
                "notes": cfg.notes.len(),
            });
            let text = serde_json::to_string_pretty(&doc).map_err(super::output::json_error)?;
            super::output::println(text)?;
        }
        Format::Text => super::output::print(render_text(&trace))?,
    }
    Ok(ExitCode::SUCCESS)
}

fn render_text(t: &Trace) -> String {
    let mut o = String::new();
    let at = |r: &select::ObjectRef| {
        let line = r.line.map(|l| format!(":{l}")).unwrap_or_default();
        let ic = r.istio_config.as_deref().map(|c| format!(" (istio {c})")).unwrap_or_default();
        format!("{} [{}{line}]{ic}", if r.name.is_empty() { "(unnamed)" } else { &r.name }, r.path)
    };
    match &t.accepted_by {
        Some(l) => {
            let _ = writeln!(o, "accepted by listener {}", at(l));
        }
        None => {
            let _ = writeln!(o, "no listener is bound to that address");
        }
    }
    for s in &t.listener_filters {
        let _ = writeln!(o, "  listener filter {} on {}: {} ({})", s.filter, s.listener, s.status, s.effect);
    }
    if let Some(h) = &t.handoff {
        match h.matched {
            Some(m) => {
                let how = serde_json::to_string(&m).unwrap_or_default();
                let _ = writeln!(
                    o,
                    "handed off ({}) for {} to listener {}",
                    how.trim_matches('"'),
                    h.restored_destination,
                    at(&h.target)
                );
            }
            None => {
                let _ = writeln!(o, "no listener for {}: stays on {}", h.restored_destination, h.target.name);
            }
        }
    }
    if let Some(s) = &t.socket {
        let _ = writeln!(
            o,
            "match inputs: local={} transport={} sni={:?} alpn=[{}]",
            s.local,
            s.transport_protocol,
            s.server_name,
            s.application_protocols.join(",")
        );
    }
    for s in &t.no_chain_steps {
        let _ = writeln!(o, "  {}: {} -> {:?}", s.criterion, s.branch, s.remaining);
    }
    if let Some(c) = &t.filter_chain {
        for s in &c.steps {
            let _ = writeln!(o, "  {}: {} -> {:?}", s.criterion, s.branch, s.remaining);
        }
        let idx = c.index.map(|i| format!("#{i} ")).unwrap_or_default();
        let _ = writeln!(o, "filter chain {idx}{} via {}", at(&c.chain), c.via);
    }
    if let Some(n) = &t.network_filter {
        let _ = match n {
            select::NetworkStep::TcpProxy { filter } => writeln!(o, "network filter {filter}"),
            select::NetworkStep::HttpConnectionManager {
                filter,
                route_config,
                inline,
                route_config_found,
            } => writeln!(
                o,
                "network filter {filter}: route config {route_config:?} ({}{})",
                if *inline { "inline" } else { "rds" },
                if *route_config_found { "" } else { ", not in the dump" }
            ),
        };
    }
    if let Some(h) = &t.http {
        let assumed = if h.assumed { " (assumed)" } else { "" };
        let _ = writeln!(o, "request {} {} host {}{assumed}", h.method, h.path, h.authority);
        if let Some(v) = &h.virtual_host {
            let _ = writeln!(o, "  virtual host {}", at(v));
        }
        if let Some(r) = &h.route {
            let _ = writeln!(o, "  route {}", at(r));
        }
        let _ = writeln!(o, "  router: {}", h.decision);
    }
    for c in &t.clusters {
        let w = c.weight.map(|w| format!(" weight={w}")).unwrap_or_default();
        let sel = if c.selected { " (selected)" } else { "" };
        let up = match &c.upstream {
            Upstream::Endpoint { address, source_address, via, candidates } => {
                let src = source_address.map(|s| format!(" from {s}")).unwrap_or_default();
                format!(
                    "endpoint {address}{src} via {via} ({})",
                    meshpath::render::plural(candidates.len(), "candidate")
                )
            }
            Upstream::ClusterNotFound => "cluster not found".into(),
            Upstream::NoHealthyHost { reason } => format!("no healthy host: {reason}"),
            Upstream::Unresolved { host } => format!("{host} unresolved (give --dns)"),
            Upstream::EndpointsUnknown { service_name } => {
                format!("EDS endpoints of {service_name} not in the dump")
            }
            Upstream::Unsupported { reason } => format!("unsupported: {reason}"),
        };
        let _ = writeln!(o, "cluster {}{w}{sel}: {up}", c.cluster);
    }
    let _ = match &t.outcome {
        Outcome::Forwarded { cluster, endpoint, source_address } => {
            let src = source_address.map(|s| format!(" from {s}")).unwrap_or_default();
            writeln!(o, "=> forwarded to {endpoint}{src} (cluster {cluster})")
        }
        Outcome::Weighted => {
            writeln!(o, "=> weighted: one of the clusters above (give --random-value to pick)")
        }
        Outcome::HttpResponse { status, flag, details, location } => {
            let f = flag.as_deref().map(|f| format!(" {f}")).unwrap_or_default();
            let l = location.as_deref().map(|l| format!(" location {l}")).unwrap_or_default();
            writeln!(o, "=> Envoy responds {status}{f} ({details}){l}")
        }
        Outcome::Closed { flag, details } => {
            let f = flag.as_deref().map(|f| format!(" flag {f}")).unwrap_or_default();
            writeln!(o, "=> connection closed by Envoy{f} ({details})")
        }
        Outcome::Unresolved { cluster, host } => {
            writeln!(o, "=> cluster {cluster}: {host} is not resolved (give --dns {host}=IP)")
        }
        Outcome::NoListener => writeln!(o, "=> no listener"),
        Outcome::Undetermined { reason } => writeln!(o, "=> undetermined: {reason}"),
    };
    o
}
