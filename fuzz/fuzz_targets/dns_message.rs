#![no_main]
//! The DNS message sniffer (questions, answers, compressed names).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = meshpath::capture::parse_dns_message(data);
});
