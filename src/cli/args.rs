//! The argument groups every command shares, as the user types them (the low level): one
//! definition, one spelling and one help text per idea. [`super::resolve`] turns them into
//! validated library values once (the high level). Deprecated spellings are hidden flags that
//! keep working for one release and print one `warning: --x is deprecated; use --y` line.

use std::ffi::OsStr;
use std::path::PathBuf;

use clap::builder::{PossibleValue, TypedValueParser};
use clap::{Args, ValueEnum};

/// The help headings: the pod, the rest of the mesh, the connection, the report.
pub const POD: &str = "Pod (required: --iptables and/or --ip6tables, and --pod-ip; or --scenario)";
pub const MESH: &str = "Other pods and names";
pub const CONNECTION: &str = "Connection";
pub const OUTPUT: &str = "Output";

/// Every output format of every command (each command accepts some of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Csv,
    Dot,
    Mermaid,
    Markdown,
    Html,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Dot => "dot",
            Format::Mermaid => "mermaid",
            Format::Markdown => "markdown",
            Format::Html => "html",
        }
    }
}

/// The `--format` values one command accepts; `table` is read as `text` with a deprecation
/// warning (the one spelling of the default everywhere is `text`).
#[derive(Debug, Clone, Copy)]
pub struct Formats(pub &'static [Format]);

impl TypedValueParser for Formats {
    type Value = Format;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<Format, clap::Error> {
        let s = value.to_string_lossy();
        if s == "table" && self.0.contains(&Format::Text) {
            deprecated("--format table", "--format text");
            return Ok(Format::Text);
        }
        if let Some(f) = self.0.iter().find(|f| f.name() == s) {
            return Ok(*f);
        }
        let mut err = clap::Error::new(clap::error::ErrorKind::InvalidValue).with_cmd(cmd);
        use clap::error::{ContextKind, ContextValue};
        if let Some(arg) = arg {
            err.insert(ContextKind::InvalidArg, ContextValue::String(arg.to_string()));
        }
        err.insert(ContextKind::InvalidValue, ContextValue::String(s.into_owned()));
        err.insert(
            ContextKind::ValidValue,
            ContextValue::Strings(self.0.iter().map(|f| f.name().to_string()).collect()),
        );
        Err(err)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(self.0.iter().map(|f| PossibleValue::new(f.name()))))
    }
}

/// Prints the one deprecation line for `old` (on standard error).
pub fn deprecated(old: &str, new: &str) {
    eprintln!("warning: {old} is deprecated; use {new}");
}

/// The transport of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Proto {
    Tcp,
    Udp,
    /// An ICMP message (ICMPv6 for IPv6 addresses).
    Icmp,
    /// An ICMPv6 message.
    Icmpv6,
}

/// The transports of a connection walked through the pods (`trace`, `explain`).
pub fn transport() -> impl TypedValueParser<Value = Proto> {
    clap::builder::PossibleValuesParser::new(["tcp", "udp", "icmp", "icmpv6"]).map(|s| match s.as_str() {
        "udp" => Proto::Udp,
        "icmp" => Proto::Icmp,
        "icmpv6" => Proto::Icmpv6,
        _ => Proto::Tcp,
    })
}

/// The help text of `--listen`, the same in every command.
pub const LISTEN_HELP: &str =
    "A socket listening in the pod: tcp:IP:PORT[:OPTION]... or udp:... (IPv6 in brackets); \
OPTION is `transparent` (IP_TRANSPARENT), a uid, or the owner's name (default `app`). Repeatable. \
Without a config dump and without any socket, Envoy is assumed on the rules' TPROXY ports";

