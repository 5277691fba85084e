//! `meshpath trace`: a mesh snapshot from the command line (one pod, plus peers), one
//! connection, every path it can take.

use std::net::IpAddr;
use std::path::{Path as FsPath, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use ipnet::IpNet;
use miette::{miette, IntoDiagnostic, Result, WrapErr};

use meshpath::engine::{self, Mesh, Pick, Pod, Start};
use meshpath::netfilter::eval::Program;
use meshpath::netfilter::model::Family;
use meshpath::netfilter::parse::ParseOptions;
use meshpath::netns::{parse_listen, parse_sockets, Socket, L4};
use meshpath::render::trace as render;
use meshpath::scenario::syntax::{
    parse_addr, parse_dst, parse_from, parse_header, parse_pick, parse_src, Client, SyntaxError,
};
use meshpath::scenario::{self, Scenario};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TraceFormat {
    Text,
    Json,
    Dot,
    Mermaid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProtoArg {
    Tcp,
    Udp,
}

#[derive(Debug, Args)]
pub struct PodArgs {
    /// A scenario file (docs/scenarios.md): its pods and names instead of the flags below.
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// The pod's name (in reports; default `pod`). With --scenario: the pod the connection
    /// starts in (default the scenario's first pod).
    #[arg(long, value_name = "NAME")]
    pod: Option<String>,
    /// The pod's iptables-save output.
    #[arg(long, value_name = "FILE")]
    iptables: Option<PathBuf>,
    /// The pod's ip6tables-save output.
    #[arg(long, value_name = "FILE")]
    ip6tables: Option<PathBuf>,
    /// The pod's Envoy /config_dump (JSON or YAML; include_eds for endpoints).
    #[arg(long, value_name = "FILE")]
    envoy: Option<PathBuf>,
    /// The pod's addresses on eth0.
    #[arg(long = "pod-ip", value_name = "IP")]
    pod_ip: Vec<String>,
    /// An app socket, tcp:IP:PORT[:uid] (or udp:...).
    #[arg(long, value_name = "SOCKET")]
    listen: Vec<String>,
    /// The app's sockets from `ss -ltnup` / `netstat -lntup` output.
    #[arg(long, value_name = "FILE")]
    sockets: Option<PathBuf>,
    /// Another pod: NAME=IP,IPTABLES,ENVOY[,LISTEN;LISTEN...] (ENVOY may be `-` for none).
    #[arg(long, value_name = "SPEC")]
    peer: Vec<String>,
    /// A DNS name: HOST=IP[,IP...].
    #[arg(long = "name", value_name = "HOST=IP")]
    names: Vec<String>,
}

#[derive(Debug, Args)]
/// The connection to walk: the snapshot's pod flags (or a scenario) and the connection flags
/// (or a scenario's probe). Shared by `trace` and `explain`.
pub struct ProbeArgs {
    #[command(flatten)]
    pub mesh: PodArgs,
    /// Who sends: app (uid 1000), envoy (uid 1337), uid:N[:GID], or outside[:IP] (arrives on eth0).
    #[arg(long, value_name = "WHO", default_value = "app")]
    from: String,
    /// With --scenario: trace this probe of the scenario (its start; no --dst).
    #[arg(long, value_name = "NAME", requires = "scenario")]
    probe: Option<String>,
    /// Destination: IP:PORT or HOST:PORT (HOST from --name).
    #[arg(long, value_name = "DST", required_unless_present = "probe")]
    dst: Option<String>,
    #[arg(long, value_enum, default_value = "tcp")]
    proto: ProtoArg,
    /// Source address (and port).
    #[arg(long, value_name = "IP[:PORT]")]
    src: Option<String>,
    /// TLS SNI (makes the connection TLS).
    #[arg(long, value_name = "NAME")]
    sni: Option<String>,
    /// TLS ALPN protocols in client order (makes the connection TLS).
    #[arg(long, value_name = "A,B", value_delimiter = ',')]
    alpn: Vec<String>,
    /// HTTP Host (makes the connection HTTP/1.1).
    #[arg(long, value_name = "HOST")]
    host: Option<String>,
    #[arg(long, value_name = "PATH")]
    path: Option<String>,
    #[arg(long, value_name = "METHOD")]
    method: Option<String>,
    /// An HTTP header, K:V.
    #[arg(long, value_name = "K:V")]
    header: Vec<String>,
    /// first, or random-value=N (Envoy's choice for that value); default: every branch.
    #[arg(long, value_name = "HOW")]
    pick: Option<String>,
    /// A DNS query for NAME (send it to a DNS server: --proto udp --dst 10.96.0.10:53).
    #[arg(long = "dns-query", value_name = "NAME", conflicts_with_all = ["host", "path", "method", "header"])]
    dns_query: Option<String>,
}

#[derive(Debug, Args)]
pub struct TraceArgs {
    #[command(flatten)]
    probe: ProbeArgs,
    #[arg(long, value_enum, default_value = "text")]
    format: TraceFormat,
}

impl ProbeArgs {
    /// The mesh and the connection the flags describe, and the scenario probe's name when the
    /// connection is a probe (`--scenario F --probe NAME`).
    pub fn resolve(&self) -> Result<(Mesh, Start, Option<String>)> {
        let (mesh, start, probe) = match (&self.probe, &self.mesh.scenario) {
            (Some(name), Some(path)) => {
                let connection_flags = self.dst.is_some()
                    || self.src.is_some()
                    || self.sni.is_some()
                    || !self.alpn.is_empty()
                    || self.host.is_some()
                    || self.path.is_some()
                    || self.method.is_some()
                    || !self.header.is_empty()
                    || self.pick.is_some()
                    || self.dns_query.is_some()
                    || self.from != "app"
                    || self.proto != ProtoArg::Tcp
                    || self.mesh.pod.is_some();
                if connection_flags {
                    return Err(miette!(
                        "--probe {name} gives the connection and its pod; drop --pod, --dst and the other connection flags"
                    ));
                }
                let sc = load_scenario(path)?;
                let Some(probe) = sc.probe(name) else {
                    return Err(miette!(
                        "{}: no probe named `{name}`; the probes are: {}",
                        path.display(),
                        sc.probe_names().join(", ")
                    ));
                };
                let start = probe.start.clone();
                (sc.mesh, start, Some(name.clone()))
            }
            (Some(_), None) => return Err(miette!("--probe needs --scenario FILE")),
            (None, _) => {
                let (mesh, pod) = build_mesh(&self.mesh)?;
                let Some(dst) = &self.dst else {
                    return Err(miette!(
                        "give the destination with --dst IP:PORT (or --scenario F --probe NAME)"
                    ));
                };
                let (client, request) = Client {
                    sni: self.sni.as_deref(),
                    alpn: &self.alpn,
                    host: self.host.as_deref(),
                    path: self.path.as_deref(),
                    method: self.method.as_deref(),
                    headers: headers(self)?,
                    http: false,
                }
                .build();
                let start = Start {
                    pod,
                    from: syntax("--from", parse_from(&self.from, &Default::default()))?,
                    dst: syntax("--dst", parse_dst(dst))?,
                    proto: match self.proto {
                        ProtoArg::Tcp => L4::Tcp,
                        ProtoArg::Udp => L4::Udp,
                    },
                    src: self.src.as_deref().map(|s| syntax("--src", parse_src(s))).transpose()?,
                    client,
                    request,
                    dns_query: self.dns_query.clone(),
                    pick: match self.pick.as_deref() {
                        None => Pick::All,
                        Some(p) => syntax("--pick", parse_pick(p))?,
                    },
                };
                (mesh, start, None)
            }
        };
        Ok((mesh, start, probe))
    }
}

pub fn run(a: TraceArgs) -> Result<ExitCode> {
    let (mesh, start, _) = a.probe.resolve()?;
    let trace = engine::trace(&mesh, &start).map_err(|e| miette!("{e}"))?;
    let out = match a.format {
        TraceFormat::Text => render::text(&trace),
        TraceFormat::Json => render::json(&trace),
        TraceFormat::Dot => render::dot(&trace),
        TraceFormat::Mermaid => render::mermaid(&trace),
    };
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

/// Reads a scenario file; its problems become located diagnostics.
pub fn load_scenario(path: &FsPath) -> Result<Scenario> {
    scenario::load(path).map_err(|e| e.report())
}

/// The mesh the pod flags (or `--scenario`) describe, and the index of the pod a connection
/// starts in: the pod (index 0) and its peers, with the DNS names; or the scenario's snapshot
/// and the pod named by --pod (default its first pod).
pub fn build_mesh(a: &PodArgs) -> Result<(Mesh, usize)> {
    if let Some(s) = &a.scenario {
        if a.iptables.is_some()
            || a.ip6tables.is_some()
            || a.envoy.is_some()
            || !a.pod_ip.is_empty()
            || !a.peer.is_empty()
        {
            return Err(miette!("--scenario {} describes the pods; drop --iptables, --ip6tables, --envoy, --pod-ip and --peer", s.display()));
        }
        let sc = load_scenario(s)?;
        let pod = match &a.pod {
            None => 0,
            Some(name) => sc.mesh.pod_index(name).ok_or_else(|| {
                miette!("{}: no pod named `{name}`; the pods are: {}", s.display(), sc.pod_names().join(", "))
            })?,
        };
        let mut mesh = sc.mesh;
        if let Some(p) = mesh.pods.get_mut(pod) {
            for l in &a.listen {
                p.netns.sockets.push(parse_listen(l).map_err(|e| miette!("--listen {l}: {e}"))?);
            }
        }
        for n in &a.names {
            let (host, ips) = name_flag(n)?;
            mesh.names.insert(host, ips);
        }
        return Ok((mesh, pod));
    }
    let mut mesh = Mesh::default();
    let addrs = parse_addrs(&a.pod_ip)?;
    if addrs.is_empty() {
        return Err(miette!("give the pod's addresses with --pod-ip"));
    }
    let mut sockets = Vec::new();
    for l in &a.listen {
        sockets.push(parse_listen(l).map_err(|e| miette!("--listen {l}: {e}"))?);
    }
    if let Some(f) = &a.sockets {
        let text = read(f)?;
        sockets.extend(
            parse_sockets(&text).map_err(|e| miette!("{}:{}:1: {}", f.display(), e.line, e.message))?,
        );
    }
    mesh.pods.push(load_pod(
        a.pod.as_deref().unwrap_or("pod"),
        &addrs,
        a.iptables.as_deref(),
        a.ip6tables.as_deref(),
        a.envoy.as_deref(),
        sockets,
    )?);
    for spec in &a.peer {
        mesh.pods.push(peer(spec)?);
    }
    for n in &a.names {
        let (host, ips) = name_flag(n)?;
        mesh.names.insert(host, ips);
    }
    Ok((mesh, 0))
}

fn name_flag(n: &str) -> Result<(String, Vec<IpAddr>)> {
    let (host, ips) = n.split_once('=').ok_or_else(|| miette!("--name {n}: expected HOST=IP[,IP]"))?;
    let ips: Vec<IpAddr> = ips
        .split(',')
        .map(|i| i.parse().map_err(|_| miette!("--name {n}: `{i}` is not an IP address")))
        .collect::<Result<_>>()?;
    Ok((host.to_ascii_lowercase(), ips))
}

fn read(p: &FsPath) -> Result<String> {
    std::fs::read_to_string(p).into_diagnostic().wrap_err_with(|| format!("cannot read {}", p.display()))
}

fn parse_addrs(list: &[String]) -> Result<Vec<IpNet>> {
    list.iter().flat_map(|s| s.split(',')).map(|s| syntax("--pod-ip", parse_addr(s))).collect()
}

fn rules(path: Option<&FsPath>, family: Family) -> Result<Option<(Program, String)>> {
    let Some(path) = path else { return Ok(None) };
    let (text, parsed) =
        super::netfilter::read_rules(path, ParseOptions { lenient: false, family: Some(family) })?;
    let program = Program::new(parsed.ruleset).map_err(|e| miette!("{e}"))?;
    Ok(Some((program, text)))
}

fn load_pod(
    name: &str,
    addrs: &[IpNet],
    v4: Option<&FsPath>,
    v6: Option<&FsPath>,
    envoy: Option<&FsPath>,
    sockets: Vec<Socket>,
) -> Result<Pod> {
    if v4.is_none() && v6.is_none() {
        return Err(miette!("pod {name}: give its rules with --iptables (and --ip6tables for IPv6)"));
    }
    let envoy = envoy.map(super::envoy::load).transpose()?;
    Ok(Pod::new(name, addrs, rules(v4, Family::V4)?, rules(v6, Family::V6)?, envoy, sockets))
}

/// `NAME=IP,IPTABLES,ENVOY[,LISTEN;LISTEN]`.
fn peer(spec: &str) -> Result<Pod> {
    let (name, rest) =
        spec.split_once('=').ok_or_else(|| miette!("--peer {spec}: expected NAME=IP,IPTABLES,ENVOY"))?;
    let parts: Vec<&str> = rest.split(',').collect();
    if parts.len() < 3 {
        return Err(miette!("--peer {spec}: expected NAME=IP,IPTABLES,ENVOY[,LISTEN;LISTEN]"));
    }
    let addrs = parse_addrs(&[parts[0].to_string()])?;
    let envoy = (parts[2] != "-").then(|| PathBuf::from(parts[2]));
    let mut sockets = Vec::new();
    if let Some(list) = parts.get(3) {
        for l in list.split(';').filter(|l| !l.is_empty()) {
            sockets.push(parse_listen(l).map_err(|e| miette!("--peer {name}: {l}: {e}"))?);
        }
    }
    let v6 = addrs.first().is_some_and(|a| a.addr().is_ipv6());
    let rules_path = PathBuf::from(parts[1]);
    let (v4p, v6p) = if v6 { (None, Some(rules_path.as_path())) } else { (Some(rules_path.as_path()), None) };
    load_pod(name, &addrs, v4p, v6p, envoy.as_deref(), sockets)
}

fn syntax<T>(flag: &str, r: std::result::Result<T, SyntaxError>) -> Result<T> {
    r.map_err(|e| miette!("{flag} {e}"))
}

fn headers(a: &ProbeArgs) -> Result<Vec<(String, String)>> {
    a.header.iter().map(|h| syntax("--header", parse_header(h))).collect()
}
