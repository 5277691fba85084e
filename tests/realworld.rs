//! The real-world suite (tests/realworld/README.md): incidents from public threads, each a
//! folder `tests/realworld/<case>/` with `case.yaml` (the link, what was reported, the cause the
//! thread established, where the inputs come from, and the known gaps), a README and scenario
//! files whose expectations say what happened in reality.
//!
//! Every probe of every scenario file of a case is run as `meshpath check` runs it. A probe
//! passes, or it is a known gap: `case.yaml` lists it under `gaps` with the capability meshpath
//! lacks (a whole file when meshpath cannot read it yet, say a key it does not know). A gap that
//! starts passing fails the suite with "remove the mark", so the list stays honest. The list of
//! gaps is printed (`cargo test --test realworld -- --nocapture`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use meshpath::scenario::{self, run::Verdict};
use serde::Deserialize;

const SUITE: &str = "tests/realworld";

/// `case.yaml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    title: String,
    /// The public thread the incident comes from.
    link: String,
    /// Other threads or sources the case cites (the fix, the release note...).
    #[serde(default)]
    see_also: Vec<String>,
    /// What was reported.
    reported: String,
    /// The cause the thread established.
    cause: String,
    /// Where the inputs come from; the README says how.
    inputs: Inputs,
    #[serde(default)]
    gaps: Vec<Gap>,
}

#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Inputs {
    /// Taken from the thread as posted.
    Real,
    /// Rebuilt from what the thread says, in the shape the Istio release of the thread generated.
    Reconstructed,
    /// Some of each.
    Mixed,
}

/// A probe (or a whole scenario file) that states reality but that meshpath cannot reproduce yet.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Gap {
    /// The scenario file, relative to the case folder.
    file: String,
    /// The probe; without it the whole file is a gap.
    #[serde(default)]
    probe: Option<String>,
    /// The capability meshpath lacks.
    missing: String,
    /// For a file meshpath cannot load yet: pieces of the load errors it may give (one must
    /// match), so that a file that fails for another reason (a typo) is not taken for the gap.
    #[serde(default)]
    load_error: Vec<String>,
}

/// What happened to one probe (or one unreadable file).
struct Line {
    status: Status,
    what: String,
    detail: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    Pass,
    Gap,
    Fail,
}

fn cases() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(SUITE)
        .expect("tests/realworld exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("case.yaml").is_file())
        .collect();
    dirs.sort();
    dirs
}

