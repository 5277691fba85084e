#![no_main]
//! Envoy /config_dump as YAML (input not starting with `{` or `[`).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let first = data.iter().find(|b| !b.is_ascii_whitespace());
    if matches!(first, Some(b'{') | Some(b'[')) {
        return;
    }
    let _ = meshpath::envoy::parse::parse_dump(data);
});
