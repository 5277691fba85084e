//! `meshpath trace`: a mesh snapshot from the command line (one pod, plus peers), one
//! connection, every path it can take.

use std::process::ExitCode;

use clap::Args;
use miette::{miette, Result};

use meshpath::engine::{self, Destination, From, Mesh, Start};
use meshpath::netns::L4;
use meshpath::render::trace as render;
use meshpath::scenario::syntax::{parse_dst, parse_icmp_dst, parse_icmp_type, parse_src, parse_transport};

use super::args::{
    after_help, transport, Format, Formats, MeshArgs, OutputArgs, PickArgs, Proto, RequestArgs, SenderArgs,
    CONNECTION, OUTPUT,
};
use super::resolve::{self, load_scenario, syntax, PodOptions};
use super::{diagnose, output};

/// The connection to walk: the pod flags (or a scenario) and the connection flags (or a
/// scenario's probe). Shared by `trace` and `explain`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    #[command(flatten)]
    pub mesh: MeshArgs,
    #[command(flatten)]
    pub sender: SenderArgs,
    /// With --scenario: walk this probe of the scenario (its pod and connection; no --dst).
    #[arg(long, value_name = "NAME", requires = "scenario", help_heading = CONNECTION)]
    pub probe: Option<String>,
    /// Destination: IP:PORT ([IPv6]:PORT) or HOST:PORT (HOST from --name).
    #[arg(long, value_name = "DST", required_unless_present = "probe", help_heading = CONNECTION)]
    pub dst: Option<String>,
    /// The transport (default tcp): tcp, udp, icmp or icmpv6 (icmp towards an IPv6 address
    /// is ICMPv6). An ICMP destination is an IP address (no port).
    #[arg(long, value_name = "PROTO", value_parser = transport(), help_heading = CONNECTION)]
    pub proto: Option<Proto>,
    /// The ICMP message (with --proto icmp/icmpv6): a name as iptables writes it
    /// (echo-request, the default; time-exceeded; port-unreachable ...) or TYPE[/CODE].
    #[arg(long = "icmp-type", value_name = "TYPE", requires = "proto", help_heading = CONNECTION)]
    pub icmp_type: Option<String>,
    /// The source: IP[:PORT] (default: the pod's address, or the outside sender's; port 50000).
    #[arg(long, value_name = "IP[:PORT]", help_heading = CONNECTION)]
    pub src: Option<String>,
    #[command(flatten)]
    pub request: RequestArgs,
    #[command(flatten)]
    pub pick: PickArgs,
    /// A DNS query for NAME (send it to a DNS server: --proto udp --dst 10.96.0.10:53).
    #[arg(long = "dns-query", value_name = "NAME", conflicts_with_all = ["host", "path", "method", "header"], help_heading = CONNECTION)]
    pub dns_query: Option<String>,
}

const TRACE_FORMATS: Formats = Formats(&[Format::Text, Format::Json, Format::Dot, Format::Mermaid]);

#[derive(Debug, Args)]
#[command(after_help = after_help(
    "the paths were printed",
    None,
    "meshpath trace --pod productpage --iptables scenarios/istio-1.25-redirect.v4.iptables-save \\\n  \
     --envoy tests/fixtures/mesh/productpage.istio-1.25.config_dump.json --pod-ip 10.244.0.5 \\\n  \
     --listen tcp:0.0.0.0:9080 --dst 93.184.216.34:443 --sni example.com",
))]
#[command(
    override_usage = "meshpath trace --iptables FILE [--ip6tables FILE] --pod-ip IP [--envoy FILE] [OPTIONS] --dst DST\n       meshpath trace --scenario FILE [--pod NAME] [OPTIONS] --dst DST\n       meshpath trace --scenario FILE --probe NAME [--format FORMAT]"
)]
pub struct TraceArgs {
    #[command(flatten)]
    probe: ProbeArgs,
    /// text (one numbered line per step), json (meshpath.trace/v2, docs/trace.md), dot or
    /// mermaid (the paths as a graph).
    #[arg(long, value_name = "FORMAT", value_parser = TRACE_FORMATS, default_value = "text", help_heading = OUTPUT)]
    format: Format,
    #[command(flatten)]
    output: OutputArgs,
}

