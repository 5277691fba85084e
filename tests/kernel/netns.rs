//! The test network: a pod netns whose `eth0` is a veth to a peer netns, loaded with one rule
//! set, plus the processes that live in it (trace monitor, transparent listeners).
//!
//! Everything created here is torn down by `Drop`, also when a probe comparison panics.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::plan::{Addrs, RulesetFacts};

/// Run a command, return its stdout, or an error naming the command and its stderr.
pub fn run(args: &[&str], stdin: Option<&[u8]>) -> Result<String, String> {
    let (prog, rest) = args.split_first().ok_or("empty command")?;
    let mut cmd = Command::new(prog);
    cmd.args(rest).stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if let Some(input) = stdin {
        if let Some(mut pipe) = child.stdin.take() {
            pipe.write_all(input).map_err(|e| format!("{}: writing stdin: {e}", args.join(" ")))?;
        }
    }
    let out = child.wait_with_output().map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The real python3 interpreter (not a version-manager shim, whose start-up costs more than
/// the probes themselves).
pub fn python() -> &'static str {
    static PYTHON: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PYTHON.get_or_init(|| {
        run(&["python3", "-c", "import sys; print(sys.executable)"], None)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "python3".to_string())
    })
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

const POD_MAC: &str = "02:00:00:00:00:05";
const PEER_MAC: &str = "02:00:00:00:00:01";

/// A pod/peer netns pair. Deleted on drop.
pub struct TestNet {
    pub pod: String,
    pub peer: String,
}

impl TestNet {
    /// Create both namespaces and wire them up (see docs/kernel-conformance.md, "Network").
    pub fn create(addrs: &Addrs) -> Result<TestNet, String> {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        if n == 0 {
            remove_stale();
        }
        let net = TestNet { pod: format!("mpk{pid}-{n}-pod"), peer: format!("mpk{pid}-{n}-peer") };
        run(&["ip", "netns", "add", &net.pod], None)?;
        run(&["ip", "netns", "add", &net.peer], None)?;
        let (pod, peer) = (net.pod.as_str(), net.peer.as_str());
        run(
            &[
                "ip", "link", "add", "eth0", "address", POD_MAC, "netns", pod, "type", "veth", "peer",
                "name", "eth0", "address", PEER_MAC, "netns", peer,
            ],
            None,
        )?;
        let v6 = addrs.pod.is_ipv6();
        let plen = if v6 { "64" } else { "24" };
        let pod_ip = addrs.pod.to_string();
        let peer_ip = addrs.peer.to_string();
        for (ns, own, other, other_mac) in
            [(pod, &pod_ip, &peer_ip, PEER_MAC), (peer, &peer_ip, &pod_ip, POD_MAC)]
        {
            // Probe source ports live in 30000-39999; keep the kernel's own choices away.
            run(
                &[
                    "ip",
                    "netns",
                    "exec",
                    ns,
                    "sysctl",
                    "-q",
                    "-w",
                    "net.ipv4.ip_local_port_range=50000 60999",
                ],
                None,
            )?;
            run(&["ip", "-n", ns, "link", "set", "lo", "up"], None)?;
            run(&["ip", "-n", ns, "link", "set", "eth0", "up"], None)?;
            let cidr = format!("{own}/{plen}");
            let mut add = vec!["ip", "-n", ns, "addr", "add", cidr.as_str(), "dev", "eth0"];
            if v6 {
                add.push("nodad");
            }
            run(&add, None)?;
            run(
                &[
                    "ip",
                    "-n",
                    ns,
                    "neigh",
                    "replace",
                    other,
                    "lladdr",
                    other_mac,
                    "dev",
                    "eth0",
                    "nud",
                    "permanent",
                ],
                None,
            )?;
        }
        // A second pod address, added after the first: inbound REDIRECT picks the primary
        // (IPv4) or the newest (IPv6) address of eth0 (net/ipv4/devinet.c, net/ipv6/addrconf.c).
        let second = addrs.secondary.to_string();
        let cidr = format!("{second}/{plen}");
        let mut add = vec!["ip", "-n", pod, "addr", "add", cidr.as_str(), "dev", "eth0"];
        if v6 {
            add.push("nodad");
        }
        run(&add, None)?;
        run(
            &[
                "ip",
                "-n",
                peer,
                "neigh",
                "replace",
                &second,
                "lladdr",
                POD_MAC,
                "dev",
                "eth0",
                "nud",
                "permanent",
            ],
            None,
        )?;
        let fam = if v6 { "-6" } else { "-4" };
        run(&["ip", fam, "-n", pod, "route", "add", "default", "via", &peer_ip, "dev", "eth0"], None)?;
        if v6 {
            // Istio adds ::6 to lo for the inbound passthrough source (Istio: tools/istio-iptables, the ::6 address on lo).
            run(&["ip", "-6", "-n", pod, "addr", "add", "::6/128", "dev", "lo", "nodad"], None)?;
        }
        Ok(net)
    }

    pub fn exec<'a>(&'a self, ns: &'a str, args: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["ip", "netns", "exec", ns];
        v.extend_from_slice(args);
        v
    }

    /// ipsets, TPROXY routing and the trace table: everything but the rule set.
    pub fn prepare(&self, facts: &RulesetFacts, v6: bool) -> Result<(), String> {
        let pod = self.pod.as_str();
        for set in &facts.ipsets {
            let family = if v6 { "inet6" } else { "inet" };
            run(&self.exec(pod, &["ipset", "create", set, "hash:ip", "family", family, "-exist"]), None)?;
        }
        let fam = if v6 { "-6" } else { "-4" };
        for mark in &facts.tproxy_marks {
            run(&["ip", fam, "-n", pod, "rule", "add", "fwmark", mark, "lookup", "133"], None)?;
        }
        if !facts.tproxy_marks.is_empty() {
            run(
                &["ip", fam, "-n", pod, "route", "add", "local", "default", "dev", "lo", "table", "133"],
                None,
            )?;
        }
        run(&self.exec(pod, &["nft", "-f", "-"]), Some(TRACE_TABLE.as_bytes()))?;
        Ok(())
    }

    /// The rule set itself. Loaded after the trace monitor has started: nft then knows none of
    /// its rules and prints `unknown rule handle N` instead of reading (and re-printing) the
    /// whole rule set first, which takes minutes for the kube-proxy tables.
    pub fn load_rules(&self, rules: &Path, v6: bool) -> Result<(), String> {
        let text = std::fs::read(rules).map_err(|e| format!("{}: {e}", rules.display()))?;
        let restore = if v6 { "ip6tables-restore" } else { "iptables-restore" };
        run(&self.exec(&self.pod, &[restore]), Some(&text))?;
        Ok(())
    }
}

