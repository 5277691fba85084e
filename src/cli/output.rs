//! The one way commands write their report: to `--output FILE` ([`emit`]) or to standard
//! output.
//!
//! Every command writes its report through [`emit`] or [`print`] (or maps its own write
//! errors with [`stdout_error`]): when the reader of a pipe goes away (`meshpath ... | head`), the write
//! fails with `BrokenPipe`, which becomes [`ClosedPipe`]; `main` ends such a run quietly with
//! status 0, as `grep` does. Any other write error is a diagnostic (status 2).

use std::io::Write;

use meshpath::util::escape::{escape_report, escape_report_as};

use super::args::OutputArgs;

/// Writes `report` to the file `--output` names, or to standard output; control characters
/// from the input (a probe name, a captured SNI or Host) are escaped on the way
/// ([`escape_report`]).
pub fn emit(to: &OutputArgs, report: &str) -> miette::Result<()> {
    let report = escape_report(report);
    let report = report.as_ref();
    match &to.output {
        Some(path) => {
            std::fs::write(path, report).map_err(|e| miette::miette!("cannot write {}: {e}", path.display()))
        }
        None => print(report),
    }
}

/// As [`emit`], for a report that `write` hands over in pieces of whole lines (a JSON
/// document when `json`): a long report (`replay`'s table of every flow) is never held whole.
pub fn emit_pieces(
    to: &OutputArgs,
    json: bool,
    write: impl FnOnce(&mut dyn FnMut(&str) -> std::io::Result<()>) -> std::io::Result<()>,
) -> miette::Result<()> {
    match &to.output {
        Some(path) => {
            let failed = |e: std::io::Error| miette::miette!("cannot write {}: {e}", path.display());
            let mut w = std::io::BufWriter::new(std::fs::File::create(path).map_err(failed)?);
            write(&mut |piece| w.write_all(escape_report_as(piece, json).as_bytes()))
                .and_then(|()| w.flush())
                .map_err(failed)
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            write(&mut |piece| out.write_all(escape_report_as(piece, json).as_bytes()))
                .and_then(|()| out.flush())
                .map_err(stdout_error)
        }
    }
}

/// Bytes written (UTF-8 text, such as a JSON document) handed on in pieces of whole lines of
/// about 64 KiB; [`LinePieces::finish`] hands on the rest.
pub struct LinePieces<'p> {
    buf: Vec<u8>,
    piece: &'p mut dyn FnMut(&str) -> std::io::Result<()>,
}

impl<'p> LinePieces<'p> {
    pub fn new(piece: &'p mut dyn FnMut(&str) -> std::io::Result<()>) -> Self {
        LinePieces { buf: Vec::new(), piece }
    }

    fn hand_on(&mut self, upto: usize) -> std::io::Result<()> {
        let rest = self.buf.split_off(upto);
        let text = std::str::from_utf8(&self.buf).map_err(std::io::Error::other)?;
        (self.piece)(text)?;
        self.buf = rest;
        Ok(())
    }

    pub fn finish(mut self) -> std::io::Result<()> {
        let all = self.buf.len();
        self.hand_on(all)
    }
}

impl Write for LinePieces<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= 64 * 1024 {
            if let Some(end) = self.buf.iter().rposition(|&b| b == b'\n') {
                self.hand_on(end + 1)?;
            }
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Standard output was closed by its reader: not an error, the run ends quietly.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("standard output was closed")]
pub struct ClosedPipe;

/// Writes `text` to standard output and flushes it, control characters escaped.
pub fn print(text: impl AsRef<str>) -> miette::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    out.write_all(escape_report(text.as_ref()).as_bytes()).and_then(|()| out.flush()).map_err(stdout_error)
}

/// A failed write to standard output as a report: [`ClosedPipe`] for a closed pipe.
pub fn stdout_error(e: std::io::Error) -> miette::Report {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        miette::Report::new(ClosedPipe)
    } else {
        miette::miette!("cannot write to standard output: {e}")
    }
}

/// A JSON document that could not be serialised: an error (status 2), never a document.
pub fn json_error(e: serde_json::Error) -> miette::Report {
    miette::miette!("cannot write the JSON document: {e}")
}

/// Whether `report` is a closed standard output (the run ends quietly with status 0).
pub fn is_closed_pipe(report: &miette::Report) -> bool {
    report.downcast_ref::<ClosedPipe>().is_some()
}
