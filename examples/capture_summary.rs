//! Prints the faults and flows of a capture: `cargo run --example capture_summary -- FILE`.

use meshpath::capture::{Capture, FlowTable};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: capture_summary FILE")?;
    let mut cap = Capture::open(std::io::BufReader::new(std::fs::File::open(&path)?))?;
    let mut table = FlowTable::new();
    while let Some(pkt) = cap.next_packet() {
        table.add(&pkt);
    }
    println!("{path}: {:?}, {} packets", cap.format(), cap.packets_read());
    for f in cap.faults() {
        println!("  fault {f}");
    }
    for f in table.flows() {
        println!(
            "  flow {} {} {} > {} pkts {}/{} bytes {}/{} start_missing={} fin={:?} rst={:?} sniffed={:?}",
            f.id,
            f.transport.name(),
            f.client,
            f.server,
            f.to_server.packets,
            f.to_client.packets,
            f.to_server.bytes,
            f.to_client.bytes,
            f.start_missing,
            f.fin_from,
            f.rst_from,
            f.sniffed
        );
    }
    println!("  stats {:?}", table.stats());
    Ok(())
}
