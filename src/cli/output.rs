//! Where a report goes: standard output, or the file `--output` names. A reader that stops
//! early (`meshpath ... | head`) is not an error.

use std::io::Write;

use miette::{miette, Result};

use super::args::OutputArgs;

/// Writes `report` to `--output FILE`, or to standard output.
pub fn emit(to: &OutputArgs, report: &str) -> Result<()> {
    match &to.output {
        Some(path) => {
            std::fs::write(path, report).map_err(|e| miette!("cannot write {}: {e}", path.display()))
        }
        None => stdout(report),
    }
}

/// Writes `text` to standard output; a closed pipe ends the output quietly.
pub fn stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(miette!("cannot write the report: {e}")),
        _ => Ok(()),
    }
}
