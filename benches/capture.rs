//! Capture reading on a generated capture of 1,000,000 packets in 20,000 flows (Ethernet/IPv4,
//! TCP and UDP, 1,000 TLS ClientHellos and 1,000 HTTP/1.1 requests), written to a temporary
//! legacy pcap file: read only (framing + L2-L4 decode), and read + flow table + sniffing.
//! The same file for the tcpdump/tshark comparison comes from `examples/capture_generate.rs`;
//! figures and commands are in docs/performance.md ("Capture reading").

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use meshpath::capture::synth::write_synthetic;
use meshpath::capture::{Capture, FlowTable};

const PACKETS: u64 = 1_000_000;
const FLOWS: u64 = 20_000;

fn generated() -> PathBuf {
    let path = std::env::temp_dir().join(format!("meshpath-bench-capture-{}.pcap", std::process::id()));
    let out = BufWriter::with_capacity(1 << 20, File::create(&path).expect("temp file"));
    let st = write_synthetic(out, PACKETS, FLOWS).expect("written");
    assert_eq!((st.packets, st.flows), (PACKETS, FLOWS));
    path
}

fn bench(c: &mut Criterion) {
    let path = generated();
    let mut g = c.benchmark_group("capture-1M-packets-20k-flows");
    g.sample_size(10);
    g.throughput(Throughput::Elements(PACKETS));
    g.bench_function("read", |b| {
        b.iter(|| {
            let mut cap = Capture::open(File::open(&path).expect("open")).expect("pcap");
            let mut payload = 0usize;
            while let Some(p) = cap.next_packet() {
                payload += p.decoded.map_or(0, |d| d.payload.len());
            }
            assert_eq!(cap.packets_read(), PACKETS);
            payload
        })
    });
    g.bench_function("read+flows+sniff", |b| {
        b.iter(|| {
            let mut cap = Capture::open(File::open(&path).expect("open")).expect("pcap");
            let mut table = FlowTable::new();
            while let Some(p) = cap.next_packet() {
                table.add(&p);
            }
            assert_eq!(table.flows().len() as u64, FLOWS);
            table
        })
    });
    g.finish();
    let _ = std::fs::remove_file(&path);
}

criterion_group!(benches, bench);
criterion_main!(benches);
