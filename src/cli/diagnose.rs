//! Library errors that carry a position but are not diagnostics themselves, turned into
//! located diagnostics at the edge: the position and the offending line reach the user.

use meshpath::diagnostic::FileDiagnostic;
use meshpath::engine::{EngineError, Mesh};
use meshpath::netfilter::eval::EvalError;

/// An error of the walk; a rule it points at is shown from the rule set's text.
pub fn engine(e: EngineError, mesh: &Mesh) -> miette::Report {
    match e {
        EngineError::Netfilter(inner) => {
            let text = |file: &str| {
                mesh.pods.iter().find_map(|p| {
                    [false, true].into_iter().find_map(|v6| {
                        let prog = p.program(v6)?;
                        (prog.ruleset.source == file).then(|| p.rules_text(v6)).flatten()
                    })
                })
            };
            eval(inner, text)
        }
        other => miette::miette!("{other}"),
    }
}

/// An error of the netfilter evaluator; `text` finds a rule file's text by its name.
pub fn eval<'a>(e: EvalError, text: impl Fn(&str) -> Option<&'a str>) -> miette::Report {
    match &e {
        EvalError::TooDeep { file, line, limit } => match text(file) {
            Some(t) => miette::Report::new(
                FileDiagnostic::at_line(
                    file,
                    t,
                    *line as usize,
                    format!("jumps nest deeper than {limit} chains"),
                )
                .with_help("the kernel refuses rule sets whose jumps nest this deep"),
            ),
            None => miette::miette!("{e}"),
        },
        _ => miette::miette!("{e}"),
    }
}
