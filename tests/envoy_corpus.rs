//! Every Envoy dump in the shared corpus parses, and `envoy summary` over each is stable.

mod common;

#[path = "common/corpus.rs"]
mod corpus;

use meshpath::envoy::{parse_dump, summary};

fn dumps() -> Option<Vec<std::path::PathBuf>> {
    match corpus::files("envoy", "") {
        Ok(files) => Some(
            files
                .into_iter()
                .filter(|p| {
                    let n = p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
                    n.ends_with(".json") || n.ends_with(".yaml")
                })
                .collect(),
        ),
        Err(reason) => {
            common::skip("envoy corpus", reason);
            None
        }
    }
}

#[test]
fn every_corpus_dump_parses() {
    let Some(files) = dumps() else { return };
    assert!(files.len() >= 20, "expected the envoy corpus, found {} files", files.len());
    for f in files {
        let bytes = std::fs::read(&f).expect("corpus file is readable");
        let cfg = parse_dump(&bytes).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let n =
            cfg.listeners.len() + cfg.clusters.len() + cfg.route_configs.len() + cfg.load_assignments.len();
        eprintln!(
            "{}: {} listeners, {} clusters, {} routes, {} eds, {} notes",
            f.file_name().unwrap_or_default().to_string_lossy(),
            cfg.listeners.len(),
            cfg.clusters.len(),
            cfg.route_configs.len(),
            cfg.load_assignments.len(),
            cfg.notes.len()
        );
        assert!(n > 0, "{}: nothing was read", f.display());
    }
}

#[test]
fn summary_snapshots() {
    let Some(files) = dumps() else { return };
    for f in files {
        let bytes = std::fs::read(&f).expect("corpus file is readable");
        let cfg = parse_dump(&bytes).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let name = f.file_name().unwrap_or_default().to_string_lossy().to_string();
        let text = summary::render(&cfg);
        insta::assert_snapshot!(format!("summary__{name}"), text);
    }
}
