//! Parses a large synthetic Istio sidecar `/config_dump` (a sidecar without a `Sidecar` scope:
//! thousands of services, each with an EDS cluster carrying TLS transport socket matches, a
//! VIP listener or a virtual host on a shared per-port HTTP listener, and RDS route tables).
//!
//! `MESHPATH_BENCH_SERVICES=N` sets the number of services (default 5000);
//! `MESHPATH_BENCH_DUMP=PATH` also writes the generated dump to PATH (for the `jq` and
//! `/usr/bin/time -v` comparisons in docs/performance.md).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

#[path = "support/sidecar.rs"]
mod sidecar;
use sidecar::generate;

fn bench(c: &mut Criterion) {
    let services = std::env::var("MESHPATH_BENCH_SERVICES").ok().and_then(|s| s.parse().ok()).unwrap_or(5000);
    let text = generate(services);
    if let Ok(path) = std::env::var("MESHPATH_BENCH_DUMP") {
        if let Err(e) = std::fs::write(&path, &text) {
            eprintln!("cannot write {path}: {e}");
        }
    }
    let bytes = text.into_bytes();
    let mut g = c.benchmark_group("envoy_parse");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function(format!("sidecar_{services}_services_{}MB", bytes.len() / 1_000_000), |b| {
        b.iter(|| {
            let cfg = meshpath::envoy::parse_dump(std::hint::black_box(&bytes));
            std::hint::black_box(cfg.map(|c| c.listeners.len() + c.clusters.len()).unwrap_or(0))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
