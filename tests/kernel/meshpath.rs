//! The meshpath side: run `meshpath netfilter trace --format json` for a probe and bring its
//! answer into the same comparable form as the kernel's trace.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::Command;

use super::nftrace::Step;
use super::plan::{Addrs, Direction, Probe, RulesetFacts};

/// The final outcome of one path (the whole trace, or one `statistic` branch).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub disposition: String,
    pub iface_in: Option<String>,
    pub iface_out: Option<String>,
    pub dst: Option<SocketAddr>,
    pub mark: Option<u32>,
}

/// One possible way through the rules: meshpath gives one, or one per `statistic` branch.
#[derive(Debug, Clone)]
pub struct Path_ {
    pub probability: Option<f64>,
    pub steps: Vec<Step>,
    pub outcome: Outcome,
}

pub fn args(rules: &Path, probe: &Probe, addrs: &Addrs, facts: &RulesetFacts) -> Vec<String> {
    let sockaddr = |ip: std::net::IpAddr, port: u16| std::net::SocketAddr::new(ip, port).to_string();
    let mut a: Vec<String> = vec![
        "netfilter".into(),
        "trace".into(),
        if probe.dst.is_ipv6() { "--ip6tables" } else { "--iptables" }.into(),
        rules.display().to_string(),
        "--from".into(),
        match probe.dir {
            Direction::Output => format!("uid:{}:{}", probe.uid, probe.gid),
            Direction::Inbound => "outside".into(),
        },
        "--proto".into(),
        probe.proto.as_str().into(),
        "--src".into(),
        sockaddr(probe.src, probe.sport),
        "--dst".into(),
        sockaddr(probe.dst, probe.dport),
    ];
    match probe.dir {
        Direction::Output => {
            if probe.mark != 0 {
                a.extend(["--mark".into(), format!("{:#x}", probe.mark)]);
            }
        }
        Direction::Inbound => a.extend(["--in".into(), "eth0".into()]),
    }
    // Both pod addresses, in the order they were added.
    a.extend(["--pod-ip".into(), addrs.pod.to_string()]);
    a.extend(["--pod-ip".into(), addrs.secondary.to_string()]);
    for port in &facts.tproxy_ports {
        let any = if addrs.pod.is_ipv6() { "[::]" } else { "0.0.0.0" };
        a.extend(["--listen".into(), format!("tcp:{any}:{port}:transparent")]);
    }
    a.extend(["--format".into(), "json".into()]);
    a
}

/// Run meshpath; `Err` carries a readable reason (exit status, stderr).
pub fn run(bin: &Path, args: &[String]) -> Result<Vec<Path_>, String> {
    let out =
        Command::new(bin).args(args).output().map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if !out.status.success() {
        return Err(format!(
            "meshpath exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("meshpath printed invalid JSON: {e}"))?;
    parse(&v)
}

fn steps(v: &serde_json::Value) -> Result<Vec<Step>, String> {
    let Some(list) = v.as_array() else {
        return Err("`steps` is not a list".into());
    };
    let mut out = Vec::new();
    for s in list {
        let get = |k: &str| s.get(k).and_then(|x| x.as_str()).map(str::to_string);
        let kind = get("kind").unwrap_or_default();
        // Falling off a user chain: the kernel emits a handle-less event that nft 1.0.6 does not
        // print (nft monitor trace prints no event for it), so it has no counterpart in the kernel's list.
        if kind == "return" {
            continue;
        }
        let verdict = get("verdict").unwrap_or_default();
        let rule = match kind.as_str() {
            "rule" => Some(
                s.get("rule")
                    .and_then(|r| r.as_u64())
                    .ok_or_else(|| format!("rule step without a position: {s}"))? as usize,
            ),
            "policy" => None,
            other => return Err(format!("unknown step kind `{other}` in {s}")),
        };
        let target = if verdict == "jump" || verdict == "goto" { get("target") } else { None };
        out.push(Step {
            hook: get("hook").unwrap_or_default(),
            table: get("table").unwrap_or_default(),
            chain: get("chain").unwrap_or_default(),
            rule,
            verdict,
            target,
        });
    }
    Ok(out)
}

fn outcome(v: Option<&serde_json::Value>) -> Outcome {
    let Some(r) = v else {
        return Outcome::default();
    };
    let get = |k: &str| r.get(k).and_then(|x| x.as_str()).map(str::to_string);
    Outcome {
        disposition: get("disposition").unwrap_or_default(),
        iface_in: get("in"),
        iface_out: get("out"),
        dst: get("dst").and_then(|d| parse_sockaddr(&d)),
        mark: get("mark").and_then(|m| parse_mark(&m)),
    }
}

pub fn parse_mark(m: &str) -> Option<u32> {
    match m.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => m.parse().ok(),
    }
}

pub fn parse_sockaddr(s: &str) -> Option<SocketAddr> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa);
    }
    // Tolerate an unbracketed IPv6 `addr:port`.
    let (a, p) = s.rsplit_once(':')?;
    Some(SocketAddr::new(a.parse::<IpAddr>().ok()?, p.parse().ok()?))
}

fn parse(v: &serde_json::Value) -> Result<Vec<Path_>, String> {
    let schema = v.get("schema").and_then(|s| s.as_str()).unwrap_or("");
    if schema != "meshpath.netfilter-trace/v1" {
        return Err(format!("unexpected schema `{schema}`"));
    }
    let common = match v.get("steps") {
        Some(s) => steps(s)?,
        None => Vec::new(),
    };
    match v.get("branches").and_then(|b| b.as_array()) {
        Some(branches) if !branches.is_empty() => {
            let mut out = Vec::new();
            for b in branches {
                let mut all = common.clone();
                if let Some(s) = b.get("steps") {
                    all.extend(steps(s)?);
                }
                out.push(Path_ {
                    probability: b.get("probability").and_then(|p| p.as_f64()),
                    steps: all,
                    outcome: outcome(b.get("result")),
                });
            }
            Ok(out)
        }
        _ => Ok(vec![Path_ { probability: None, steps: common, outcome: outcome(v.get("result")) }]),
    }
}
