#![no_main]
//! The TLS ClientHello sniffer (SNI, ALPN) on a client's first bytes.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = meshpath::capture::parse_client_hello(data);
});
