//! `meshpath netfilter check|trace`: the rule files and the pod flags, read into a pod by the
//! same builder as every other command, then one packet walked through its kernel.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use miette::{miette, Result};

use meshpath::engine::evidence;
use meshpath::engine::From;
use meshpath::netfilter::eval::{self, Entry, Probe};
use meshpath::netfilter::model::{Family, Protocol};
use meshpath::netfilter::parse::{ParseOptions, ReadError};
use meshpath::render::netfilter as render;
use meshpath::scenario::syntax::OUTSIDE_DEFAULT;

use super::args::{
    after_help, deprecated, Format, Formats, OutputArgs, PodArgs, Proto, SenderArgs, CONNECTION, OUTPUT, POD,
};
use super::resolve::{self, PodOptions};
use super::{diagnose, output};

const TRACE_EXAMPLE: &str =
    "meshpath netfilter trace --iptables scenarios/istio-1.25-redirect.v4.iptables-save \\\n  \
                             --pod-ip 10.244.0.5 --dst 10.96.0.10:80";

#[derive(Debug, Subcommand)]
pub enum NetfilterCommand {
    /// Parse and validate rule sets; print per table its chains, rules and DROP policies, and
    /// anything unsupported.
    #[command(after_help = after_help(
        "every file was read",
        None,
        "meshpath netfilter check scenarios/istio-1.25-redirect.v4.iptables-save",
    ))]
    Check(CheckArgs),
    /// Walk the first packet of a connection through the pod's kernel: netfilter, conntrack
    /// and NAT, routing, the loopback, TPROXY and socket lookup.
    #[command(after_help = after_help("the trace was printed", None, TRACE_EXAMPLE))]
    Trace(Box<TraceArgs>),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// iptables-save / ip6tables-save output, an istio-init log, or restore-style rules.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Keep unsupported matches and targets as "unknown" instead of failing.
    #[arg(long)]
    lenient: bool,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HookArg {
    Output,
    Prerouting,
}

const NETFILTER_FORMATS: Formats = Formats(&[Format::Text, Format::Json]);

#[derive(Debug, Args)]
#[command(mut_arg("pod_ip", |a| a.required_unless_present(clap::builder::Resettable::<clap::Id>::Reset)))]
#[command(
    override_usage = "meshpath netfilter trace --iptables FILE [--ip6tables FILE] --pod-ip IP [OPTIONS] --dst IP[:PORT]\n       meshpath netfilter trace --scenario FILE [--pod NAME] [OPTIONS] --dst IP[:PORT]"
)]
pub struct TraceArgs {
    #[command(flatten)]
    pod: PodArgs,
    #[command(flatten)]
    sender: SenderArgs,
    /// Deprecated: --from (a process sends: the output hook; outside: prerouting).
    #[arg(long, value_enum, hide = true, help_heading = CONNECTION)]
    hook: Option<HookArg>,
    /// The transport (default tcp); icmp sends an echo request (ICMPv6 for IPv6).
    #[arg(long, value_enum, value_name = "PROTO", help_heading = CONNECTION)]
    proto: Option<Proto>,
    /// The source: IP[:PORT] (default: the pod's address, or the outside sender's; port
    /// 50000). For a process sender without --pod-ip, the pod's address.
    #[arg(long, value_name = "IP[:PORT]", help_heading = CONNECTION)]
    src: Option<String>,
    /// Deprecated: --src IP:PORT.
    #[arg(long, value_name = "N", hide = true, help_heading = CONNECTION)]
    sport: Option<u16>,
    /// The destination: IP:PORT ([IPv6]:PORT), or IP for icmp. IPv6 walks --ip6tables.
    #[arg(long, value_name = "DST", help_heading = CONNECTION)]
    dst: String,
    /// Deprecated: --dst IP:PORT.
    #[arg(long, value_name = "N", hide = true, help_heading = CONNECTION)]
    dport: Option<u16>,
    /// The packet's mark at the start (SO_MARK), decimal or 0x hex.
    #[arg(long, value_name = "N", value_parser = parse_mark, default_value = "0", help_heading = CONNECTION)]
    mark: u32,
    /// The interface an outside packet arrives on.
    #[arg(long = "in", value_name = "IFACE", default_value = "eth0", help_heading = CONNECTION)]
    in_iface: String,
    /// Treat the namespace as a router (net.ipv4.ip_forward=1); off in a pod.
    #[arg(long, help_heading = POD)]
    forwarding: bool,
    /// Keep unsupported matches and targets as "unknown"; traces reaching them say so.
    #[arg(long, help_heading = POD)]
    lenient: bool,
    /// text (one numbered line per rule and decision) or json (meshpath.netfilter-trace/v1,
    /// docs/netfilter-trace.md).
    #[arg(long, value_name = "FORMAT", value_parser = NETFILTER_FORMATS, default_value = "text", help_heading = OUTPUT)]
    format: Format,
    #[command(flatten)]
    output: OutputArgs,
}

