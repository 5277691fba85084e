#![no_main]
//! Restore-style rules and istio-init logs, IPv6, lenient: the parser's other paths.

use libfuzzer_sys::fuzz_target;
use meshpath::netfilter::model::Family;
use meshpath::netfilter::parse::{parse, ParseOptions};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse("fuzz", text, ParseOptions { lenient: false, family: Some(Family::V6) });
        let _ = parse("fuzz", text, ParseOptions { lenient: true, family: Some(Family::V4) });
    }
});
