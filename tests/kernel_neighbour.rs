//! Differential check of IPv6 next-hop resolution through ip6tables (docs/trace.md, "Next-hop
//! resolution"): two network namespaces joined by a veth pair, the client's `eth0` with
//! fd00::1/64 and an ip6tables rule set, the server's with fd00::2/64. The client connects to
//! [fd00::2]:9, where nothing listens: "Connection refused" means the SYN reached the server
//! (the next hop was resolved), "No route to host" (EHOSTUNREACH) or a timeout means it was
//! not. The
//! client's `ip -6 neigh show` and the rules' counters say what happened to the neighbour
//! discovery messages; `meshpath trace` on the namespace's `ip6tables-save` (and, with
//! `--neigh`, its `ip -6 neigh show` taken before the connection when that has entries) must end
//! the same way.
//!
//! Kernel behaviour the expectations come from:
//! * a neighbour entry in a `NUD_VALID` state (PERMANENT, REACHABLE, ...: include/net/
//!   neighbour.h) is used as it is by `neigh_output` (net/ipv6/ip6_output.c
//!   `ip6_finish_output2`); otherwise `__neigh_event_send` (net/core/neighbour.c) queues the
//!   packet and starts a resolution;
//! * the solicitation is sent with `NF_HOOK(NFPROTO_IPV6, NF_INET_LOCAL_OUT, ...)` (net/ipv6/
//!   ndisc.c `ndisc_send_skb`), so it passes OUTPUT and POSTROUTING;
//! * the advertisement is received like any packet for the host: `ipv6_rcv` (PREROUTING) and
//!   `ip6_input` (`NF_HOOK(NFPROTO_IPV6, NF_INET_LOCAL_IN, ...)`, net/ipv6/ip6_input.c) before
//!   `icmpv6_rcv` hands it to `ndisc_rcv`; a rule that drops it leaves the entry INCOMPLETE
//!   until `neigh_timer_handler` gives up (FAILED after `mcast_solicit` tries) and the queued
//!   packet is dropped (`neigh_invalidate`). The socket hears of it only through the ICMPv6
//!   address unreachable the kernel then sends itself (`ndisc_error_report` → `icmp6_send`,
//!   net/ipv6/ndisc.c), from the connection's source to that same address: it passes OUTPUT
//!   and, over lo, INPUT, RELATED to the connection, and `tcp_v6_err` turns it into
//!   EHOSTUNREACH. Rules that drop that error leave the connect waiting until it times out;
//! * neighbour discovery is never tracked: `nf_conntrack_icmpv6_error`
//!   (net/netfilter/nf_conntrack_proto_icmpv6.c) marks the types of `noct_valid_new` (NS, NA,
//!   RS, RA, MLD) `IP_CT_UNTRACKED`, so `--state INVALID` does not match them and
//!   `--state ESTABLISHED,RELATED` does not accept them (net/netfilter/xt_state.c
//!   `state_mt`: UNTRACKED is its own state bit).
//!
//! Needs root, iproute2, ip6tables and bash; otherwise it prints
//! `SKIP kernel neighbour discovery: <reason>` and passes (in CI, `CI` or
//! `MESHPATH_REQUIRE_ALL=1`, it fails instead).

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const WHAT: &str = "kernel neighbour discovery";
const SERVER: &str = "fd00::2";

fn run(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0]).args(&args[1..]).output().map_err(|e| format!("{}: {e}", args[0]))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("`{}`: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().nth(1)) == Some("0")
}

/// A namespace removed on drop (its veth end goes with it).
struct Ns(String);

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = run(&["ip", "netns", "del", &self.0]);
    }
}

/// A scratch directory removed on drop, even when an assertion fails.
struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What the client's connection attempt met.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Kernel {
    /// "Connection refused": the SYN reached the server, whose RST came back.
    Reached,
    /// "No route to host": the next hop was never resolved, and the socket learnt it from the
    /// ICMPv6 address unreachable the kernel sends itself.
    Unresolved,
    /// No answer before the timeout: the next hop was never resolved, and the rules dropped
    /// that ICMPv6 error too, so the connection keeps retrying its SYN.
    Silent,
}

/// The client's neighbour entry for the server before the connection.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Entry {
    None,
    /// `ip -6 neigh add ... nud permanent` with the server's MAC.
    Permanent,
    /// Learnt by a first connection made before the rules were installed (REACHABLE).
    Learnt,
}

