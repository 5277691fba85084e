#![no_main]
//! `ss -ltnup` / `netstat -lntup` output.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = meshpath::netns::parse_sockets(text);
    }
});
