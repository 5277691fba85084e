#![no_main]
//! route-check: a route table (or bootstrap) as json.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = meshpath::routecheck::load_route_config(text, "fuzz.json");
    }
});