fn parse_mark(s: &str) -> std::result::Result<u32, String> {
    meshpath::netfilter::parse::number(s)
}

pub fn run(cmd: NetfilterCommand) -> Result<ExitCode> {
    match cmd {
        NetfilterCommand::Check(a) => check(a),
        NetfilterCommand::Trace(args) => trace(*args),
    }
}

fn check(a: CheckArgs) -> Result<ExitCode> {
    let mut out = String::new();
    for f in &a.files {
        let (text, parsed) =
            meshpath::netfilter::parse::read_rules(f, ParseOptions { lenient: a.lenient, family: None })
                .map_err(|e| match e {
                    ReadError::Parse(p) => miette::Report::new(p),
                    io => miette!("{io}"),
                })?;
        let program = evidence::compile(parsed.ruleset, &text).map_err(resolve::evidence)?;
        out.push_str(&render::check_text(&program.ruleset, &parsed.notes, &parsed.unknown));
        // A large rule set takes longer to free than the process takes to exit.
        std::mem::forget(program);
    }
    output::emit(&a.output, &out)?;
    Ok(ExitCode::SUCCESS)
}

/// `IP[:PORT]` with the port of a deprecated flag.
fn endpoint(flag: &str, s: &str, port_flag: &str, port: Option<u16>) -> Result<(IpAddr, Option<u16>)> {
    let (ip, p) = match s.parse::<SocketAddr>() {
        Ok(sa) => (sa.ip(), Some(sa.port())),
        Err(_) => (s.parse::<IpAddr>().map_err(|_| miette!("{flag} {s}: expected IP or IP:PORT"))?, None),
    };
    match (p, port) {
        (Some(_), Some(_)) => Err(miette!("{flag} {s} gives the port; drop {port_flag}")),
        (None, Some(n)) => {
            deprecated(port_flag, &format!("{flag} {}", meshpath::netfilter::eval::endpoint_of(ip, n)));
            Ok((ip, Some(n)))
        }
        (p, None) => Ok((ip, p)),
    }
}

