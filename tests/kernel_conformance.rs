//! Kernel conformance: every rule set of the corpus is loaded into a real network namespace,
//! real packets are sent through it, the kernel's own trace (`nft monitor trace`) is compared
//! step by step with `meshpath netfilter trace`. How it works: docs/kernel-conformance.md.
//!
//! Needs root, iproute2, iptables (nf_tables backend), nftables and python3; otherwise it prints
//! one `SKIP kernel conformance: <reason>` line and passes. Rule sets with `-m set` also need the
//! ipset tool; without it they are listed as NOT CHECKED. In CI (`CI` or
//! `MESHPATH_REQUIRE_ALL=1` set) a SKIP or a NOT CHECKED fails the test instead.
//!
//! Environment knobs (all optional):
//!   MESHPATH_KERNEL_FILTER=substr   only rule sets whose file name contains `substr`
//!   MESHPATH_KERNEL_DEBUG=1         print the kernel's step list of every probe
//!   MESHPATH_KERNEL_ONLY=1          capture the kernel side only, do not run meshpath
//!   MESHPATH_KERNEL_JOBS=N          rule sets checked in parallel (default 4)
//!   MESHPATH_KERNEL_BIN=path        the meshpath binary to check (default: this build's)

mod common;
#[path = "common/corpus.rs"]
mod corpus;

#[path = "kernel/meshpath.rs"]
mod meshpath_side;
#[path = "kernel/netns.rs"]
mod netns;
#[path = "kernel/nftrace.rs"]
mod nftrace;
#[path = "kernel/plan.rs"]
mod plan;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nftrace::Step;
use plan::{Addrs, Direction, Probe};

/// Deliberate divergences between meshpath and the kernel, each documented in
/// docs/kernel-conformance.md ("Known divergences"). Entries: (rule-set file name, probe label).
/// An entry that no longer diverges is reported so that the list only ever shrinks.
const EXPECTED_DIVERGENCES: &[(&str, &str)] = &[];

/// Rule sets above this size get the small probe plan (kube-proxy node tables).
const LARGE_RULESET_BYTES: u64 = 1_000_000;

fn tool_exists(tool: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.extend(["/usr/sbin", "/sbin"].map(PathBuf::from));
    dirs.iter().any(|d| d.join(tool).is_file())
}

fn skip_reason() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1).map(str::to_string));
    if euid.as_deref() != Some("0") {
        return Some("not running as root".into());
    }
    for tool in ["ip", "iptables-restore", "ip6tables-restore", "nft", "python3"] {
        if !tool_exists(tool) {
            return Some(format!("`{tool}` not found"));
        }
    }
    // The legacy (x_tables) backend's rules are invisible to `nft monitor trace`.
    let version = netns::run(&["iptables-restore", "--version"], None).unwrap_or_default();
    if !version.contains("nf_tables") {
        return Some(format!("iptables is not the nf_tables backend ({})", version.trim()));
    }
    None
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).map(|v| v == "1").unwrap_or(false)
}

/// What happened to one probe in the kernel.
struct KernelResult {
    steps: Vec<Step>,
    outcome: meshpath_side::Outcome,
    lines: Vec<String>,
}

fn kernel_outcome(trace: &nftrace::KernelTrace, steps: &[Step]) -> meshpath_side::Outcome {
    let end = &trace.end;
    let disposition = if nftrace::dropped(steps) {
        "dropped".to_string()
    } else {
        // Never reached input, forward or an outgoing device: dropped without a verdict
        // (e.g. a martian destination at input routing, net/ipv4/route.c `ip_route_input_slow`).
        end.disposition.clone().unwrap_or_else(|| "dropped".into())
    };
    let live = disposition != "dropped";
    meshpath_side::Outcome {
        iface_in: if live && disposition == "local" { end.iif.clone() } else { None },
        iface_out: if live && disposition == "out" { end.oif.clone() } else { None },
        dst: if live { end.dst.as_deref().and_then(meshpath_side::parse_sockaddr) } else { None },
        mark: live.then_some(end.mark),
        disposition,
    }
}

