//! Times one pass of read-only and one pass of read + flow table + sniffing over a capture file
//! (the whole-program counterpart of `benches/capture.rs`, for side-by-side runs with tcpdump
//! and tshark): `cargo run --release --example capture_throughput -- FILE`.

use std::fs::File;
use std::time::Instant;

use meshpath::capture::{Capture, FlowTable};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: capture_throughput FILE")?;
    let start = Instant::now();
    let mut cap = Capture::open(File::open(&path)?)?;
    let mut payload = 0usize;
    while let Some(p) = cap.next_packet() {
        payload += p.decoded.map_or(0, |d| d.payload.len());
    }
    let read = start.elapsed().as_secs_f64();
    let packets = cap.packets_read();
    println!(
        "read:             {packets} packets in {read:.3} s = {:.2} M packets/s ({payload} payload bytes)",
        packets as f64 / read / 1e6
    );
    let start = Instant::now();
    let mut cap = Capture::open(File::open(&path)?)?;
    let mut table = FlowTable::new();
    while let Some(p) = cap.next_packet() {
        table.add(&p);
    }
    let full = start.elapsed().as_secs_f64();
    let flows = table.flows();
    let tls = flows.iter().filter(|f| f.sniffed.tls.is_some()).count();
    let http = flows.iter().filter(|f| f.sniffed.http.is_some()).count();
    println!(
        "read+flows+sniff: {packets} packets in {full:.3} s = {:.2} M packets/s ({} flows, {tls} SNI, {http} HTTP)",
        packets as f64 / full / 1e6,
        flows.len()
    );
    Ok(())
}
