//! Every rule set in the shared corpus parses: the kernel-canonical `iptables-save` output
//! and the restore-style inputs that produced it.

mod common;

#[path = "common/corpus.rs"]
mod corpus;

use meshpath::netfilter::parse::{parse, ParseOptions};

fn parse_all(suffix: &str, sub: &str) -> Option<usize> {
    let files = match corpus::files(sub, suffix) {
        Ok(f) => f,
        Err(reason) => {
            common::skip(&format!("netfilter corpus ({sub}/*{suffix})"), reason);
            return None;
        }
    };
    let mut failures = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("corpus file is readable");
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        match parse(&name, &text, ParseOptions::default()) {
            Ok(p) => assert!(p.unknown.is_empty(), "{name}: unknown parts {:?}", p.unknown),
            Err(e) => failures.push(e.to_string()),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} files failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
    Some(files.len())
}

#[test]
fn every_iptables_save_file_parses() {
    if let Some(n) = parse_all(".iptables-save", "iptables") {
        assert!(n >= 50, "expected the whole corpus, found {n} files");
    }
}

/// Restore-style inputs parse, except those the kernel itself refused (MANIFEST `loaded_ok`
/// = `no`), which must fail here too, and those naming users or groups, which cannot be
/// resolved offline and must say so.
#[test]
fn every_restore_input_parses_or_fails_like_the_kernel() {
    let (files, manifest) = match (corpus::files("iptables/inputs", ".restore"), corpus::dir("iptables")) {
        (Ok(f), Ok(d)) => (f, std::fs::read_to_string(d.join("MANIFEST.tsv")).unwrap_or_default()),
        (Err(reason), _) | (_, Err(reason)) => {
            common::skip("netfilter corpus (restore inputs)", reason);
            return;
        }
    };
    let refused: Vec<&str> = manifest
        .lines()
        .filter(|l| l.split('\t').nth(5) == Some("no"))
        .filter_map(|l| l.split('\t').next())
        .collect();
    let mut problems = Vec::new();
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(f).unwrap();
        let saved = name.replace(".restore", ".iptables-save");
        let kernel_refused = refused.contains(&saved.as_str());
        let names_ids = text.contains("-owner ftp") || text.contains("-owner java");
        match (parse(&name, &text, ParseOptions::default()), kernel_refused || names_ids) {
            (Ok(_), false) => {}
            (Err(e), true) if !names_ids || e.message.contains("not numeric") => {}
            (Ok(_), true) => {
                problems.push(format!("{name}: accepted, but the kernel refused it or it names ids"))
            }
            (Err(e), _) => problems.push(e.to_string()),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn rule_counts_match_the_files() {
    let files = match corpus::files("iptables", ".iptables-save") {
        Ok(files) => files,
        Err(reason) => return common::skip("netfilter corpus rule counts", reason),
    };
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let expected = text.lines().filter(|l| l.starts_with("-A ")).count();
        let p = parse("f", &text, ParseOptions::default()).unwrap();
        assert_eq!(p.ruleset.rule_count(), expected, "{}", f.display());
    }
}
