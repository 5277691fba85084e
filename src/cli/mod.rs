//! Command-line front end: clap argument structs (what the user typed, [`args`] for the groups
//! every command shares) converted once to validated library values ([`resolve`]), and the
//! wiring from them to the library and its renderers. One file per command group.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod args;
mod check;
mod diagnose;
mod envoy;
mod explain;
mod netfilter;
pub mod output;
mod replay;
pub mod resolve;
mod routecheck;
mod trace;

/// Where does this packet really go inside a pod with an Istio sidecar, and why?
#[derive(Debug, Parser)]
#[command(name = "meshpath", version, about, long_about = None, after_help = EXIT_STATUS)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub input: args::InputLimitArgs,
}

const EXIT_STATUS: &str = "Exit status:
  0  success
  1  the question was answered negatively (check: a probe failed; route-check: a test failed)
  2  bad input or usage: a diagnostic names the file, line and column

Spellings of earlier releases (they still work, with a warning on standard error):
  --local IP                 now --pod-ip IP
  --dns HOST=IP              now --name HOST=IP
  --random-value N           now --pick random-value=N
  --uid N --gid G            now --from uid:N:G
  --sport N, --dport N       now --src IP:PORT, --dst IP:PORT
  --rules FILE               now --iptables FILE (--ip6tables FILE for IPv6)
  --hook output|prerouting   now --from (a process: output; outside: prerouting)
  --format table             now --format text";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read iptables-save rule sets and walk packets through the kernel's netfilter path.
    #[command(subcommand)]
    Netfilter(netfilter::NetfilterCommand),
    /// Read Envoy /config_dump files: summarise them, or evaluate a connection as Envoy would.
    #[command(subcommand)]
    Envoy(envoy::EnvoyCommand),
    /// Walk a connection through a pod's kernel and Envoy, across pods, and say how it ends.
    Trace(Box<trace::TraceArgs>),
    /// Explain why a connection goes the way it does: the decisive steps, the alternatives
    /// that lost, and re-simulated counterfactuals (text, Markdown or one HTML page).
    Explain(Box<explain::ExplainArgs>),
    /// Walk every flow of a pcap/pcapng capture through a pod: one row per flow, then a summary.
    Replay(Box<replay::ReplayArgs>),
    /// Run every probe of scenario files and compare with their expectations (CI).
    Check(check::CheckArgs),
    /// Check a route table against Envoy router_check_tool test files (a drop-in for it).
    RouteCheck(routecheck::RouteCheckArgs),
}

/// Runs one command; `Err` is a diagnostic for standard error (exit code 2).
pub fn run(cli: Cli) -> miette::Result<ExitCode> {
    cli.input.apply();
    match cli.command {
        Command::Netfilter(cmd) => netfilter::run(cmd),
        Command::RouteCheck(args) => routecheck::run(args),
        Command::Check(args) => check::run(args),
        Command::Trace(args) => trace::run(*args),
        Command::Explain(args) => explain::run(*args),
        Command::Replay(args) => replay::run(*args),
        Command::Envoy(cmd) => envoy::run(cmd),
    }
}