/// Load one rule set, send every probe, return the kernel's result per probe.
fn capture(
    file: &Path,
    addrs: &Addrs,
    facts: &plan::RulesetFacts,
    probes: &[Probe],
) -> Result<Vec<KernelResult>, String> {
    let v6 = addrs.pod.is_ipv6();
    let agent = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kernel/agent.py");
    let net = netns::TestNet::create(addrs)?;
    net.prepare(facts, v6)?;
    let ports: Vec<u16> = facts.tproxy_ports.iter().copied().collect();
    let _listeners = netns::Listeners::start(&net, &agent, v6, &ports)?;
    let monitor = netns::Monitor::start(&net)?;
    let limit = std::time::Duration::from_secs(20);
    monitor.sync(&net, addrs, plan::SYNC_START, limit)?;
    net.load_rules(file, v6)?;
    // Loading makes a burst of netlink traffic; start probing only once the monitor has caught
    // up with it (a probe sent right after the load was occasionally missing under load).
    monitor.sync(&net, addrs, plan::SYNC_LOADED, limit)?;
    let lines = |dir| probes.iter().filter(|p| p.dir == dir).map(Probe::agent_line).collect::<String>();
    netns::send(&net, &net.pod, &agent, &lines(Direction::Output), "out")?;
    netns::send(&net, &net.peer, &agent, &lines(Direction::Inbound), "in")?;
    monitor.sync(&net, addrs, plan::SYNC_END, limit)?;
    std::thread::sleep(std::time::Duration::from_millis(50));
    let (all, monitor_errors) = monitor.finish();

    let origin: BTreeMap<u16, &'static str> = probes
        .iter()
        .map(|p| {
            let hook = match p.dir {
                Direction::Output => "OUTPUT",
                Direction::Inbound => "PREROUTING",
            };
            (p.sport, hook)
        })
        .collect();
    let traces = nftrace::split(&all, netns::TRACE_TABLE_NAME, &origin);
    let mut cache: BTreeMap<(String, String, String), BTreeMap<u64, usize>> = BTreeMap::new();
    let mut lookup = |family: &str, table: &str, chain: &str| {
        let key = (family.to_string(), table.to_string(), chain.to_string());
        cache
            .entry(key)
            .or_insert_with(|| {
                let listing = netns::run(
                    &net.exec(&net.pod, &["nft", "-a", "list", "chain", family, table, chain]),
                    None,
                )
                .unwrap_or_default();
                nftrace::positions(&listing)
            })
            .clone()
    };
    let missing: Vec<String> =
        probes.iter().filter(|p| !traces.contains_key(&p.sport)).map(Probe::label).collect();
    if let Some(first) = missing.first() {
        return Err(format!(
            "no kernel trace for {} of {} probes, first: {first}; nft monitor said: {}",
            missing.len(),
            probes.len(),
            if monitor_errors.is_empty() { "nothing" } else { monitor_errors.as_str() }
        ));
    }
    let mut out = Vec::new();
    for p in probes {
        let Some(trace) = traces.get(&p.sport) else {
            continue;
        };
        let steps = nftrace::resolve(&trace.steps, &mut lookup);
        let outcome = kernel_outcome(trace, &steps);
        out.push(KernelResult { steps, outcome, lines: trace.lines.clone() });
    }
    Ok(out)
}

fn fmt_outcome(o: &meshpath_side::Outcome) -> String {
    let mut s = o.disposition.clone();
    if let Some(i) = &o.iface_in {
        s += &format!(" in={i}");
    }
    if let Some(i) = &o.iface_out {
        s += &format!(" out={i}");
    }
    if let Some(d) = &o.dst {
        s += &format!(" dst={d}");
    }
    if let Some(m) = o.mark {
        s += &format!(" mark={m:#x}");
    }
    s
}

/// Compare what the kernel shows: the disposition always; for a packet that was delivered,
/// forwarded or sent, also the input (local) or output (out) device, the destination after NAT
/// and the mark. meshpath must report each of those the kernel shows.
fn outcome_agrees(kernel: &meshpath_side::Outcome, mp: &meshpath_side::Outcome) -> bool {
    if kernel.disposition != mp.disposition {
        return false;
    }
    let shown = |k: &Option<String>, m: &Option<String>| k.is_none() || k == m;
    shown(&kernel.iface_in, &mp.iface_in)
        && shown(&kernel.iface_out, &mp.iface_out)
        && (kernel.dst.is_none() || kernel.dst == mp.dst)
        && (kernel.mark.is_none() || kernel.mark == mp.mark)
}

