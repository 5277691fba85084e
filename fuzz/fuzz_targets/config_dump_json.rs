#![no_main]
//! Envoy /config_dump as JSON (with trailing commas).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(cfg) = meshpath::envoy::parse::parse_dump(data) {
        let _ = meshpath::envoy::summary::render(&cfg);
    }
});