/// One pod's evidence: the files collected from it, or a scenario file's pod.
///
/// Required: the rules (--iptables and/or --ip6tables) and the addresses (--pod-ip), or a
/// scenario (--scenario).
#[derive(Debug, Args)]
#[command(next_help_heading = POD)]
pub struct PodArgs {
    /// A scenario file (docs/scenarios.md): its pods and names instead of the pod flags.
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// The pod's name (in reports; default `pod`). With --scenario: which of its pods
    /// (default the first).
    #[arg(long, value_name = "NAME")]
    pub pod: Option<String>,
    /// The pod's iptables-save output (or restore-style rules, or an istio-init log).
    #[arg(long, value_name = "FILE", required_unless_present_any = ["ip6tables", "scenario", "rules"])]
    pub iptables: Option<PathBuf>,
    /// The pod's ip6tables-save output, for IPv6.
    #[arg(long, value_name = "FILE")]
    pub ip6tables: Option<PathBuf>,
    /// Deprecated: --iptables FILE (or --ip6tables FILE for an IPv6 destination).
    #[arg(long, value_name = "FILE", hide = true)]
    pub rules: Option<PathBuf>,
    /// The pod's Envoy /config_dump (JSON or YAML; with include_eds for endpoints). Envoy's
    /// sockets are its listeners.
    #[arg(long, value_name = "FILE")]
    pub envoy: Option<PathBuf>,
    /// The pod's addresses on eth0, IP or IP/LEN, in the order they were added (comma-separated
    /// or repeated); 127.0.0.1/8 and ::1 on lo are implied.
    #[arg(long = "pod-ip", value_name = "IP", required_unless_present_any = ["scenario", "local"])]
    pub pod_ip: Vec<String>,
    /// Deprecated: --pod-ip IP.
    #[arg(long, value_name = "IP", hide = true)]
    pub local: Vec<String>,
    #[arg(long, value_name = "SOCKET", help = LISTEN_HELP)]
    pub listen: Vec<String>,
    /// The pod's sockets from `ss -ltnup` or `netstat -lntup` output (after --listen's).
    #[arg(long, value_name = "FILE")]
    pub sockets: Option<PathBuf>,
    /// An `ip rule` added to the kernel's defaults (e.g. "fwmark 0x539 lookup 133"); any
    /// ip rule or route evidence replaces Istio's assumed TPROXY routing.
    #[arg(long = "ip-rule", value_name = "RULE")]
    pub ip_rule: Vec<String>,
    /// An `ip route` added to the kernel's routes (e.g. "local default dev lo table 133").
    #[arg(long = "ip-route", value_name = "ROUTE")]
    pub ip_route: Vec<String>,
    /// Output of `ip rule show`: every policy rule (replaces the kernel's defaults).
    #[arg(long = "ip-rules", value_name = "FILE")]
    pub ip_rules: Option<PathBuf>,
    /// Output of `ip route show table all`: every route (replaces the kernel's).
    #[arg(long = "ip-routes", value_name = "FILE")]
    pub ip_routes: Option<PathBuf>,
    /// The uid the proxy (Envoy, pilot-agent) runs as. Default: the uid `ss -e` shows on
    /// Envoy's or pilot-agent's sockets, else the one the rules exempt
    /// (`-m owner --uid-owner N -j RETURN`), else Istio's 1337.
    #[arg(long = "proxy-uid", value_name = "N")]
    pub proxy_uid: Option<u32>,
    /// The gid the proxy runs as. Default: the one the rules exempt (`--gid-owner N`), else 1337.
    #[arg(long = "proxy-gid", value_name = "N")]
    pub proxy_gid: Option<u32>,
    /// The pod's /etc/resolv.conf: pilot-agent forwards names it does not know to its first
    /// nameserver (without it: to the query's original destination).
    #[arg(long = "resolv-conf", value_name = "FILE")]
    pub resolv_conf: Option<PathBuf>,
    /// The pod's neighbour table (`ip neigh show` output): a valid entry for a next hop spares
    /// its resolution (ARP, IPv6 neighbour discovery through ip6tables); FAILED is unreachable.
    #[arg(long = "neigh", value_name = "FILE")]
    pub neigh: Option<PathBuf>,
    /// A process in the pod that forwards DNS: LISTEN=UPSTREAM, each IP[:PORT] (port 53 by
    /// default), e.g. 127.0.0.53=10.96.0.10. Repeatable.
    #[arg(long = "forwarder", value_name = "LISTEN=UPSTREAM")]
    pub forwarder: Vec<String>,
}

/// A pod and the rest of the mesh: other pods and the name table.
#[derive(Debug, Args)]
pub struct MeshArgs {
    #[command(flatten)]
    pub pod: PodArgs,
    /// Another pod: NAME=IP,IPTABLES,ENVOY[,LISTEN;LISTEN...] (ENVOY `-` for none; LISTEN as
    /// --listen). Repeatable.
    #[arg(long, value_name = "SPEC", help_heading = MESH)]
    pub peer: Vec<String>,
    #[command(flatten)]
    pub names: NameArgs,
}

/// The name table.
#[derive(Debug, Args)]
#[command(next_help_heading = MESH)]
pub struct NameArgs {
    /// What DNS answers for a host: HOST=IP[,IP...] (Kubernetes services, ServiceEntry hosts,
    /// STRICT_DNS and LOGICAL_DNS cluster hosts). Repeatable.
    #[arg(long = "name", value_name = "HOST=IP")]
    pub names: Vec<String>,
    /// Deprecated: --name HOST=IP.
    #[arg(long = "dns", value_name = "HOST=IP", hide = true)]
    pub dns: Vec<String>,
}

/// Who sends the connection.
#[derive(Debug, Args)]
#[command(next_help_heading = CONNECTION)]
pub struct SenderArgs {
    /// Who sends: app (uid 1000), envoy (the proxy, uid 1337), uid:N[:GID] (GID defaults to
    /// N), or outside[:IP] (arrives on eth0; default 192.0.2.10). Default: app.
    #[arg(long, value_name = "WHO")]
    pub from: Option<String>,
    /// Deprecated: --from uid:N[:GID].
    #[arg(long, value_name = "N", hide = true)]
    pub uid: Option<u32>,
    /// Deprecated: --from uid:N:GID.
    #[arg(long, value_name = "N", hide = true, requires = "uid")]
    pub gid: Option<u32>,
}