fn side_by_side(kernel: &[Step], mp: &[Step]) -> (Option<usize>, String) {
    let n = kernel.len().max(mp.len());
    let first = (0..n).find(|i| kernel.get(*i) != mp.get(*i));
    let mut s = String::new();
    for i in 0..n {
        let k = kernel.get(i).map(|x| x.to_string()).unwrap_or_default();
        let m = match (kernel.get(i), mp.get(i)) {
            (Some(a), Some(b)) if a == b => "same".to_string(),
            (_, Some(b)) => b.to_string(),
            (_, None) => "-".to_string(),
        };
        let mark = if Some(i) == first { ">>" } else { "  " };
        s += &format!("  {mark}{:>3}  {:<72} | {}\n", i + 1, k, m);
    }
    (first, s)
}

/// Compare one probe; `None` when meshpath agrees, else the report text.
fn compare(
    name: &str,
    probe: &Probe,
    kernel: &KernelResult,
    paths: &[meshpath_side::Path_],
    cmdline: &str,
) -> Option<String> {
    // With `statistic` branches the kernel took one of them; it must be exactly one of meshpath's.
    if paths.iter().any(|p| p.steps == kernel.steps && outcome_agrees(&kernel.outcome, &p.outcome)) {
        return None;
    }
    let mut report = format!("MISMATCH {name}: {}\n", probe.label());
    for (i, p) in paths.iter().enumerate() {
        let (first, table) = side_by_side(&kernel.steps, &p.steps);
        if paths.len() > 1 {
            report += &format!("  branch {} (probability {:?})\n", i + 1, p.probability);
        }
        match first {
            Some(f) => report += &format!("  first differing step: {}\n", f + 1),
            None => report += "  steps agree\n",
        }
        report += &format!("        {:<72} | meshpath\n", "kernel");
        report += &table;
        report += &format!(
            "  result: kernel {} | meshpath {}\n",
            fmt_outcome(&kernel.outcome),
            fmt_outcome(&p.outcome)
        );
    }
    report += &format!("  meshpath {cmdline}\n");
    if env_flag("MESHPATH_KERNEL_DEBUG") {
        for l in &kernel.lines {
            report += &format!("    | {l}\n");
        }
    }
    Some(report)
}

/// What one rule set contributed, printed in file order at the end.
#[derive(Default)]
struct RulesetOutcome {
    log: String,
    probes: usize,
    agreed: usize,
    expected: usize,
    mismatches: Vec<String>,
    stale_exceptions: Vec<String>,
    /// Why the rule set could not be checked here (a missing optional tool).
    not_checked: Option<String>,
}

fn check_ruleset(file: &Path) -> Result<RulesetOutcome, String> {
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let v6 = name.ends_with(".v6.iptables-save");
    let addrs = Addrs::for_family(v6);
    let text = std::fs::read_to_string(file).map_err(|e| format!("{name}: {e}"))?;
    let large = text.len() as u64 > LARGE_RULESET_BYTES;
    let facts = plan::facts(&text, &addrs, if large { 1 } else { 3 });
    let probes = if large { plan::small(&addrs, &facts) } else { plan::full(&addrs, &facts) };
    let mut res = RulesetOutcome::default();
    if !facts.ipsets.is_empty() && !tool_exists("ipset") {
        res.not_checked = Some(format!("{name}: needs the ipset tool to create {:?}", facts.ipsets));
        return Ok(res);
    }
    // A lost trace (nft monitor overrun on a loaded machine) gets one fresh attempt.
    let kernel = capture(file, &addrs, &facts, &probes)
        .or_else(|first| {
            capture(file, &addrs, &facts, &probes).map_err(|again| format!("{first}; on retry: {again}"))
        })
        .map_err(|e| format!("{name}: {e}"))?;
    let kernel_only = env_flag("MESHPATH_KERNEL_ONLY");
    let debug = env_flag("MESHPATH_KERNEL_DEBUG");
    let bin = std::env::var_os("MESHPATH_KERNEL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_meshpath")));
    let bin = bin.as_path();
    for (probe, k) in probes.iter().zip(&kernel) {
        res.probes += 1;
        if debug {
            res.log += &format!("{name}: {}\n  kernel result: {}\n", probe.label(), fmt_outcome(&k.outcome));
            for s in &k.steps {
                res.log += &format!("    {s}\n");
            }
        }
        if kernel_only {
            continue;
        }
        let args = meshpath_side::args(file, probe, &addrs, &facts);
        let cmdline = args.join(" ");
        let expected = EXPECTED_DIVERGENCES.iter().any(|(f, l)| *f == name && *l == probe.label());
        let report = match meshpath_side::run(bin, &args) {
            Ok(paths) => compare(&name, probe, k, &paths, &cmdline),
            Err(e) => Some(format!(
                "MISMATCH {name}: {}\n  meshpath failed: {e}\n  meshpath {cmdline}\n",
                probe.label()
            )),
        };
        match (report, expected) {
            (None, false) => res.agreed += 1,
            (None, true) => res.stale_exceptions.push(format!("{name}: {}", probe.label())),
            (Some(_), true) => res.expected += 1,
            (Some(r), false) => res.mismatches.push(r),
        }
    }
    Ok(res)
}