/// Deletes namespaces left by an earlier run that was killed before its `Drop` ran
/// (`mpk<pid>-...` whose process is gone).
fn remove_stale() {
    let Ok(list) = std::process::Command::new("ip").args(["netns", "list"]).output() else { return };
    for line in String::from_utf8_lossy(&list.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else { continue };
        let Some(pid) = name.strip_prefix("mpk").and_then(|r| r.split('-').next()) else { continue };
        let alive = pid.parse::<u32>().is_ok_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists());
        if !alive {
            let _ = std::process::Command::new("ip").args(["netns", "del", name]).output();
        }
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        let _ = run(&["ip", "netns", "del", &self.pod], None);
        let _ = run(&["ip", "netns", "del", &self.peer], None);
    }
}

/// Our own nft table: switches tracing on for probe packets only (source ports 30000-39999,
/// TCP SYN without ACK, any UDP), before every iptables table (priority -350), and marks where
/// a packet ends (input / forward / postrouting chains after every iptables table).
/// It has no `ct` expression: conntrack stays off unless the rule set itself needs it, which
/// meshpath models (net/ipv6/addrconf.c).
pub const TRACE_TABLE: &str = "\
table inet meshpath_trace {
  chain probe_pre {
    type filter hook prerouting priority -350; policy accept;
    tcp sport 30000-39999 tcp flags & (syn | ack) == syn meta nftrace set 1
    udp sport 30000-39999 meta nftrace set 1
  }
  chain probe_out {
    type filter hook output priority -350; policy accept;
    tcp sport 30000-39999 tcp flags & (syn | ack) == syn meta nftrace set 1
    udp sport 30000-39999 meta nftrace set 1
  }
  chain end_in {
    type filter hook input priority 400; policy accept;
  }
  chain end_fwd {
    type filter hook forward priority 400; policy accept;
  }
  chain end_post {
    type filter hook postrouting priority 400; policy accept;
  }
}
";

pub const TRACE_TABLE_NAME: &str = "meshpath_trace";

