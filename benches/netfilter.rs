//! Parsing the 20k-service kube-proxy rule set (36 MB, 234,701 rules) and tracing over it.
//! Whole-command comparisons with `iptables-restore --test` are in docs/performance.md.

#[path = "../tests/common/corpus.rs"]
mod corpus;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use meshpath::netfilter::eval::{trace, Entry, Probe, Program};
use meshpath::netfilter::model::Protocol;
use meshpath::netfilter::parse::{parse, ParseOptions};
use meshpath::netns::Netns;

fn corpus_file(name: &str) -> Option<String> {
    let dir = match corpus::dir("iptables") {
        Ok(d) => d,
        Err(reason) => {
            println!("SKIP netfilter benchmark: {reason}");
            return None;
        }
    };
    std::fs::read_to_string(dir.join(name)).ok()
}

fn bench(c: &mut Criterion) {
    let Some(text) = corpus_file("kube-proxy-20k.v4.iptables-save") else { return };
    let mut g = c.benchmark_group("kube-proxy-20k");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("parse", |b| {
        b.iter(|| parse("kube-proxy-20k", &text, ParseOptions::default()).expect("parses"))
    });
    let ruleset = parse("kube-proxy-20k", &text, ParseOptions::default()).expect("parses").ruleset;
    g.bench_function("parse+compile", |b| {
        b.iter(|| {
            Program::new(parse("kube-proxy-20k", &text, ParseOptions::default()).expect("parses").ruleset)
                .expect("compiles")
        })
    });
    let program = Program::new(ruleset).expect("compiles");
    g.finish();

    let ns = Netns::pod(&["10.0.0.5/24".parse().expect("literal")]);
    // A service near the end of KUBE-SERVICES, so the whole chain is scanned.
    let last_svc = text
        .lines()
        .rfind(|l| l.starts_with("-A KUBE-SERVICES -d ") && l.contains("-j KUBE-SVC-"))
        .expect("a service rule");
    let words: Vec<&str> = last_svc.split_whitespace().collect();
    let dst = words[3].trim_end_matches("/32").parse().expect("address");
    let dport = words
        .iter()
        .position(|w| *w == "--dport")
        .and_then(|i| words.get(i + 1))
        .and_then(|p| p.parse().ok())
        .expect("port");
    let probe =
        Probe::new(Entry::Output, Protocol::Tcp, "10.0.0.5".parse().expect("literal"), 40000, dst, dport);
    let mut g = c.benchmark_group("trace");
    g.bench_function("kube-proxy-20k last service", |b| {
        b.iter(|| trace(&program, &ns, &probe).expect("traces"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
