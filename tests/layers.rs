//! The layers of docs/architecture.md, held against the code: each module of the library
//! imports only the modules it is allowed to (test code aside).

use std::collections::BTreeMap;
use std::path::Path;

/// Each module and the modules it may import.
const ALLOWED: &[(&str, &[&str])] = &[
    ("util", &[]),
    ("istio", &[]),
    ("diagnostic", &["util"]),
    ("netns", &["util", "istio"]),
    ("netfilter", &["util", "netns", "diagnostic"]),
    ("envoy", &["util", "diagnostic"]),
    ("capture", &["util", "istio"]),
    ("engine", &["util", "istio", "diagnostic", "netns", "netfilter", "envoy"]),
    ("routecheck", &["util", "diagnostic", "envoy"]),
    ("explain", &["util", "istio", "netns", "netfilter", "envoy", "engine"]),
    ("scenario", &["util", "istio", "diagnostic", "netns", "netfilter", "envoy", "engine"]),
    ("replay", &["util", "istio", "netns", "netfilter", "envoy", "engine", "capture"]),
];

/// `crate::MODULE` paths named in `text`, outside comments.
fn imports(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        for (at, _) in code.match_indices("crate::") {
            let name: String =
                code[at + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            out.push(name);
        }
    }
    out
}

/// The module's source files, test files left out (`tests.rs`, `tests/` folders).
fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if p.is_dir() {
            if name != "tests" {
                sources(&p, out);
            }
        } else if name.ends_with(".rs") && name != "tests.rs" && !name.ends_with("_tests.rs") {
            out.push(p);
        }
    }
}

#[test]
fn each_module_imports_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut wrong = Vec::new();
    for (module, ok) in &allowed {
        let mut files = Vec::new();
        let dir = src.join(module);
        if dir.is_dir() {
            sources(&dir, &mut files);
        } else if src.join(format!("{module}.rs")).is_file() {
            files.push(src.join(format!("{module}.rs")));
        }
        for f in files {
            let text = std::fs::read_to_string(&f).expect("readable source");
            // An inline `mod tests { ... }` is the file's end by convention here.
            let text = text.split("#[cfg(test)]\nmod tests {").next().unwrap_or("");
            for m in imports(text) {
                if m != *module && allowed.contains_key(m.as_str()) && !ok.contains(&m.as_str()) {
                    wrong.push(format!("{}: {module} imports {m}", f.display()));
                }
                if m == "render" || m == "cli" {
                    wrong.push(format!("{}: {module} imports {m}", f.display()));
                }
            }
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(wrong.is_empty(), "imports against the layers of docs/architecture.md:\n{}", wrong.join("\n"));
}

#[test]
fn every_library_module_has_a_layer() {
    let lib =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).expect("lib.rs");
    let known: Vec<&str> = ALLOWED.iter().map(|(m, _)| *m).chain(["render"]).collect();
    for line in lib.lines() {
        if let Some(m) = line.strip_prefix("pub mod ").and_then(|r| r.strip_suffix(';')) {
            assert!(known.contains(&m), "module {m} has no layer in tests/layers.rs (docs/architecture.md)");
        }
    }
}