impl ProbeArgs {
    /// The mesh and the connection the flags describe, and the scenario probe's name when the
    /// connection is a probe (`--scenario F --probe NAME`).
    pub fn resolve(&self) -> Result<(Mesh, Start, Option<String>)> {
        if let Some(name) = &self.probe {
            return self.scenario_probe(name);
        }
        let Some(dst) = &self.dst else {
            return Err(miette!("give the destination with --dst IP:PORT (or --scenario F --probe NAME)"));
        };
        let icmp = matches!(self.proto, Some(Proto::Icmp | Proto::Icmpv6));
        let dst = syntax("--dst", if icmp { parse_icmp_dst(dst) } else { parse_dst(dst) })?;
        let rules_v6 = matches!(dst, Destination::Addr(a) if a.is_ipv6());
        let proto = match self.proto {
            None | Some(Proto::Tcp) => L4::Tcp,
            Some(Proto::Udp) => L4::Udp,
            Some(Proto::Icmp) => syntax("--proto", parse_transport("icmp", rules_v6))?,
            Some(Proto::Icmpv6) => syntax("--proto", parse_transport("icmpv6", rules_v6))?,
        };
        let icmp_type = match &self.icmp_type {
            Some(t) if proto.is_icmp() => Some(syntax("--icmp-type", parse_icmp_type(t, rules_v6))?),
            Some(_) => return Err(miette!("--icmp-type needs --proto icmp or icmpv6")),
            None => None,
        };
        let (mesh, pod) = resolve::mesh(&self.mesh, &PodOptions { rules_v6, ..PodOptions::default() })?;
        let istio = mesh.pods.get(pod).map(|p| p.istio).unwrap_or_default();
        let from = resolve::sender(&self.sender, &istio)?
            .unwrap_or(From::Process { uid: istio.app_uid, gid: istio.app_gid });
        let (client, request) = resolve::client(&self.request)?;
        let start = Start {
            pod,
            from,
            dst,
            proto,
            src: self.src.as_deref().map(|s| syntax("--src", parse_src(s))).transpose()?,
            client,
            request,
            dns_query: self.dns_query.clone(),
            pick: resolve::pick(&self.pick)?,
            icmp_type,
        };
        Ok((mesh, start, None))
    }

    fn scenario_probe(&self, name: &str) -> Result<(Mesh, Start, Option<String>)> {
        let connection_flags = self.dst.is_some()
            || self.src.is_some()
            || !self.request.is_empty()
            || self.pick.pick.is_some()
            || self.pick.random_value.is_some()
            || self.dns_query.is_some()
            || self.sender.from.is_some()
            || self.sender.uid.is_some()
            || self.proto.is_some()
            || self.icmp_type.is_some()
            || self.mesh.pod.pod.is_some();
        if connection_flags {
            return Err(miette!(
                "--probe {name} gives the connection and its pod; drop --pod, --dst and the other connection flags"
            ));
        }
        let Some(path) = &self.mesh.pod.scenario else {
            return Err(miette!("--probe needs --scenario FILE"));
        };
        let sc = load_scenario(path)?;
        let Some(probe) = sc.probe(name) else {
            return Err(miette!(
                "{}: no probe named `{name}`; the probes are: {}",
                path.display(),
                sc.probe_names().join(", ")
            ));
        };
        let start = probe.start.clone();
        let mut mesh = sc.mesh;
        mesh.names.extend(resolve::names(&self.mesh.names)?);
        Ok((mesh, start, Some(name.to_string())))
    }
}

pub fn run(a: TraceArgs) -> Result<ExitCode> {
    let (mesh, start, _) = a.probe.resolve()?;
    let trace = engine::trace(&mesh, &start).map_err(|e| diagnose::engine(e, &mesh))?;
    let out = match a.format {
        Format::Json => render::json(&trace).map_err(output::json_error)?,
        Format::Dot => render::dot(&trace),
        Format::Mermaid => render::mermaid(&trace),
        _ => render::text(&trace),
    };
    output::emit(&a.output, &out)?;
    Ok(ExitCode::SUCCESS)
}
