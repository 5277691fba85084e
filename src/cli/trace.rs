//! `meshpath trace`: a mesh snapshot from the command line (one pod, plus peers), one
//! connection, every path it can take.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path as FsPath, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use ipnet::IpNet;
use miette::{miette, IntoDiagnostic, Result, WrapErr};

use meshpath::engine::{self, Destination, From, Mesh, Pick, Pod, Start, APP_UID, ENVOY_UID};
use meshpath::envoy::select::{ClientBytes, HttpRequest};
use meshpath::netfilter::eval::Program;
use meshpath::netfilter::model::Family;
use meshpath::netfilter::parse::ParseOptions;
use meshpath::netns::{parse_listen, parse_sockets, Socket, L4};
use meshpath::render::trace as render;

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
    /// A scenario file (not available yet: give the pod with the flags below).
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// The pod's name (in reports).
    #[arg(long, value_name = "NAME", default_value = "pod")]
    pod: String,
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

/// The connection to walk: the snapshot's pod flags and the probe flags (shared by `trace`
/// and `explain`).
#[derive(Debug, Args)]
pub struct ProbeArgs {
    #[command(flatten)]
    pub mesh: PodArgs,
    /// Who sends: app (uid 1000), envoy (uid 1337), uid:N[:GID], or outside[:IP] (arrives on eth0).
    #[arg(long, value_name = "WHO", default_value = "app")]
    from: String,
    /// Destination: IP:PORT or HOST:PORT (HOST from --name).
    #[arg(long, value_name = "DST")]
    dst: String,
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
}

#[derive(Debug, Args)]
pub struct TraceArgs {
    #[command(flatten)]
    probe: ProbeArgs,
    #[arg(long, value_enum, default_value = "text")]
    format: TraceFormat,
}

impl ProbeArgs {
    /// The connection the flags describe, starting in the first pod.
    pub fn start(&self) -> Result<Start> {
        Ok(Start {
            pod: 0,
            from: parse_from(&self.from)?,
            dst: parse_dst(&self.dst)?,
            proto: match self.proto {
                ProtoArg::Tcp => L4::Tcp,
                ProtoArg::Udp => L4::Udp,
            },
            src: self.src.as_deref().map(parse_src).transpose()?,
            client: if self.sni.is_some() || !self.alpn.is_empty() {
                ClientBytes::Tls { sni: self.sni.clone(), alpn: self.alpn.clone() }
            } else if self.host.is_some()
                || self.path.is_some()
                || self.method.is_some()
                || !self.header.is_empty()
            {
                ClientBytes::Http1
            } else {
                ClientBytes::Opaque
            },
            request: http_request(self)?,
            pick: parse_pick(self.pick.as_deref())?,
        })
    }
}

pub fn run(a: TraceArgs) -> Result<ExitCode> {
    let mesh = build_mesh(&a.probe.mesh)?;
    let start = a.probe.start()?;
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

/// The mesh the pod flags describe: the pod (index 0) and its peers, with the DNS names.
pub fn build_mesh(a: &PodArgs) -> Result<Mesh> {
    if let Some(s) = &a.scenario {
        return Err(miette!(
            "--scenario {}: scenario files are not supported yet; describe the pod with --iptables, --envoy and --pod-ip",
            s.display()
        ));
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
        &a.pod,
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
        let (host, ips) = n.split_once('=').ok_or_else(|| miette!("--name {n}: expected HOST=IP[,IP]"))?;
        let ips: Vec<IpAddr> = ips
            .split(',')
            .map(|i| i.parse().map_err(|_| miette!("--name {n}: `{i}` is not an IP address")))
            .collect::<Result<_>>()?;
        mesh.names.insert(host.to_ascii_lowercase(), ips);
    }
    Ok(mesh)
}

fn read(p: &FsPath) -> Result<String> {
    std::fs::read_to_string(p).into_diagnostic().wrap_err_with(|| format!("cannot read {}", p.display()))
}

fn parse_addrs(list: &[String]) -> Result<Vec<IpNet>> {
    list.iter()
        .flat_map(|s| s.split(','))
        .map(|s| match s.parse::<IpNet>() {
            Ok(n) => Ok(n),
            Err(_) => s.parse::<IpAddr>().map(IpNet::from).map_err(|_| miette!("`{s}` is not an IP address")),
        })
        .collect()
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
    let envoy = envoy.map(|p| super::envoy::load(&p.to_path_buf())).transpose()?;
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

fn parse_from(s: &str) -> Result<From> {
    Ok(match s {
        "app" => From::Process { uid: APP_UID, gid: APP_UID },
        "envoy" => From::Process { uid: ENVOY_UID, gid: ENVOY_UID },
        "outside" => From::Outside { src: "192.0.2.10".parse().into_diagnostic()? },
        _ => {
            if let Some(ip) = s.strip_prefix("outside:") {
                From::Outside {
                    src: ip.parse().map_err(|_| miette!("--from {s}: `{ip}` is not an IP address"))?,
                }
            } else if let Some(ids) = s.strip_prefix("uid:") {
                let (u, g) = ids.split_once(':').unwrap_or((ids, ids));
                let num =
                    |x: &str| x.parse::<u32>().map_err(|_| miette!("--from {s}: `{x}` is not a number"));
                From::Process { uid: num(u)?, gid: num(g)? }
            } else {
                return Err(miette!("--from {s}: expected app, envoy, uid:N[:GID] or outside[:IP]"));
            }
        }
    })
}

fn parse_dst(s: &str) -> Result<Destination> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok(Destination::Addr(sa));
    }
    let (host, port) =
        s.rsplit_once(':').ok_or_else(|| miette!("--dst {s}: expected IP:PORT or HOST:PORT"))?;
    let port: u16 = port.parse().map_err(|_| miette!("--dst {s}: `{port}` is not a port"))?;
    if host.parse::<IpAddr>().is_ok() || host.is_empty() {
        return Err(miette!("--dst {s}: expected IP:PORT (IPv6 in brackets) or HOST:PORT"));
    }
    Ok(Destination::Host { name: host.to_string(), port })
}

fn parse_src(s: &str) -> Result<SocketAddr> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok(sa);
    }
    let ip: IpAddr = s.parse().map_err(|_| miette!("--src {s}: expected IP or IP:PORT"))?;
    Ok(SocketAddr::new(ip, 50000))
}

fn parse_pick(s: Option<&str>) -> Result<Pick> {
    Ok(match s {
        None => Pick::All,
        Some("first") => Pick::First,
        Some(v) => match v.strip_prefix("random-value=").map(str::parse::<u64>) {
            Some(Ok(n)) => Pick::RandomValue(n),
            _ => return Err(miette!("--pick {v}: expected first or random-value=N")),
        },
    })
}

fn http_request(a: &ProbeArgs) -> Result<Option<HttpRequest>> {
    if a.host.is_none() && a.path.is_none() && a.method.is_none() && a.header.is_empty() {
        return Ok(None);
    }
    let mut headers = Vec::new();
    for h in &a.header {
        let (k, v) = h.split_once(':').ok_or_else(|| miette!("--header {h}: expected K:V"))?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    Ok(Some(HttpRequest {
        host: a.host.clone(),
        path: a.path.clone().unwrap_or_else(|| "/".into()),
        method: a.method.clone().unwrap_or_else(|| "GET".into()),
        headers,
    }))
}

impl PodArgs {
    /// The pod's own addresses (from --pod-ip).
    pub fn addrs(&self) -> Result<Vec<IpAddr>> {
        Ok(parse_addrs(&self.pod_ip)?.iter().map(IpNet::addr).collect())
    }
}
