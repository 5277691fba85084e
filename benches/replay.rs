//! Full replay on a generated capture of 1,000,000 packets in 20,000 flows (one pod's capture:
//! the pod 10.244.0.5 is the client of every flow; TCP and UDP, 1,000 TLS ClientHellos and
//! 1,000 HTTP/1.1 requests), written with the crate's own writer to a temporary legacy pcap:
//!
//! * `read`: framing and L2-L4 decode of every record;
//! * `replay`: read + flow table + sniffing + stitching + one engine walk per distinct flow
//!   (identical flows share a trace) through the productpage fixture pod
//!   (tests/fixtures/mesh/, Istio 1.25 REDIRECT rules), as `meshpath replay` does.
//!
//! * `replay-40k-distinct-flows`: replay of a generated capture of 120,000 packets that reads as
//!   40,000 flows, almost each its own trace class (the memory case of docs/reliability.md,
//!   "Memory per flow in `replay`"; its memory is measured there with `/usr/bin/time -v`).
//!
//! Then, in the same run and on the same file, one timed pass of each mode next to
//! `tcpdump -nr FILE > /dev/null` and `tshark -r FILE -q -z conv,tcp > /dev/null` (skipped with
//! a note when the tool is missing, or all of them with `MESHPATH_BENCH_NO_TOOLS=1`).
//! Figures and commands: docs/performance.md ("Replay").

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use meshpath::capture::synth::write_synthetic_from;
use meshpath::capture::{stitch_redirects, Capture, FlowTable};
use meshpath::engine::{Mesh, Pod};
use meshpath::envoy::parse_dump;
use meshpath::istio::Conventions;
use meshpath::netfilter::eval::Program;
use meshpath::netfilter::parse::{parse, ParseOptions};
use meshpath::replay::replay;

const PACKETS: u64 = 1_000_000;
const FLOWS: u64 = 20_000;
const POD: [u8; 4] = [10, 244, 0, 5];
const RULES: &str = include_str!("../scenarios/istio-1.25-redirect.v4.iptables-save");
const DUMP: &str = include_str!("../tests/fixtures/mesh/productpage.istio-1.25.config_dump.json");

fn generated(packets: u64, flows: u64) -> PathBuf {
    let name = format!("meshpath-bench-replay-{packets}-{}.pcap", std::process::id());
    let path = std::env::temp_dir().join(name);
    let out = BufWriter::with_capacity(1 << 20, File::create(&path).expect("temp file"));
    let st = write_synthetic_from(out, packets, flows, Some(POD)).expect("written");
    assert_eq!((st.packets, st.flows), (packets, flows));
    path
}

/// Packets of the capture of many distinct flows: 120,000 single-packet flows whose client
/// ports repeat every 40,000 (so 40,000 flows of 3 packets).
const DISTINCT_PACKETS: u64 = 120_000;
const DISTINCT_FLOWS: usize = 40_000;

fn mesh() -> Mesh {
    let rules = parse("istio-1.25-redirect.v4.iptables-save", RULES, ParseOptions::default()).expect("rules");
    let program = Program::new(rules.ruleset).expect("program");
    let pod = Pod::new(
        "productpage",
        &["10.244.0.5/24".parse().expect("net")],
        Some((program, RULES.into())),
        None,
        Some(parse_dump(DUMP.as_bytes()).expect("dump")),
        vec![meshpath::netns::parse_listen("tcp:0.0.0.0:9080").expect("socket")],
    );
    Mesh { pods: vec![pod], names: Default::default() }
}

fn read_only(path: &Path) -> u64 {
    let mut cap = Capture::open(File::open(path).expect("open")).expect("pcap");
    let mut payload = 0u64;
    while let Some(p) = cap.next_packet() {
        payload += p.decoded.map_or(0, |d| d.payload.len() as u64);
    }
    assert_eq!(cap.packets_read(), PACKETS);
    payload
}

