//! The `meshpath` binary: argument parsing and wiring only. All logic lives in the library.
//!
//! Exit codes: 0 success; 1 the question was answered negatively (a check found problems, a
//! probe failed); 2 bad input or usage (a diagnostic was printed).

#![forbid(unsafe_code)]

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    // Unwrapped lines keep `file:line:col: message` on one line, for editors and grep.
    let _ =
        miette::set_hook(Box::new(|_| Box::new(miette::MietteHandlerOpts::new().wrap_lines(false).build())));
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        // The reader of standard output went away (`meshpath ... | head`): a quiet success.
        Err(report) if cli::output::is_closed_pipe(&report) => std::process::ExitCode::SUCCESS,
        Err(report) => {
            eprintln!("{report:?}");
            std::process::ExitCode::from(2)
        }
    }
}
