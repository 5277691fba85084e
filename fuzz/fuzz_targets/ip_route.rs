#![no_main]
//! `ip route show` output, line by line, IPv4 and IPv6.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        for line in text.lines() {
            let _ = meshpath::netns::parse_ip_route(line, false);
            let _ = meshpath::netns::parse_ip_route(line, true);
        }
    }
});
