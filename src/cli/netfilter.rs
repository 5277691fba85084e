//! `meshpath netfilter check|trace`: clap arguments (what the user typed), then a validated
//! request (files read, addresses parsed, Istio's defaults filled in) handed to the library.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use ipnet::IpNet;
use miette::{miette, IntoDiagnostic, Result, WrapErr};

use super::output::Format;
use meshpath::netfilter::eval::{self, Entry, Probe, Program};
use meshpath::netfilter::model::{Family, Protocol};
use meshpath::netfilter::parse::{ParseOptions, Parsed, ReadError};
use meshpath::netns::{parse_ip_route, parse_ip_rule, parse_listen, parse_sockets, Netns, Socket, L4};
use meshpath::render::netfilter as render;

#[derive(Debug, Subcommand)]
pub enum NetfilterCommand {
    /// Parse and validate rule sets; print tables, chains, rules and anything unsupported.
    Check {
        /// iptables-save / ip6tables-save output, an istio-init log, or restore-style rules.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Keep unsupported matches and targets as "unknown" instead of failing.
        #[arg(long)]
        lenient: bool,
    },
    /// Walk the first packet of a connection through the kernel's netfilter path.
    Trace(Box<TraceArgs>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HookArg {
    Output,
    Prerouting,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProtoArg {
    Tcp,
    Udp,
    Icmp,
}

#[derive(Debug, Args)]
pub struct TraceArgs {
    /// The rule set (iptables-save output; ip6tables-save output for IPv6 addresses).
    #[arg(long, value_name = "FILE")]
    rules: PathBuf,
    /// Where the packet starts: sent by a local process (output) or arriving (prerouting).
    #[arg(long, value_enum)]
    hook: HookArg,
    #[arg(long, value_enum, default_value = "tcp")]
    proto: ProtoArg,
    #[arg(long, value_name = "IP")]
    src: IpAddr,
    #[arg(long, value_name = "N", default_value_t = 50000)]
    sport: u16,
    #[arg(long, value_name = "IP")]
    dst: IpAddr,
    /// Destination port (required for tcp and udp).
    #[arg(long, value_name = "N")]
    dport: Option<u16>,
    /// The sending process's uid (output only).
    #[arg(long, value_name = "N", default_value_t = 0)]
    uid: u32,
    /// The sending process's gid (output only).
    #[arg(long, value_name = "N", default_value_t = 0)]
    gid: u32,
    /// The packet's mark at the start (SO_MARK), decimal or 0x hex.
    #[arg(long, value_name = "N", value_parser = parse_mark, default_value = "0")]
    mark: u32,
    /// Incoming interface (prerouting only).
    #[arg(long = "in", value_name = "IFACE", default_value = "eth0")]
    in_iface: String,
    /// The pod's own addresses on eth0 (IP or IP/LEN), in the order they were added;
    /// 127.0.0.0/8 and ::1 on lo are implied. Defaults to --src for the output hook.
    #[arg(long = "local", value_name = "IP")]
    local: Vec<String>,
    /// An `ip rule` (e.g. "fwmark 0x539 lookup 133"); replaces the TPROXY assumption.
    #[arg(long = "ip-rule", value_name = "RULE")]
    ip_rule: Vec<String>,
    /// An `ip route` (e.g. "local default dev lo table 133"); replaces the TPROXY assumption.
    #[arg(long = "ip-route", value_name = "ROUTE")]
    ip_route: Vec<String>,
    /// Output of `ip rule show`: replaces all policy rules.
    #[arg(long = "ip-rules", value_name = "FILE")]
    ip_rules: Option<PathBuf>,
    /// Output of `ip route show table all`: replaces all routes.
    #[arg(long = "ip-routes", value_name = "FILE")]
    ip_routes: Option<PathBuf>,
    /// A listening socket, tcp:IP:PORT[:transparent]; replaces the assumed TPROXY listeners.
    #[arg(long, value_name = "SOCKET")]
    listen: Vec<String>,
    /// Listening sockets from `ss -ltnup` or `netstat -lntup` output; like --listen.
    #[arg(long, value_name = "FILE")]
    sockets: Option<PathBuf>,
    /// Treat the namespace as a router (net.ipv4.ip_forward=1); off in a pod.
    #[arg(long)]
    forwarding: bool,
    /// Keep unsupported matches and targets as "unknown"; traces reaching them say so.
    #[arg(long)]
    lenient: bool,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

fn parse_mark(s: &str) -> std::result::Result<u32, String> {
    meshpath::netfilter::parse::number(s)
}

pub fn run(cmd: NetfilterCommand) -> Result<ExitCode> {
    match cmd {
        NetfilterCommand::Check { files, lenient } => {
            for f in files {
                let (_, parsed) = read_rules(&f, ParseOptions { lenient, family: None })?;
                let program = Program::new(parsed.ruleset).map_err(|e| miette!("{e}"))?;
                super::output::print(render::check_text(&program.ruleset, &parsed.notes, &parsed.unknown))?;
                // A large rule set takes longer to free than the process takes to exit.
                std::mem::forget(program);
            }
            Ok(ExitCode::SUCCESS)
        }
        NetfilterCommand::Trace(args) => trace(*args),
    }
}

/// Reads and parses a rule file; a parse error becomes a located diagnostic.
pub fn read_rules(path: &Path, opts: ParseOptions) -> Result<(String, Parsed)> {
    meshpath::netfilter::parse::read_rules(path, opts).map_err(|e| match e {
        ReadError::Parse(p) => miette::Report::new(p),
        io => miette!("{io}"),
    })
}

fn trace(a: TraceArgs) -> Result<ExitCode> {
    let family = if a.dst.is_ipv6() { Family::V6 } else { Family::V4 };
    if a.src.is_ipv6() != a.dst.is_ipv6() {
        return Err(miette!("--src {} and --dst {} are of different address families", a.src, a.dst));
    }
    let proto = match a.proto {
        ProtoArg::Tcp => Protocol::Tcp,
        ProtoArg::Udp => Protocol::Udp,
        ProtoArg::Icmp if family == Family::V6 => Protocol::Icmpv6,
        ProtoArg::Icmp => Protocol::Icmp,
    };
    let dport = match (a.dport, proto) {
        (Some(p), _) => p,
        (None, Protocol::Tcp | Protocol::Udp) => return Err(miette!("--dport is required for tcp and udp")),
        (None, _) => 0,
    };
    let (text, parsed) = read_rules(&a.rules, ParseOptions { lenient: a.lenient, family: Some(family) })?;
    let program = Program::new(parsed.ruleset).map_err(|e| miette!("{e}"))?;
    let ns = build_netns(&a, family, &program)?;
    let entry = match a.hook {
        HookArg::Output => Entry::Output,
        HookArg::Prerouting => Entry::Prerouting,
    };
    let sport = if matches!(proto, Protocol::Tcp | Protocol::Udp) { a.sport } else { 0 };
    let mut probe = Probe::new(entry, proto, a.src, sport, a.dst, dport);
    probe.uid = a.uid;
    probe.gid = a.gid;
    probe.mark = a.mark;
    probe.in_iface = a.in_iface.clone();
    let trace = eval::trace(&program, &ns, &probe).map_err(|e| miette!("{e}"))?;
    match a.format {
        Format::Json => super::output::print(render::trace_json(&trace).map_err(super::output::json_error)?)?,
        Format::Text => super::output::print(render::trace_text(&trace, &probe, &program.ruleset, &text))?,
    }
    // A large rule set takes longer to free than the process takes to exit.
    std::mem::forget(program);
    Ok(ExitCode::SUCCESS)
}

/// The pod's namespace: the given addresses and routes, or Istio's defaults beside its rules.
fn build_netns(a: &TraceArgs, family: Family, program: &Program) -> Result<Netns> {
    let mut addrs: Vec<IpNet> = Vec::new();
    for l in &a.local {
        let net: IpNet = match l.parse::<IpNet>() {
            Ok(n) => n,
            Err(_) => {
                l.parse::<IpAddr>().map(IpNet::from).map_err(|_| miette!("--local {l}: not an IP address"))?
            }
        };
        addrs.push(net);
    }
    if addrs.is_empty() {
        match a.hook {
            HookArg::Output if !a.src.is_loopback() => addrs.push(IpNet::from(a.src)),
            HookArg::Output => {}
            HookArg::Prerouting => {
                return Err(miette!(
                    "give the pod's own addresses with --local (REDIRECT and TPROXY need them)"
                ));
            }
        }
    }
    let mut ns = Netns::pod(&addrs);
    ns.forwarding = a.forwarding;
    if a.in_iface != "eth0" && a.in_iface != "lo" && ns.interface(&a.in_iface).is_none() {
        ns.interfaces.push(meshpath::netns::Interface { name: a.in_iface.clone(), addrs: Vec::new() });
    }
    let v6 = family == Family::V6;
    // Istio's TPROXY set-up (tools/common/tproxy): fwmark rule to table 133, local default route.
    let assume_tproxy_routing =
        a.ip_rule.is_empty() && a.ip_route.is_empty() && a.ip_rules.is_none() && a.ip_routes.is_none();
    if assume_tproxy_routing {
        ns.add_istio_tproxy_routing(&program.tproxy_marks, v6);
    }
    for r in &a.ip_rule {
        if let Some(rule) = parse_ip_rule(r, v6).map_err(|e| miette!("--ip-rule \"{r}\": {e}"))? {
            ns.rules.push(rule);
        }
    }
    for r in &a.ip_route {
        if let Some(route) = parse_ip_route(r, v6).map_err(|e| miette!("--ip-route \"{r}\": {e}"))? {
            ns.routes.push(route);
        }
    }
    if let Some(f) = &a.ip_rules {
        ns.rules = read_lines(f, |l| parse_ip_rule(l, v6).map_err(|e| e.to_string()))?;
    }
    if let Some(f) = &a.ip_routes {
        ns.routes = read_lines(f, |l| parse_ip_route(l, l.contains(':') || v6).map_err(|e| e.to_string()))?;
    }
    if a.listen.is_empty() && a.sockets.is_none() {
        for &(on_ip, port) in &program.tproxy_ports {
            let addr = match on_ip {
                Some(ip) => ip,
                None if v6 => IpAddr::from([0u16; 8]),
                None => IpAddr::from([0u8; 4]),
            };
            for proto in [L4::Tcp, L4::Udp] {
                ns.sockets.push(Socket {
                    proto,
                    addr,
                    port,
                    transparent: true,
                    owner: "envoy (assumed)".into(),
                    uid: Some(1337),
                });
            }
        }
    }
    if let Some(f) = &a.sockets {
        let text = std::fs::read_to_string(f)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot read {}", f.display()))?;
        let found =
            parse_sockets(&text).map_err(|e| miette!("{}:{}:1: {}", f.display(), e.line, e.message))?;
        ns.sockets.extend(found);
    }
    for l in &a.listen {
        ns.sockets.push(parse_listen(l).map_err(|e| miette!("--listen {l}: {e}"))?);
    }
    Ok(ns)
}

fn read_lines<T>(path: &Path, f: impl Fn(&str) -> std::result::Result<Option<T>, String>) -> Result<Vec<T>> {
    let text = std::fs::read_to_string(path)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        match f(line) {
            Ok(Some(v)) => out.push(v),
            Ok(None) => {}
            Err(e) => return Err(miette!("{}:{}:1: {e}\n  {line}", path.display(), i + 1)),
        }
    }
    Ok(out)
}
