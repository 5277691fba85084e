//! Output is a function of the input alone: the same command on the same generated rule set or
//! config dump prints the same bytes on a second run and with one worker thread or several
//! (rule sets of more than 4,096 rules in a chain are parsed on all cores; rayon reads
//! RAYON_NUM_THREADS). The inputs are generated from seeds by a small deterministic generator,
//! a property checked over many shapes rather than one fixture.

mod common;

use std::path::{Path, PathBuf};

use common::meshpath;

/// xorshift64*: the same seed gives the same input everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A nat and a filter table with user chains, jumps, and `rules` rules in a long chain.
fn rule_set(rng: &mut Rng, rules: usize) -> String {
    let mut s = String::from("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:SVC - [0:0]\n:REDIR - [0:0]\n");
    s.push_str("-A OUTPUT -p tcp -j SVC\n-A REDIR -p tcp -j REDIRECT --to-ports 15001\n");
    for _ in 0..rules {
        let ip = format!("10.{}.{}.{}", rng.below(256), rng.below(256), rng.below(256));
        let port = 1 + rng.below(65535);
        match rng.below(4) {
            0 => s.push_str(&format!("-A SVC -d {ip}/32 -p tcp -m tcp --dport {port} -j REDIR\n")),
            1 => s.push_str(&format!("-A SVC -s {ip}/24 -j RETURN\n")),
            2 => s.push_str(&format!(
                "-A SVC -d {ip}/32 -p tcp -j DNAT --to-destination 10.244.0.{}:{port}\n",
                rng.below(250)
            )),
            _ => s.push_str(&format!("-A SVC -p udp -m udp --dport {port} -j RETURN\n")),
        }
    }
    s.push_str("COMMIT\n*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n");
    for _ in 0..rng.below(50) {
        s.push_str(&format!("-A OUTPUT -d 10.96.{}.0/24 -j ACCEPT\n", rng.below(256)));
    }
    s.push_str("COMMIT\n");
    s
}

/// The fixture's dump with its listeners repeated under new names and ports, in shuffled order.
fn dump(rng: &mut Rng, listeners: usize) -> String {
    let text = std::fs::read_to_string(common::dump("productpage.istio-1.25")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    for c in v["configs"].as_array_mut().unwrap() {
        if c["@type"].as_str().unwrap().ends_with("ListenersConfigDump") {
            let ls = c["dynamic_listeners"].as_array_mut().unwrap();
            let base = ls.clone();
            for i in 0..listeners {
                let mut l = base[rng.below(base.len() as u64) as usize].clone();
                l["name"] = format!("generated-{}-{i}", rng.below(1000)).into();
                ls.push(l);
            }
        }
    }
    serde_json::to_string(&v).unwrap()
}

fn output(args: &[&str], threads: &str) -> Vec<u8> {
    let o = meshpath().env("RAYON_NUM_THREADS", threads).args(args).output().expect("runs");
    let mut out = o.stdout;
    out.extend_from_slice(&o.stderr);
    out.extend_from_slice(format!("[exit {:?}]", o.status.code()).as_bytes());
    out
}

fn same_everywhere(args: &[&str]) {
    let one = output(args, "1");
    assert_eq!(one, output(args, "1"), "second run differs: {args:?}");
    assert_eq!(one, output(args, "2"), "two threads differ: {args:?}");
    assert_eq!(one, output(args, "4"), "four threads differ: {args:?}");
}

fn scratch() -> PathBuf {
    let d = std::env::temp_dir().join(format!("meshpath-determinism-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn output_is_byte_identical_across_runs_and_thread_counts() {
    let dir = scratch();
    for seed in 1..=4u64 {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ seed);
        // Over 4,096 rules in one chain: the parallel reader's path.
        let rules = dir.join(format!("r{seed}.rules"));
        let n = 3000 + rng.below(3000) as usize;
        std::fs::write(&rules, rule_set(&mut rng, n)).unwrap();
        let dst =
            format!("10.{}.{}.{}:{}", rng.below(256), rng.below(256), rng.below(256), 1 + rng.below(65535));
        same_everywhere(&["netfilter", "check", s(&rules)]);
        for format in ["text", "json"] {
            same_everywhere(&[
                "netfilter",
                "trace",
                "--iptables",
                s(&rules),
                "--pod-ip",
                "10.244.0.5",
                "--dst",
                &dst,
                "--format",
                format,
            ]);
        }
        let d = dir.join(format!("d{seed}.json"));
        let n = 20 + rng.below(200) as usize;
        std::fs::write(&d, dump(&mut rng, n)).unwrap();
        same_everywhere(&["envoy", "summary", "--envoy", s(&d)]);
        same_everywhere(&[
            "trace",
            "--iptables",
            s(&rules),
            "--envoy",
            s(&d),
            "--pod-ip",
            "10.244.0.5",
            "--dst",
            &dst,
            "--format",
            "json",
        ]);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