#[test]
fn kernel_agrees_with_meshpath() {
    if let Some(reason) = skip_reason() {
        common::skip("kernel conformance", reason);
        return;
    }
    let files = match corpus::files("iptables", ".iptables-save") {
        Ok(f) => f
            .into_iter()
            .filter(|f| {
                let n = f.to_string_lossy();
                n.ends_with(".v4.iptables-save") || n.ends_with(".v6.iptables-save")
            })
            .collect::<Vec<_>>(),
        Err(reason) => {
            common::skip("kernel conformance", reason);
            return;
        }
    };
    let filter = std::env::var("MESHPATH_KERNEL_FILTER").unwrap_or_default();
    let files: Vec<PathBuf> =
        files.into_iter().filter(|f| f.to_string_lossy().contains(filter.as_str())).collect();
    if files.is_empty() {
        common::skip("kernel conformance", format!("no rule set matches `{filter}`"));
        return;
    }
    // Rule sets run in parallel, each in its own namespaces; most of the time goes to waiting
    // for packets and to meshpath runs.
    let jobs: usize =
        std::env::var("MESHPATH_KERNEL_JOBS").ok().and_then(|j| j.parse().ok()).unwrap_or(4).max(1);
    // Longest first (the kube-proxy tables), so they overlap with the many small ones.
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by_key(|i| {
        let size = files.get(*i).and_then(|f| std::fs::metadata(f).ok()).map(|m| m.len());
        std::cmp::Reverse(size.unwrap_or(0))
    });
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<Result<RulesetOutcome, String>>>> =
        files.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(files.len()) {
            scope.spawn(|| loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(&i) = order.get(n) else { break };
                let Some(file) = files.get(i) else { break };
                let r = std::panic::catch_unwind(|| check_ruleset(file))
                    .unwrap_or_else(|_| Err(format!("{}: panicked", file.display())));
                if let Some(slot) = results.get(i) {
                    if let Ok(mut slot) = slot.lock() {
                        *slot = Some(r);
                    }
                }
            });
        }
    });
    let (mut rulesets, mut probes, mut agreed, mut expected) = (0, 0, 0, 0);
    let (mut mismatches, mut errors, mut stale, mut not_checked) = (0, 0, 0, 0);
    for slot in results {
        match slot.into_inner().ok().flatten() {
            Some(Ok(r)) if r.not_checked.is_some() => {
                not_checked += 1;
                println!("NOT CHECKED {}", r.not_checked.unwrap_or_default());
            }
            Some(Ok(r)) => {
                rulesets += 1;
                probes += r.probes;
                agreed += r.agreed;
                expected += r.expected;
                mismatches += r.mismatches.len();
                stale += r.stale_exceptions.len();
                print!("{}", r.log);
                for m in &r.mismatches {
                    println!("{m}");
                }
                for s in &r.stale_exceptions {
                    println!("STALE EXCEPTION (now agrees, remove it from the list): {s}");
                }
            }
            Some(Err(e)) => {
                errors += 1;
                println!("ERROR {e}");
            }
            None => {
                errors += 1;
                println!("ERROR a rule set was not checked");
            }
        }
    }
    println!(
        "kernel conformance: {rulesets} rule sets, {probes} probes, {agreed} agree, \
         {expected} expected divergences, {mismatches} mismatches, {errors} errors, \
         {not_checked} not checked"
    );
    assert!(
        mismatches == 0 && errors == 0 && stale == 0,
        "meshpath disagrees with the kernel (see the report above)"
    );
    // A rule set left unchecked for a missing tool (ipset) must not pass silently in CI.
    assert!(
        not_checked == 0 || !common::require_all(),
        "{not_checked} rule sets not checked (see NOT CHECKED above); CI needs every tool"
    );
}
