//! Running a scenario's probes: each probe's trace, compared with its expectations.

use crate::engine::{self, MeshTrace};

use super::expect::{compare, from_trace};
use super::model::Expect;
use super::update::{self, Edit, UpdateError};
use super::Scenario;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    /// The probe has no `expect`: traced only.
    NoExpectations,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::NoExpectations => "none",
        }
    }
}

/// What happened to one probe.
#[derive(Debug, Clone)]
pub struct ProbeOutcome {
    pub name: String,
    pub verdict: Verdict,
    /// One sentence per difference (a failed walk is one mismatch too).
    pub mismatches: Vec<String>,
    /// `None` when the walk itself failed (`error` says why).
    pub trace: Option<MeshTrace>,
    pub error: Option<String>,
}

/// Traces every probe of `sc`, in file order.
pub fn run(sc: &Scenario, reason: super::expect::ReasonWords) -> Vec<ProbeOutcome> {
    sc.probes
        .iter()
        .map(|p| match engine::trace(&sc.mesh, &p.start) {
            Err(e) => ProbeOutcome {
                name: p.name.clone(),
                verdict: Verdict::Fail,
                mismatches: vec![format!("the walk failed: {e}")],
                trace: None,
                error: Some(e.to_string()),
            },
            Ok(t) => {
                let (verdict, mismatches) = match &p.expect {
                    None => (Verdict::NoExpectations, Vec::new()),
                    Some(x) => {
                        let m = compare(x, &t, reason);
                        (if m.is_empty() { Verdict::Pass } else { Verdict::Fail }, m)
                    }
                };
                ProbeOutcome { name: p.name.clone(), verdict, mismatches, trace: Some(t), error: None }
            }
        })
        .collect()
}

/// One scenario file's part of a `check` run: its outcomes, or why it could not be read.
#[derive(Debug, Clone)]
pub struct FileReport {
    pub path: std::path::PathBuf,
    /// `name:`, or the file name when the file could not be read.
    pub name: String,
    pub description: Option<String>,
    pub outcomes: Vec<ProbeOutcome>,
    /// Why the file could not be read (its outcomes are empty).
    pub error: Option<String>,
    /// The expectations `--update` rewrote.
    pub changes: Vec<Change>,
}

/// A whole `check` run: every file, and how many paths or files could not be read.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    pub files: Vec<FileReport>,
    pub unreadable: usize,
    /// Expectations were rewritten (`--update`).
    pub update: bool,
}

impl CheckReport {
    /// How many probes had this verdict.
    pub fn count(&self, v: Verdict) -> usize {
        self.files.iter().flat_map(|f| &f.outcomes).filter(|o| o.verdict == v).count()
    }

    /// Probes that still fail: with `--update`, only those whose walk could not be rewritten.
    pub fn failing(&self) -> usize {
        let still = |o: &&ProbeOutcome| o.verdict == Verdict::Fail && (!self.update || o.trace.is_none());
        self.files.iter().flat_map(|f| &f.outcomes).filter(still).count()
    }
}

/// One expectation `update` rewrote.
#[derive(Debug, Clone)]
pub struct Change {
    pub probe: String,
    pub old: Option<Expect>,
    pub new: Expect,
}

/// The scenario's text with new expectations for every probe that failed or had none (and
/// whose walk succeeded); passing probes are never touched. The new text is read back before
/// it is returned, so a rewrite can never leave an unreadable file.
pub fn update(sc: &Scenario, outcomes: &[ProbeOutcome]) -> Result<(String, Vec<Change>), UpdateError> {
    let mut news = Vec::new();
    for (i, o) in outcomes.iter().enumerate() {
        if o.verdict == Verdict::Pass {
            continue;
        }
        let (Some(t), Some(spec), Some(p)) = (&o.trace, sc.file.probes.value.get(i), sc.probes.get(i)) else {
            continue;
        };
        news.push((spec, p, from_trace(t)));
    }
    let edits: Vec<Edit<'_>> = news
        .iter()
        .map(|(spec, _, x)| Edit {
            name_line: spec.name.referenced.line() as usize,
            name_col: spec.name.referenced.column() as usize,
            expect: x,
        })
        .collect();
    let text = update::rewrite(&sc.text, &edits)?;
    if let Err(e) = serde_saphyr::from_str::<super::ScenarioFile>(&text) {
        return Err(UpdateError { line: 0, message: format!("the rewritten file would not read back: {e}") });
    }
    let changes = news
        .into_iter()
        .map(|(_, p, x)| Change { probe: p.name.clone(), old: p.expect.clone(), new: x })
        .collect();
    Ok((text, changes))
}
