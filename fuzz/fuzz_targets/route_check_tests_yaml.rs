#![no_main]
//! route-check: a router_check_tool test file as yaml.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = meshpath::routecheck::parse_test_file(text, "fuzz.yaml");
    }
});