/// One case: the client's ip6tables commands (arguments after `ip6tables`) and its neighbour
/// entry for the server.
struct Case {
    name: &'static str,
    rules: &'static [&'static [&'static str]],
    entry: Entry,
    /// What the kernel does (from the sources cited above).
    kernel: Kernel,
    /// A rule (chain, number) that must have counted packets, and one that must not have.
    counted: Option<(&'static str, usize)>,
    not_counted: Option<(&'static str, usize)>,
}

const DROP_NA: &[&str] =
    &["-A", "INPUT", "-p", "ipv6-icmp", "--icmpv6-type", "neighbour-advertisement", "-j", "DROP"];

const CASES: &[Case] = &[
    // (a) the advertisement is dropped in INPUT: the entry fails, the path ends at that rule.
    Case {
        name: "advertisement dropped in INPUT",
        rules: &[DROP_NA],
        entry: Entry::None,
        kernel: Kernel::Unresolved,
        counted: Some(("INPUT", 1)),
        not_counted: None,
    },
    // (b) untracked, the advertisement is not INVALID.
    Case {
        name: "INVALID dropped, policy ACCEPT",
        rules: &[&["-A", "INPUT", "-m", "state", "--state", "INVALID", "-j", "DROP"]],
        entry: Entry::None,
        kernel: Kernel::Reached,
        counted: None,
        not_counted: Some(("INPUT", 1)),
    },
    // (c) a PERMANENT entry: no resolution, the drop rule of (a) never sees a message.
    Case {
        name: "PERMANENT entry, advertisement dropped in INPUT",
        rules: &[DROP_NA],
        entry: Entry::Permanent,
        kernel: Kernel::Reached,
        counted: None,
        not_counted: Some(("INPUT", 1)),
    },
    // (c') a REACHABLE entry learnt before the rule came: used as it is (NUD_VALID).
    Case {
        name: "REACHABLE entry, advertisement dropped in INPUT",
        rules: &[DROP_NA],
        entry: Entry::Learnt,
        kernel: Kernel::Reached,
        counted: None,
        not_counted: Some(("INPUT", 1)),
    },
    // Untracked, the advertisement is neither ESTABLISHED nor RELATED: the REJECT after the
    // accept takes it. (The accept does count a packet: the ICMPv6 error below, RELATED to the
    // connection's SYN_SENT entry.)
    Case {
        name: "ESTABLISHED,RELATED accepted, the rest rejected",
        rules: &[
            &["-A", "INPUT", "-m", "state", "--state", "ESTABLISHED,RELATED", "-j", "ACCEPT"],
            &["-A", "INPUT", "-j", "REJECT"],
        ],
        entry: Entry::None,
        kernel: Kernel::Unresolved,
        counted: Some(("INPUT", 2)),
        not_counted: None,
    },
    // istio-iptables.sh's IPv6 INPUT rules (istio/istio#18956, tests/realworld/shared/
    // istio-1.3-ipv6-input-reject.v6.ip6tables-save): the advertisement is rejected, and so is
    // the ICMPv6 address unreachable the kernel sends itself when the entry fails
    // (`ndisc_error_report` → `icmp6_send`, net/ipv6/ndisc.c; from the connection's source to
    // itself through OUTPUT and, over lo, INPUT), which is RELATED, not ESTABLISHED: the
    // application never hears of it and its connect times out.
    Case {
        name: "istio-iptables.sh's ESTABLISHED accept, lo accept, REJECT",
        rules: &[
            &["-A", "INPUT", "-m", "state", "--state", "ESTABLISHED", "-j", "ACCEPT"],
            &["-A", "INPUT", "-d", "::1/128", "-i", "lo", "-j", "ACCEPT"],
            &["-A", "INPUT", "-j", "REJECT", "--reject-with", "icmp6-port-unreachable"],
        ],
        entry: Entry::None,
        kernel: Kernel::Silent,
        counted: Some(("INPUT", 3)),
        not_counted: Some(("INPUT", 1)),
    },
    // The solicitation dropped in OUTPUT (`ndisc_send_skb`'s LOCAL_OUT hook).
    Case {
        name: "solicitation dropped in OUTPUT",
        rules: &[&[
            "-A",
            "OUTPUT",
            "-p",
            "ipv6-icmp",
            "--icmpv6-type",
            "neighbour-solicitation",
            "-j",
            "DROP",
        ]],
        entry: Entry::None,
        kernel: Kernel::Unresolved,
        counted: Some(("OUTPUT", 1)),
        not_counted: None,
    },
];

/// What one case showed in the kernel.
struct Observed {
    kernel: Kernel,
    /// `ip -6 neigh show` in the client before the connection (what meshpath is given) and
    /// after it.
    neigh_before: String,
    neigh: String,
    /// `ip6tables-save` of the client.
    save: String,
    /// Packet counters of the client's INPUT and OUTPUT rules, in order.
    counters: Vec<(String, Vec<u64>)>,
}

/// Sets up the two namespaces, runs the case, and reads what the kernel did. `Err` is a reason
/// to skip (a tool or kernel feature missing).
fn observe(case: &Case, index: usize) -> Result<Observed, String> {
    let pid = std::process::id();
    let client = Ns(format!("mp-nd-c{index}-{pid}"));
    run(&["ip", "netns", "add", &client.0])?;
    let server = Ns(format!("mp-nd-s{index}-{pid}"));
    run(&["ip", "netns", "add", &server.0])?;
    let (c, s) = (client.0.as_str(), server.0.as_str());
    let setup: &[&[&str]] = &[
        &["ip", "-n", c, "link", "set", "lo", "up"],
        &["ip", "-n", s, "link", "set", "lo", "up"],
        &["ip", "-n", c, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", s],
        &["ip", "-n", c, "-6", "addr", "add", "fd00::1/64", "dev", "eth0", "nodad"],
        &["ip", "-n", s, "-6", "addr", "add", "fd00::2/64", "dev", "eth0", "nodad"],
        // Three solicitations 200 ms apart before the entry fails (default: 1 s apart).
        &["ip", "netns", "exec", c, "sysctl", "-qw", "net.ipv6.neigh.eth0.retrans_time_ms=200"],
        &["ip", "-n", c, "link", "set", "eth0", "up"],
        &["ip", "-n", s, "link", "set", "eth0", "up"],
    ];
    for cmd in setup {
        run(cmd)?;
    }
    // Until linkwatch has seen both carriers (`linkwatch_do_dev` → `dev_activate`), the
    // device's queue discards what is sent: wait for operstate UP on both ends.
    for ns in [c, s] {
        let up =
            |ns: &str| run(&["ip", "-n", ns, "link", "show", "eth0"]).is_ok_and(|l| l.contains("state UP"));
        let mut tries = 0;
        while !up(ns) {
            tries += 1;
            if tries > 60 {
                return Err(format!("eth0 in {ns} is not up after 3 s"));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    if case.entry == Entry::Learnt && connect(c)? != Kernel::Reached {
        return Err("the first connection, without rules, did not reach the server".into());
    }
    for rule in case.rules {
        let mut cmd = vec!["ip", "netns", "exec", c, "ip6tables"];
        cmd.extend_from_slice(rule);
        run(&cmd)?;
    }
    if case.entry == Entry::Permanent {
        let link = run(&["ip", "-n", s, "link", "show", "eth0"])?;
        let mac = link
            .split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .ok_or_else(|| format!("no link/ether in `{link}`"))?
            .to_string();
        run(&[
            "ip",
            "-n",
            c,
            "-6",
            "neigh",
            "add",
            SERVER,
            "lladdr",
            &mac,
            "dev",
            "eth0",
            "nud",
            "permanent",
        ])?;
    }
    let neigh_before = run(&["ip", "-n", c, "-6", "neigh", "show"])?;
    let kernel = connect(c)?;
    let neigh = run(&["ip", "-n", c, "-6", "neigh", "show"])?;
    let save = run(&["ip", "netns", "exec", c, "ip6tables-save"])?;
    let mut counters = Vec::new();
    for chain in ["INPUT", "OUTPUT"] {
        let list = run(&["ip", "netns", "exec", c, "ip6tables", "-L", chain, "-v", "-x", "-n"])?;
        let pkts = list.lines().skip(2).filter_map(|l| l.split_whitespace().next()?.parse().ok()).collect();
        counters.push((chain.to_string(), pkts));
    }
    Ok(Observed { kernel, neigh_before, neigh, save, counters })
}

/// A TCP connection from namespace `c` to [fd00::2]:9 (bash's /dev/tcp), 2 s at most.
fn connect(c: &str) -> Result<Kernel, String> {
    let connect = format!("exec 3<>/dev/tcp/{SERVER}/9");
    let out = Command::new("ip")
        .args(["netns", "exec", c, "timeout", "2", "bash", "-c", &connect])
        .output()
        .map_err(|e| format!("ip netns exec: {e}"))?;
    let err = String::from_utf8_lossy(&out.stderr);
    Ok(if err.contains("Connection refused") {
        Kernel::Reached
    } else if err.contains("No route to host") {
        Kernel::Unresolved
    } else if out.status.code() == Some(124) {
        Kernel::Silent
    } else {
        panic!("the connection neither was refused nor failed to resolve: {out:?}");
    })
}

/// The state `ip -6 neigh show` gives the server's address (its last word).
fn neigh_state(neigh: &str) -> Option<&str> {
    neigh.lines().find(|l| l.split_whitespace().next() == Some(SERVER))?.split_whitespace().last()
}

/// The line of `save` holding rule `n` (from 1) of `chain` in the filter table.
fn rule_line(save: &str, chain: &str, n: usize) -> Option<usize> {
    let prefix = format!("-A {chain} ");
    save.lines().enumerate().filter(|(_, l)| l.starts_with(&prefix)).nth(n - 1).map(|(i, _)| i + 1)
}

/// `meshpath trace` of the client's connection: its one path.
fn meshpath_path(dir: &Path, index: usize, seen: &Observed) -> Value {
    let rules = dir.join(format!("case{index}.v6.ip6tables-save"));
    std::fs::write(&rules, &seen.save).expect("write rules");
    let neigh = dir.join(format!("case{index}.ip-neigh"));
    std::fs::write(&neigh, &seen.neigh_before).expect("write neigh");
    let mut cmd = common::meshpath();
    cmd.arg("trace").arg("--ip6tables").arg(&rules).args(["--pod-ip", "fd00::1/64", "--from", "uid:0"]);
    if !seen.neigh_before.trim().is_empty() {
        cmd.arg("--neigh").arg(&neigh);
    }
    let out = cmd.args(["--dst", &format!("[{SERVER}]:9"), "--format", "json"]).output().expect("runs");
    let json = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("{e}: {json}{}", String::from_utf8_lossy(&out.stderr)));
    let paths = v["paths"].as_array().expect("paths");
    assert_eq!(paths.len(), 1, "{json}");
    paths[0].clone()
}

#[test]
fn meshpath_resolves_next_hops_as_the_kernel_does() {
    if !is_root() {
        return common::skip(WHAT, "not running as root");
    }
    for tool in [&["ip", "-V"][..], &["ip6tables", "-V"], &["ip6tables-save", "-V"], &["bash", "--version"]] {
        if let Err(e) = run(tool) {
            return common::skip(WHAT, e);
        }
    }
    let dir = Scratch(std::env::temp_dir().join(format!("meshpath-kernel-neighbour-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).expect("dir");
    let mut differ = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        let seen = match observe(case, i) {
            Ok(s) => s,
            Err(e) => return common::skip(WHAT, e),
        };
        let ctx = format!(
            "{}:\nbefore: {}after: {}\n{}{:?}",
            case.name, seen.neigh_before, seen.neigh, seen.save, seen.counters
        );
        // The kernel behaves as its sources say.
        assert_eq!(seen.kernel, case.kernel, "{ctx}");
        let state = neigh_state(&seen.neigh);
        match case.kernel {
            Kernel::Unresolved | Kernel::Silent => assert_eq!(state, Some("FAILED"), "{ctx}"),
            Kernel::Reached => assert!(
                matches!(state, Some("REACHABLE" | "STALE" | "DELAY" | "PROBE" | "PERMANENT")),
                "{ctx}"
            ),
        }
        let count = |(chain, n): (&str, usize)| {
            seen.counters.iter().find(|(c, _)| c == chain).and_then(|(_, v)| v.get(n - 1).copied())
        };
        if let Some(r) = case.counted {
            assert!(count(r).is_some_and(|p| p > 0), "{r:?} counted nothing: {ctx}");
        }
        if let Some(r) = case.not_counted {
            assert_eq!(count(r), Some(0), "{r:?} counted packets: {ctx}");
        }
        // meshpath ends the way the kernel did.
        let path = meshpath_path(&dir.0, i, &seen);
        let ending = &path["ending"];
        if case.entry != Entry::None {
            let before = neigh_state(&seen.neigh_before);
            assert!(matches!(before, Some("REACHABLE" | "PERMANENT")), "{ctx}");
            let used = path["steps"].as_array().expect("steps").iter().find_map(|s| {
                (s["detail"]["step"] == "neighbour_resolution").then(|| s["detail"]["entry"].as_str())
            });
            if used != Some(before) {
                differ.push(format!("{}: ip neigh said {before:?}, meshpath used {used:?}", case.name));
            }
        }
        let agrees = match (seen.kernel, case.counted) {
            (Kernel::Unresolved | Kernel::Silent, Some((chain, n))) => {
                ending["kind"] == "dropped"
                    && ending["at"]["chain"] == chain
                    && ending["at"]["rule"] == n
                    && ending["at"]["line"].as_u64().map(|l| l as usize) == rule_line(&seen.save, chain, n)
            }
            (Kernel::Unresolved | Kernel::Silent, None) => ending["kind"] == "dropped",
            (Kernel::Reached, _) => ending["kind"] == "left",
        };
        if !agrees {
            differ.push(format!("{}: kernel {:?}, meshpath {ending}", case.name, seen.kernel));
        }
    }
    assert!(differ.is_empty(), "meshpath and the kernel differ:\n{}", differ.join("\n"));
}
