//! The `meshpath` binary: argument parsing and wiring only. All logic lives in the library.
//!
//! Exit codes: 0 success; 1 the question was answered negatively (a check found problems, a
//! probe failed); 2 bad input or usage (a diagnostic was printed).

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(report) => {
            eprintln!("{report:?}");
            std::process::ExitCode::from(2)
        }
    }
}