/// `nft -a monitor trace` inside the pod netns, its lines collected by a reader thread.
pub struct Monitor {
    child: Child,
    /// Where nft's stderr goes (e.g. a netlink overrun message), for the error report.
    errors: std::path::PathBuf,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Monitor {
    pub fn start(net: &TestNet) -> Result<Monitor, String> {
        let errors = std::env::temp_dir().join(format!("{}.monitor.err", net.pod));
        let err_file = std::fs::File::create(&errors).map_err(|e| format!("{}: {e}", errors.display()))?;
        let mut child = Command::new("ip")
            .args(["netns", "exec", &net.pod, "nft", "-a", "monitor", "trace"])
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err_file))
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("nft monitor trace: {e}"))?;
        let stdout = child.stdout.take().ok_or("nft monitor: no stdout")?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut v) = sink.lock() {
                    v.push(line);
                }
            }
        });
        Ok(Monitor { child, errors, lines, reader: Some(reader) })
    }

    /// Whether a line mentioning `needle` has arrived.
    pub fn seen(&self, needle: &str) -> bool {
        self.lines.lock().map(|v| v.iter().any(|l| l.contains(needle))).unwrap_or(false)
    }

    /// Send marker datagrams from `sport` until the monitor reports one (or `limit` runs out).
    pub fn sync(&self, net: &TestNet, addrs: &Addrs, sport: u16, limit: Duration) -> Result<(), String> {
        let needle = format!("udp sport {sport} ");
        let start = Instant::now();
        let lo = addrs.lo.to_string();
        let sport_s = sport.to_string();
        let script = "import socket,sys\nf=socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET\ns=socket.socket(f,socket.SOCK_DGRAM)\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind((sys.argv[1],int(sys.argv[2])))\ns.sendto(b'sync',(sys.argv[1],9))\n";
        while start.elapsed() < limit {
            run(&net.exec(&net.pod, &[python(), "-c", script, &lo, &sport_s]), None)?;
            let sent = Instant::now();
            while sent.elapsed() < Duration::from_millis(1000) {
                if self.seen(&needle) {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        Err(format!("nft monitor trace never reported the marker from port {sport} within {limit:?}"))
    }

    /// Stop the monitor; return every line it printed and what it said on stderr.
    pub fn finish(mut self) -> (Vec<String>, String) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let lines = self.lines.lock().map(|v| v.clone()).unwrap_or_default();
        let errors = std::fs::read_to_string(&self.errors).unwrap_or_default();
        (lines, errors.trim().to_string())
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.errors);
    }
}

/// Transparent TCP listeners on the TPROXY ports (what Envoy provides in a real pod).
pub struct Listeners {
    child: Option<Child>,
}

impl Listeners {
    pub fn start(net: &TestNet, agent: &Path, v6: bool, ports: &[u16]) -> Result<Listeners, String> {
        if ports.is_empty() {
            return Ok(Listeners { child: None });
        }
        let mut args: Vec<String> = vec![
            "netns".into(),
            "exec".into(),
            net.pod.clone(),
            python().into(),
            agent.display().to_string(),
            "listen".into(),
            if v6 { "v6" } else { "v4" }.into(),
        ];
        args.extend(ports.iter().map(|p| p.to_string()));
        let mut child = Command::new("ip")
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("listener agent: {e}"))?;
        let stdout = child.stdout.take().ok_or("listener agent: no stdout")?;
        let mut first = String::new();
        let _ = BufReader::new(stdout).read_line(&mut first);
        let listeners = Listeners { child: Some(child) };
        if first.trim() != "ready" {
            return Err(format!("listener agent did not start (ports {ports:?})"));
        }
        Ok(listeners)
    }
}

impl Drop for Listeners {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            drop(child.stdin.take());
            if child.wait_timeout_ms(2000).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

trait WaitTimeout {
    fn wait_timeout_ms(&mut self, ms: u64) -> Option<std::process::ExitStatus>;
}

impl WaitTimeout for Child {
    fn wait_timeout_ms(&mut self, ms: u64) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(ms) {
            if let Ok(Some(st)) = self.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

/// Write the probes of one sender to a file and run the agent in `ns`.
pub fn send(net: &TestNet, ns: &str, agent: &Path, lines: &str, tag: &str) -> Result<(), String> {
    if lines.is_empty() {
        return Ok(());
    }
    let file = std::env::temp_dir().join(format!("{}-{tag}.probes", net.pod));
    std::fs::write(&file, lines).map_err(|e| format!("{}: {e}", file.display()))?;
    let agent_s = agent.display().to_string();
    let file_s = file.display().to_string();
    let res = run(&net.exec(ns, &[python(), &agent_s, "send", &file_s, "0.002"]), None);
    let _ = std::fs::remove_file(&file);
    res.map(|_| ())
}