/// What `meshpath replay` does, without the output: (flows, distinct traces).
fn full_replay(path: &Path, mesh: &mut Mesh) -> (usize, usize) {
    let got = replay_file(path, mesh);
    assert_eq!(got.0 as u64, FLOWS);
    got
}

fn replay_file(path: &Path, mesh: &mut Mesh) -> (usize, usize) {
    let mut cap = Capture::open(File::open(path).expect("open")).expect("pcap");
    let mut table = FlowTable::new();
    while let Some(p) = cap.next_packet() {
        table.add(&p);
    }
    let local = [std::net::IpAddr::from(POD)];
    stitch_redirects(table.flows_mut(), &local, &Conventions::ISTIO.redirect_ports());
    let r = replay(mesh, 0, table.flows());
    (r.len(), r.traces)
}

fn bench(c: &mut Criterion, path: &Path, mesh: &mut Mesh) {
    let mut g = c.benchmark_group("replay-1M-packets-20k-flows");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(PACKETS));
    g.bench_function("read", |b| b.iter(|| read_only(path)));
    g.bench_function("replay", |b| b.iter(|| full_replay(path, mesh)));
    g.finish();
}

fn bench_distinct(c: &mut Criterion, path: &Path, mesh: &mut Mesh) {
    let mut g = c.benchmark_group("replay-40k-distinct-flows");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(DISTINCT_FLOWS as u64));
    g.bench_function("replay", |b| {
        b.iter(|| {
            let got = replay_file(path, mesh);
            assert_eq!(got.0, DISTINCT_FLOWS);
            got
        })
    });
    g.finish();
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(|_| "unknown".into(), |s| s.trim().to_string())
}

fn rate(secs: f64) -> String {
    format!("{:.2} M packets/s", PACKETS as f64 / secs / 1e6)
}

/// Runs `program args` with standard output to /dev/null; its wall time, or why not.
fn external(program: &str, args: &[&str]) -> Result<f64, String> {
    let start = Instant::now();
    let status = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("{program} not run: {e}"))?;
    let secs = start.elapsed().as_secs_f64();
    if !status.success() {
        return Err(format!("{program} exited with {status}"));
    }
    Ok(secs)
}

fn compare(path: &Path, mesh: &mut Mesh) {
    let file = path.to_string_lossy().into_owned();
    println!("\n# side by side on {file} ({PACKETS} packets, {FLOWS} flows)");
    println!("load average before: {}", load());
    let start = Instant::now();
    read_only(path);
    let read = start.elapsed().as_secs_f64();
    println!("meshpath read:            {read:>8.3} s  {}", rate(read));
    let start = Instant::now();
    let (flows, traces) = full_replay(path, mesh);
    let full = start.elapsed().as_secs_f64();
    println!("meshpath replay:          {full:>8.3} s  {}  ({flows} flows, {traces} traces)", rate(full));
    if std::env::var_os("MESHPATH_BENCH_NO_TOOLS").is_some() {
        println!("SKIP tcpdump and tshark: MESHPATH_BENCH_NO_TOOLS is set");
        return;
    }
    let tools: [(&str, &str, Vec<&str>); 2] = [
        ("tcpdump -nr FILE", "tcpdump", vec!["-nr", &file]),
        ("tshark -z conv,tcp", "tshark", vec!["-r", &file, "-q", "-z", "conv,tcp"]),
    ];
    for (label, program, args) in tools {
        match external(program, &args) {
            Ok(secs) => println!(
                "{label:<24}  {secs:>8.3} s  {}  (full replay is {:.1}x faster)",
                rate(secs),
                secs / full
            ),
            Err(why) => println!("SKIP comparison with {program}: {why}"),
        }
    }
    println!("load average after: {}", load());
}

fn main() {
    let path = generated(PACKETS, FLOWS);
    let distinct = generated(DISTINCT_PACKETS, DISTINCT_PACKETS);
    let mut mesh = mesh();
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c, &path, &mut mesh);
    bench_distinct(&mut c, &distinct, &mut mesh);
    c.final_summary();
    compare(&path, &mut mesh);
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(&distinct);
}
