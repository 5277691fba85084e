//! Which files a scenario may name. Scenario files arrive in pull requests and are checked by
//! CI, so a reference is confined to a root folder: by default the working directory when the
//! scenario lies under it (a CI job runs in the repository's checkout), else the scenario's own
//! folder; `--root DIR` sets it. Refused: paths that leave the root (absolute or through `..`,
//! or through symbolic links), hidden files and folders (`.git/config` may hold a CI token),
//! and anything but a regular file (a device or FIFO; checked when the file is read).

use std::path::{Component, Path, PathBuf};
use std::sync::RwLock;

static ROOT: RwLock<Option<PathBuf>> = RwLock::new(None);

/// Sets the root every scenario's references must stay under (`--root DIR`); `None` restores
/// the default.
pub fn set_root(dir: Option<PathBuf>) {
    if let Ok(mut r) = ROOT.write() {
        *r = dir;
    }
}

/// The root for the scenario at `scenario` (canonical), as [`set_root`] or the default says.
pub(crate) fn root_for(scenario: &Path) -> Result<PathBuf, String> {
    let given = ROOT.read().ok().and_then(|r| r.clone());
    if let Some(dir) = given {
        return std::fs::canonicalize(&dir).map_err(|e| format!("--root {}: {e}", dir.display()));
    }
    let file = std::fs::canonicalize(scenario).map_err(|e| format!("{}: {e}", scenario.display()))?;
    let folder = file.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/"));
    match std::env::current_dir().and_then(std::fs::canonicalize) {
        Ok(cwd) if folder.starts_with(&cwd) && cwd.parent().is_some() => Ok(cwd),
        _ => Ok(folder),
    }
}

/// `rel`, named by a scenario in folder `dir`, as a path to read (`..` folded, for messages),
/// or why it is refused under `root` (canonical).
pub(crate) fn confine(root: &Path, dir: &Path, rel: &str) -> Result<PathBuf, String> {
    let shown = super::resolve(dir, rel);
    let quoted = crate::util::escape::excerpt(rel, 80);
    if hidden(Path::new(rel)) {
        return Err(format!("`{quoted}` names a hidden file or folder, which a scenario may not read"));
    }
    // Lexically first (the file may not exist), then as the file system resolves it.
    let canonical_dir = std::fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let lexical = super::resolve(&canonical_dir, rel);
    let outside = || {
        format!(
            "`{quoted}` lies outside {} (the folder scenario files may read from; widen it with --root DIR)",
            root.display()
        )
    };
    if !lexical.starts_with(root) {
        return Err(outside());
    }
    if let Ok(real) = std::fs::canonicalize(&lexical) {
        let Ok(inside) = real.strip_prefix(root) else { return Err(outside()) };
        if hidden(inside) {
            return Err(format!(
                "`{quoted}` leads to a hidden file or folder, which a scenario may not read"
            ));
        }
    }
    Ok(shown)
}

/// Whether a component of `path` is hidden (`.name`; `.` and `..` are not).
fn hidden(path: &Path) -> bool {
    path.components().any(|c| matches!(c, Component::Normal(n) if n.to_string_lossy().starts_with('.')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_stay_under_the_root() {
        let base = std::env::temp_dir().join(format!("meshpath-confine-{}", std::process::id()));
        let root = base.join("repo");
        std::fs::create_dir_all(root.join("sc")).unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::write(root.join("rules"), "x").unwrap();
        std::fs::write(base.join("secret"), "x").unwrap();
        let root = std::fs::canonicalize(&root).unwrap();
        let dir = root.join("sc");
        assert!(confine(&root, &dir, "../rules").is_ok());
        assert!(confine(&root, &dir, "missing").is_ok(), "a missing file is for the reader to report");
        assert!(confine(&root, &dir, "/etc/passwd").unwrap_err().contains("outside"));
        assert!(confine(&root, &dir, root.join("rules").to_str().unwrap()).is_ok());
        assert!(confine(&root, &dir, "../../secret").unwrap_err().contains("outside"));
        assert!(confine(&root, &dir, "../.git/config").unwrap_err().contains("hidden"));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(base.join("secret"), dir.join("link")).unwrap();
            assert!(confine(&root, &dir, "link").unwrap_err().contains("outside"));
            std::os::unix::fs::symlink(root.join(".git"), dir.join("git")).unwrap();
            assert!(confine(&root, &dir, "git/config").is_ok(), "missing, so not resolved");
            std::fs::write(root.join(".git/config"), "token").unwrap();
            assert!(confine(&root, &dir, "git/config").unwrap_err().contains("hidden"));
        }
        std::fs::remove_dir_all(&base).unwrap();
    }
}