fn read_case(dir: &Path) -> Case {
    let path = dir.join("case.yaml");
    let text = std::fs::read_to_string(&path).expect("case.yaml reads");
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn scenario_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("case folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| scenario::is_scenario_file(p))
        .collect();
    files.sort();
    files
}

/// Runs one case: one line per probe, plus lines for gaps that name nothing.
fn run_case(dir: &Path, case: &Case) -> Vec<Line> {
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("?").to_string();
    let mut lines = Vec::new();
    let mut used = vec![false; case.gaps.len()];
    let files = scenario_files(dir);
    if files.is_empty() {
        lines.push(Line { status: Status::Fail, what: name.clone(), detail: "no scenario file".into() });
    }
    for file in &files {
        let fname = file.file_name().and_then(|n| n.to_str()).unwrap_or("?").to_string();
        let file_gap = case.gaps.iter().position(|g| g.file == fname && g.probe.is_none());
        match scenario::load(file) {
            Err(e) => {
                let message = e.to_string();
                let what = format!("{name}/{fname}");
                match file_gap.map(|i| (i, &case.gaps[i])) {
                    Some((i, g))
                        if g.load_error.is_empty()
                            || g.load_error.iter().any(|s| message.contains(s.as_str())) =>
                    {
                        used[i] = true;
                        lines.push(Line { status: Status::Gap, what, detail: g.missing.clone() });
                    }
                    _ => lines.push(Line {
                        status: Status::Fail,
                        what,
                        detail: format!("cannot load: {message}"),
                    }),
                }
            }
            Ok(sc) => {
                // A file that loads now keeps its gap for each probe that still fails.
                if let Some(i) = file_gap {
                    used[i] = true;
                }
                for o in scenario::run::run(&sc, &meshpath::render::words::ending_reason) {
                    let what = format!("{name}/{fname}: {}", o.name);
                    let probe_gap = case
                        .gaps
                        .iter()
                        .position(|g| g.file == fname && g.probe.as_deref() == Some(o.name.as_str()))
                        .or(file_gap);
                    if let Some(i) = probe_gap {
                        used[i] = true;
                    }
                    let line = match (o.verdict, probe_gap) {
                        (Verdict::NoExpectations, _) => Line {
                            status: Status::Fail,
                            what,
                            detail: "a real-world probe needs expectations".into(),
                        },
                        (Verdict::Pass, None) => Line { status: Status::Pass, what, detail: String::new() },
                        (Verdict::Pass, Some(i)) => Line {
                            status: Status::Fail,
                            what,
                            detail: format!(
                                "gap closed: the probe passes; remove its entry from case.yaml's gaps and the READMEs ({})",
                                case.gaps[i].missing
                            ),
                        },
                        (Verdict::Fail, Some(i)) => Line {
                            status: Status::Gap,
                            what,
                            detail: format!("{} [now: {}]", case.gaps[i].missing, o.mismatches.join("; ")),
                        },
                        (Verdict::Fail, None) => {
                            Line { status: Status::Fail, what, detail: o.mismatches.join("; ") }
                        }
                    };
                    lines.push(line);
                }
            }
        }
    }
    for (g, used) in case.gaps.iter().zip(used) {
        if !used {
            lines.push(Line {
                status: Status::Fail,
                what: format!("{name}/{}", g.file),
                detail: format!(
                    "the gap on {} names no scenario file or probe of the case",
                    g.probe.as_deref().unwrap_or("the whole file")
                ),
            });
        }
    }
    lines
}

#[test]
fn every_real_world_case_passes_or_is_a_known_gap() {
    let dirs = cases();
    assert!(dirs.len() >= 12, "the suite holds at least 12 incidents, found {}", dirs.len());
    let mut report = String::new();
    let mut gaps = String::new();
    let mut failures = 0;
    for dir in &dirs {
        let case = read_case(dir);
        for line in run_case(dir, &case) {
            let tag = match line.status {
                Status::Pass => "PASS",
                Status::Gap => "GAP ",
                Status::Fail => "FAIL",
            };
            let _ = write!(report, "{tag} {}", line.what);
            if line.status == Status::Fail {
                failures += 1;
                let _ = write!(report, "\n     {}", line.detail);
            }
            report.push('\n');
            if line.status == Status::Gap {
                let _ = writeln!(gaps, "  {} ({})\n    missing: {}", line.what, case.link, line.detail);
            }
        }
    }
    println!("{report}");
    println!("Known gaps (the probe states reality; meshpath cannot reproduce it yet):\n{gaps}");
    assert_eq!(failures, 0, "real-world cases failed:\n{report}");
}

/// Each case says where it comes from and why, and its README exists.
#[test]
fn every_case_is_documented() {
    let index = std::fs::read_to_string(format!("{SUITE}/README.md")).expect("tests/realworld/README.md");
    for dir in cases() {
        let case = read_case(&dir);
        let name = dir.file_name().and_then(|n| n.to_str()).expect("name");
        assert!(case.link.starts_with("https://"), "{name}: link {}", case.link);
        assert!(case.see_also.iter().all(|l| l.starts_with("https://")), "{name}: see_also");
        for (field, text) in [("title", &case.title), ("reported", &case.reported), ("cause", &case.cause)] {
            assert!(!text.trim().is_empty(), "{name}: {field} is empty");
        }
        let readme = std::fs::read_to_string(dir.join("README.md")).unwrap_or_default();
        assert!(readme.contains(&case.link), "{name}/README.md cites {}", case.link);
        if case.inputs != Inputs::Real {
            assert!(
                readme.to_lowercase().contains("reconstructed"),
                "{name}/README.md says how inputs were reconstructed"
            );
        }
        let row = index
            .lines()
            .find(|l| l.contains(&format!("[`{name}/`]")))
            .unwrap_or_else(|| panic!("tests/realworld/README.md has no row for {name}"));
        assert!(row.contains(&case.link), "the index row of {name} links {}", case.link);
        let status = if case.gaps.is_empty() { "passes" } else { "gap" };
        assert!(row.contains(status), "the index row of {name} says `{status}`: {row}");
        let words = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
        let readme_words = words(&readme);
        for g in &case.gaps {
            assert!(
                readme_words.contains(&words(&g.missing)),
                "{name}/README.md names the gap `{}`",
                g.missing
            );
        }
    }
}