fn trace(a: TraceArgs) -> Result<ExitCode> {
    let (dst, dport) = endpoint("--dst", &a.dst, "--dport", a.dport)?;
    let src = a.src.as_deref().map(|s| endpoint("--src", s, "--sport", a.sport)).transpose()?;
    if a.src.is_none() && a.sport.is_some() {
        return Err(miette!("--sport needs --src; give --src IP:PORT"));
    }
    let v6 = dst.is_ipv6();
    if let Some((s, _)) = src.filter(|(s, _)| s.is_ipv6() != v6) {
        return Err(miette!("--src {s} and --dst {dst} are of different address families"));
    }
    let proto = match a.proto.unwrap_or(Proto::Tcp) {
        Proto::Tcp => Protocol::Tcp,
        Proto::Udp => Protocol::Udp,
        Proto::Icmp if v6 => Protocol::Icmpv6,
        Proto::Icmp => Protocol::Icmp,
        Proto::Icmpv6 if v6 => Protocol::Icmpv6,
        Proto::Icmpv6 => return Err(miette!("--proto icmpv6 needs an IPv6 --dst")),
    };
    let with_ports = matches!(proto, Protocol::Tcp | Protocol::Udp);
    let dport = match (dport, with_ports) {
        (Some(p), true) => p,
        (None, true) => return Err(miette!("give the destination port: --dst IP:PORT")),
        (_, false) => 0,
    };
    let istio = meshpath::istio::Conventions::default();
    let from = sender(&a, &istio)?;
    let outside = matches!(from, From::Outside { .. });
    let opts = PodOptions {
        rules_v6: v6,
        default_addr: src.map(|(ip, _)| ip).filter(|ip| !outside && !ip.is_loopback()),
        interfaces: if a.in_iface == "eth0" || a.in_iface == "lo" {
            Vec::new()
        } else {
            vec![a.in_iface.clone()]
        },
        forwarding: a.forwarding,
        lenient: a.lenient,
    };
    if outside && a.pod.pod_ip.is_empty() && a.pod.local.is_empty() && a.pod.scenario.is_none() {
        return Err(miette!("give the pod's own addresses with --pod-ip (REDIRECT and TPROXY need them)"));
    }
    let pod = resolve::pod(&a.pod, &opts)?;
    let family = if v6 { Family::V6 } else { Family::V4 };
    let Some(program) = pod.program(v6) else {
        let flag = if family == Family::V6 { "--ip6tables" } else { "--iptables" };
        return Err(miette!("pod {} has no rule set for {dst}: give it with {flag}", pod.name));
    };
    // `app` and `envoy` are the pod's identities (its proxy uid may come from the evidence).
    let from = match (a.sender.from.as_deref(), from) {
        (Some(who @ ("app" | "envoy")), From::Process { .. }) => {
            resolve::syntax("--from", meshpath::scenario::syntax::parse_from(who, &pod.istio))?
        }
        (None, From::Process { .. }) if a.hook.is_none() && a.sender.uid.is_none() => {
            From::Process { uid: pod.istio.app_uid, gid: pod.istio.app_gid }
        }
        (_, from) => from,
    };
    let (entry, uid, gid, src_ip) = match from {
        From::Process { uid, gid } => {
            (Entry::Output, uid, gid, src.map_or_else(|| pod.source_for(dst), |s| s.0))
        }
        From::Outside { src: ip } => (Entry::Prerouting, 0, 0, src.map_or(ip, |s| s.0)),
    };
    if src_ip.is_ipv6() != v6 {
        return Err(miette!(
            "the source {src_ip} and --dst {dst} are of different address families; give --src"
        ));
    }
    let sport = if with_ports { src.and_then(|s| s.1).unwrap_or(50000) } else { 0 };
    let mut probe = Probe::new(entry, proto, src_ip, sport, dst, dport);
    probe.uid = uid;
    probe.gid = gid;
    probe.mark = a.mark;
    probe.in_iface = a.in_iface.clone();
    let text = pod.rules_text(v6).unwrap_or("");
    let trace = eval::trace(program, &pod.netns, &probe).map_err(|e| diagnose::eval(e, |_| Some(text)))?;
    let out = match a.format {
        Format::Json => render::trace_json(&trace).map_err(output::json_error)?,
        _ => {
            let mut s = render::trace_text(&trace, &probe, &program.ruleset, text);
            s.push_str(&meshpath::render::pod::assumptions(&pod.assumed));
            s
        }
    };
    output::emit(&a.output, &out)?;
    // A large rule set takes longer to free than the process takes to exit.
    std::mem::forget(pod);
    Ok(ExitCode::SUCCESS)
}

/// The sender: --from (or the deprecated --uid/--gid), and the deprecated --hook. `--hook
/// output` without a sender keeps its old meaning, uid 0 gid 0.
fn sender(a: &TraceArgs, istio: &meshpath::istio::Conventions) -> Result<From> {
    let given = resolve::sender(&a.sender, istio)?;
    let Some(hook) = a.hook else {
        return Ok(given.unwrap_or(From::Process { uid: istio.app_uid, gid: istio.app_gid }));
    };
    match (hook, given) {
        (HookArg::Output, None) => {
            deprecated("--hook output", "--from uid:0");
            Ok(From::Process { uid: 0, gid: 0 })
        }
        (HookArg::Output, Some(f @ From::Process { .. })) => {
            deprecated("--hook output", "--from");
            Ok(f)
        }
        (HookArg::Prerouting, None) => {
            deprecated("--hook prerouting", "--from outside");
            Ok(From::Outside { src: OUTSIDE_DEFAULT })
        }
        (HookArg::Prerouting, Some(f @ From::Outside { .. })) => {
            deprecated("--hook prerouting", "--from outside");
            Ok(f)
        }
        (_, Some(_)) => {
            Err(miette!("--hook contradicts the sender; drop --hook (--from says where the packet starts)"))
        }
    }
}