/// How weighted choices are made.
#[derive(Debug, Args)]
#[command(next_help_heading = CONNECTION)]
pub struct PickArgs {
    /// How weighted choices are made: all (every branch with its weight; the default), first
    /// (the first endpoint; weighted clusters as Envoy with value 0), or random-value=N
    /// (Envoy's choice for that random value).
    #[arg(long, value_name = "HOW")]
    pub pick: Option<String>,
    /// Deprecated: --pick random-value=N.
    #[arg(long = "random-value", value_name = "N", hide = true, conflicts_with = "pick")]
    pub random_value: Option<u64>,
}

/// What the client sends first: a TLS ClientHello or an HTTP request.
#[derive(Debug, Args)]
#[command(next_help_heading = CONNECTION)]
pub struct RequestArgs {
    /// TLS SNI (makes the connection TLS).
    #[arg(long, value_name = "NAME")]
    pub sni: Option<String>,
    /// TLS ALPN protocols in client order (makes the connection TLS).
    #[arg(long, value_name = "A,B", value_delimiter = ',')]
    pub alpn: Vec<String>,
    /// HTTP Host / :authority (makes the connection HTTP/1.1 unless TLS).
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// HTTP path (default / when any HTTP flag is given).
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,
    /// HTTP method (default GET when any HTTP flag is given).
    #[arg(long, value_name = "METHOD")]
    pub method: Option<String>,
    /// An HTTP request header, NAME:VALUE. Repeatable.
    #[arg(long, value_name = "K:V")]
    pub header: Vec<String>,
    /// The client sends nothing until the server speaks (MySQL, SMTP ...): listener filters
    /// that wait for client bytes wait (see docs/trace.md, "stalled").
    #[arg(long, conflicts_with_all = ["sni", "alpn", "host", "path", "method", "header"])]
    pub server_first: bool,
}

impl RequestArgs {
    pub fn is_empty(&self) -> bool {
        self.sni.is_none()
            && self.alpn.is_empty()
            && self.host.is_none()
            && self.path.is_none()
            && self.method.is_none()
            && self.header.is_empty()
            && !self.server_first
    }
}

/// Where a report goes.
#[derive(Debug, Args)]
#[command(next_help_heading = OUTPUT)]
pub struct OutputArgs {
    /// Write the report to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// The exit status paragraph of a command's help, and its example.
pub fn after_help(ok: &str, negative: Option<&str>, example: &str) -> String {
    let mut s = format!("Exit status:\n  0  {ok}\n");
    if let Some(n) = negative {
        s.push_str(&format!("  1  {n}\n"));
    }
    s.push_str("  2  bad input or usage: a diagnostic names the file, line and column\n\nExample:\n");
    for line in example.lines() {
        s.push_str("  ");
        s.push_str(line);
        s.push('\n');
    }
    s
}

/// What any command reads at most, and from where a scenario may read (docs/reliability.md).
#[derive(Debug, Clone, Args)]
pub struct InputLimitArgs {
    /// Refuse input files larger than SIZE (bytes, or with K, M, G: 512M, 2G) [default: 512M]
    #[arg(long, global = true, value_name = "SIZE", value_parser = parse_size, help_heading = INPUT)]
    pub max_input_size: Option<u64>,
    /// Files named by scenario files must lie under DIR [default: the working directory when
    /// the scenario is under it, else the scenario's folder]
    #[arg(long, global = true, value_name = "DIR", help_heading = INPUT)]
    pub root: Option<PathBuf>,
}

/// The help heading of the input limits.
pub const INPUT: &str = "Input limits";

impl InputLimitArgs {
    /// Sets the process-wide limits the library reads with.
    pub fn apply(&self) {
        if let Some(n) = self.max_input_size {
            meshpath::util::read::set_max_input(n);
        }
        meshpath::scenario::files::set_root(self.root.clone());
    }
}

/// `SIZE`: bytes, or a number with K, M or G (binary multiples).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1u64 << 10),
        Some((i, 'm' | 'M')) => (&t[..i], 1 << 20),
        Some((i, 'g' | 'G')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("`{s}` is not a size: write bytes, or a number with K, M or G (512M)"))
}

#[cfg(test)]
mod size_tests {
    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(super::parse_size("512M"), Ok(512 << 20));
        assert_eq!(super::parse_size("2g"), Ok(2 << 30));
        assert_eq!(super::parse_size("100"), Ok(100));
        assert!(super::parse_size("lots").is_err());
    }
}
