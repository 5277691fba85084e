//! `meshpath netfilter check|trace`.

use std::process::ExitCode;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum NetfilterCommand {
    /// Parse and validate rule sets; print tables, chains, rules and anything unsupported.
    Check {
        /// iptables-save / ip6tables-save output, an istio-init log, or restore-style rules.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
}

pub fn run(cmd: NetfilterCommand) -> miette::Result<ExitCode> {
    match cmd {
        NetfilterCommand::Check { files } => {
            let _ = files;
            Ok(ExitCode::SUCCESS)
        }
    }
}
