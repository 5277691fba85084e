#![no_main]
//! A pcapng capture: every packet read and decoded into the flow table.

use libfuzzer_sys::fuzz_target;
use meshpath::capture::{Capture, FlowTable};

fuzz_target!(|data: &[u8]| {
    let Ok(mut cap) = Capture::open(std::io::Cursor::new(data)) else { return };
    let mut table = FlowTable::new();
    let mut n = 0;
    while let Some(p) = cap.next_packet() {
        table.add(&p);
        n += 1;
        if n > 100_000 {
            break;
        }
    }
});
