//! Writes the benchmark's generated capture (1,000,000 packets in 20,000 flows unless told
//! otherwise) for comparisons with other tools:
//! `cargo run --release --example capture_generate -- FILE [PACKETS FLOWS [CLIENT-IP]]`
//! (with CLIENT-IP every flow's client is that address: one pod's capture, for `replay`).

use std::fs::File;
use std::io::BufWriter;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: capture_generate FILE [PACKETS FLOWS [CLIENT-IP]]")?;
    let packets: u64 = args.next().map_or(Ok(1_000_000), |s| s.parse())?;
    let flows: u64 = args.next().map_or(Ok(20_000), |s| s.parse())?;
    let client = args.next().map(|s| s.parse::<std::net::Ipv4Addr>()).transpose()?.map(|a| a.octets());
    let out = BufWriter::with_capacity(1 << 20, File::create(&path)?);
    let st = meshpath::capture::synth::write_synthetic_from(out, packets, flows, client)?;
    println!("{path}: {st:?}");
    Ok(())
}
