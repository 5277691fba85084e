#![no_main]
//! iptables-save output (IPv4, family inferred) through the rule parser and compiler.

use libfuzzer_sys::fuzz_target;
use meshpath::netfilter::parse::{parse, ParseOptions};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(parsed) = parse("fuzz", text, ParseOptions::default()) {
            let _ = meshpath::engine::evidence::compile(parsed.ruleset, text);
        }
        let _ = parse("fuzz", text, ParseOptions { lenient: true, ..ParseOptions::default() });
    }
});
