#![no_main]
//! The HTTP/1 request sniffer (method, path, Host).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = meshpath::capture::parse_http_request(data);
});
