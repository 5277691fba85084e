//! Locating the shared conformance corpus (`../shared/corpus` or `$MESHPATH_CORPUS`).
//!
//! Tests and benchmarks read real-world inputs through this one helper, included where needed
//! with `#[path = "common/corpus.rs"] mod corpus;` (benches: `"../tests/common/corpus.rs"`);
//! it is not part of the library. A user's clone has no corpus; callers then print one
//! `SKIP <what>: <reason>` line and pass.
#![allow(dead_code)] // each includer uses part of it

use std::path::{Path, PathBuf};

/// The corpus root, if one can be found: `$MESHPATH_CORPUS`, else `../shared/corpus` relative
/// to the crate root (where CI puts it), else `None`.
pub fn root() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("MESHPATH_CORPUS") {
        let dir = PathBuf::from(dir);
        return dir.is_dir().then_some(dir);
    }
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = here.join("..").join("shared").join("corpus");
    dir.is_dir().then_some(dir)
}

/// A sub-folder of the corpus (e.g. `iptables`), or `Err(reason)` for the SKIP line.
pub fn dir(sub: &str) -> Result<PathBuf, String> {
    let root = root()
        .ok_or_else(|| "no corpus found (set MESHPATH_CORPUS or place it at ../shared/corpus)".to_string())?;
    let dir = root.join(sub);
    if dir.is_dir() {
        Ok(dir)
    } else {
        Err(format!("{} is missing", dir.display()))
    }
}

/// The files of a corpus sub-folder whose names end with `suffix`, sorted by name.
pub fn files(sub: &str, suffix: &str) -> Result<Vec<PathBuf>, String> {
    let dir = dir(sub)?;
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.to_string_lossy().ends_with(suffix))
        .collect();
    out.sort();
    Ok(out)
}
