//! Differential check of source address selection: a real network namespace shaped like a pod
//! (addresses on eth0, 127.0.0.0/8 and ::1 on lo, a default route via eth0) answers
//! `ip route get DST`, and meshpath's `Netns::preferred_source` must name the same `src`.
//!
//! Needs root and iproute2; otherwise it prints `SKIP kernel source address: <reason>` and
//! passes (in CI, `CI` or `MESHPATH_REQUIRE_ALL=1`, it fails instead).

mod common;

use std::net::IpAddr;
use std::process::Command;

use meshpath::netns::Netns;

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

/// A namespace removed on drop.
struct Ns(String);

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = run(&["ip", "netns", "del", &self.0]);
    }
}

/// `src` of `ip route get` (None when the kernel has no route).
fn kernel_source(ns: &str, dst: &str) -> Option<IpAddr> {
    let out = run(&["ip", "-n", ns, "route", "get", dst]).ok()?;
    let mut words = out.split_whitespace();
    while let Some(w) = words.next() {
        if w == "src" {
            return words.next()?.parse().ok();
        }
    }
    None
}

#[test]
fn ip_route_get_and_meshpath_pick_the_same_source() {
    if !is_root() {
        return common::skip("kernel source address", "not running as root");
    }
    if run(&["ip", "-V"]).is_err() {
        return common::skip("kernel source address", "`ip` not found");
    }
    let name = format!("mp-src-{}", std::process::id());
    if let Err(e) = run(&["ip", "netns", "add", &name]) {
        return common::skip("kernel source address", e);
    }
    let ns = Ns(name);
    let n = ns.0.as_str();
    // The pod's eth0 (a veth whose peer stays in the namespace), with two IPv4 addresses of one
    // prefix (the second is secondary) and two IPv6 ones, and a default route by device.
    let setup: &[&[&str]] = &[
        &["ip", "-n", n, "link", "set", "lo", "up"],
        &["ip", "-n", n, "link", "add", "eth0", "type", "veth", "peer", "name", "peer0"],
        &["ip", "-n", n, "link", "set", "peer0", "up"],
        &["ip", "-n", n, "link", "set", "eth0", "up"],
        &["ip", "-n", n, "addr", "add", "10.244.0.5/24", "dev", "eth0"],
        &["ip", "-n", n, "addr", "add", "10.244.0.6/24", "dev", "eth0"],
        &["ip", "-n", n, "-6", "addr", "add", "fd00::5/64", "dev", "eth0", "nodad"],
        &["ip", "-n", n, "route", "add", "default", "dev", "eth0"],
        &["ip", "-n", n, "-6", "route", "add", "default", "dev", "eth0"],
    ];
    for cmd in setup {
        if let Err(e) = run(cmd) {
            return common::skip("kernel source address", e);
        }
    }
    let pod = Netns::pod(&[
        "10.244.0.5/24".parse().unwrap(),
        "10.244.0.6/24".parse().unwrap(),
        "fd00::5/64".parse().unwrap(),
    ]);
    let mut differ = Vec::new();
    for dst in [
        "127.0.0.1",
        "127.0.0.53",
        "127.0.0.6",
        "10.244.0.5",
        "10.244.0.6",
        "10.244.0.9",
        "10.96.0.10",
        "8.8.8.8",
        "::1",
        "fd00::5",
        "fd00::9",
        "2001:db8::1",
    ] {
        let kernel = kernel_source(n, dst);
        let ours = pod.preferred_source(dst.parse().unwrap(), 0);
        if kernel != ours {
            differ.push(format!("{dst}: kernel {kernel:?}, meshpath {ours:?}"));
        }
    }
    assert!(differ.is_empty(), "source addresses differ:\n{}", differ.join("\n"));
}
