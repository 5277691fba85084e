//! From what the user typed ([`super::args`]) to validated library values, once: the pod
//! evidence for [`meshpath::engine::evidence`], the mesh, the sender, the pick, the client's
//! first bytes. Deprecated spellings are mapped here, each with its warning.

use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;
use miette::{miette, Result};

use meshpath::engine::evidence::{EvidenceError, Forwarder, PodEvidence, PodFiles};
use meshpath::engine::{From, Mesh, Pick, Pod};
use meshpath::envoy::select::{ClientBytes, HttpRequest, NameTable};
use meshpath::istio::Conventions;
use meshpath::netns::{parse_ip_route, parse_ip_rule, parse_listen, Socket};
use meshpath::scenario::syntax::{parse_addr, parse_from, parse_header, parse_pick, Client, SyntaxError};
use meshpath::scenario::{self, Scenario};

use super::args::{deprecated, MeshArgs, NameArgs, PickArgs, PodArgs, RequestArgs, SenderArgs};

/// A piece of evidence that could not be read, as a located diagnostic.
pub fn evidence(e: EvidenceError) -> miette::Report {
    miette::Report::new(e)
}

/// Reads a scenario file; its problems become located diagnostics.
pub fn load_scenario(path: &Path) -> Result<Scenario> {
    scenario::load(path).map_err(|e| e.report())
}

/// `flag value: message` for a value that does not follow its syntax.
pub fn syntax<T>(flag: &str, r: std::result::Result<T, SyntaxError>) -> Result<T> {
    r.map_err(|e| miette!("{flag} {e}"))
}

/// How a command wants its pod built, beyond the pod flags.
#[derive(Debug, Default)]
pub struct PodOptions {
    /// Read `--rules` (deprecated) as IPv6 rules.
    pub rules_v6: bool,
    /// The pod's address when neither --pod-ip nor a scenario gives one.
    pub default_addr: Option<IpAddr>,
    /// Interfaces a packet may arrive on besides lo and eth0.
    pub interfaces: Vec<String>,
    pub forwarding: bool,
    /// Keep unsupported matches and targets as "unknown".
    pub lenient: bool,
}

/// The pod's addresses: --pod-ip (and the deprecated --local).
fn addresses(a: &PodArgs) -> Result<Vec<IpNet>> {
    if !a.local.is_empty() {
        deprecated("--local", "--pod-ip");
    }
    let list = a.pod_ip.iter().chain(&a.local);
    list.flat_map(|s| s.split(',')).map(|s| syntax("--pod-ip", parse_addr(s.trim()))).collect()
}

fn listen(flag: &str, l: &str) -> Result<Socket> {
    parse_listen(l).map_err(|e| miette!("{flag} {l}: {e}"))
}

/// The files and values the pod flags name (not with --scenario).
pub fn pod_files(a: &PodArgs, opts: &PodOptions) -> Result<PodFiles> {
    let mut addrs = addresses(a)?;
    if addrs.is_empty() {
        match opts.default_addr {
            Some(ip) => addrs.push(IpNet::from(ip)),
            None => return Err(miette!("give the pod's addresses with --pod-ip")),
        }
    }
    let mut f = PodFiles {
        name: a.pod.clone().unwrap_or_else(|| "pod".into()),
        addrs,
        iptables: a.iptables.clone(),
        ip6tables: a.ip6tables.clone(),
        envoy: a.envoy.clone(),
        sockets: a.sockets.clone(),
        ip_rules: a.ip_rules.clone(),
        ip_routes: a.ip_routes.clone(),
        interfaces: opts.interfaces.clone(),
        forwarding: opts.forwarding,
        lenient: opts.lenient,
        istio: Conventions::default(),
        proxy_uid: a.proxy_uid,
        proxy_gid: a.proxy_gid,
        resolv_conf: a.resolv_conf.clone(),
        neigh: a.neigh.clone(),
        ..PodFiles::default()
    };
    for spec in &a.forwarder {
        f.forwarders.push(Forwarder::parse(spec).map_err(|e| miette!("--forwarder {e}"))?);
    }
    if let Some(r) = &a.rules {
        let (slot, new) =
            if opts.rules_v6 { (&mut f.ip6tables, "--ip6tables") } else { (&mut f.iptables, "--iptables") };
        deprecated("--rules", new);
        if slot.is_some() {
            return Err(miette!("--rules and {new} both give the rule set; drop --rules"));
        }
        *slot = Some(r.clone());
    }
    if f.iptables.is_none() && f.ip6tables.is_none() {
        return Err(miette!("give the pod's rules with --iptables (and --ip6tables for IPv6)"));
    }
    for l in &a.listen {
        f.listen.push(listen("--listen", l)?);
    }
    let v6 = f.routing_v6();
    for r in &a.ip_rule {
        if let Some(rule) = parse_ip_rule(r, v6).map_err(|e| miette!("--ip-rule \"{r}\": {e}"))? {
            f.added_ip_rules.push(rule);
        }
    }
    for r in &a.ip_route {
        let route =
            parse_ip_route(r, v6 || r.contains(':')).map_err(|e| miette!("--ip-route \"{r}\": {e}"))?;
        f.added_routes.extend(route);
    }
    Ok(f)
}

/// The pod flags that a scenario replaces.
fn refuse_with_scenario(a: &PodArgs, s: &Path) -> Result<()> {
    let given = [
        ("--iptables", a.iptables.is_some()),
        ("--ip6tables", a.ip6tables.is_some()),
        ("--rules", a.rules.is_some()),
        ("--envoy", a.envoy.is_some()),
        ("--pod-ip", !a.pod_ip.is_empty() || !a.local.is_empty()),
        ("--sockets", a.sockets.is_some()),
        ("--ip-rule", !a.ip_rule.is_empty()),
        ("--ip-route", !a.ip_route.is_empty()),
        ("--ip-rules", a.ip_rules.is_some()),
        ("--ip-routes", a.ip_routes.is_some()),
        ("--proxy-uid", a.proxy_uid.is_some()),
        ("--proxy-gid", a.proxy_gid.is_some()),
        ("--resolv-conf", a.resolv_conf.is_some()),
        ("--neigh", a.neigh.is_some()),
        ("--forwarder", !a.forwarder.is_empty()),
    ];
    let flags: Vec<&str> = given.iter().filter(|(_, g)| *g).map(|(f, _)| *f).collect();
    if flags.is_empty() {
        return Ok(());
    }
    Err(miette!("--scenario {} describes the pods; drop {}", s.display(), flags.join(", ")))
}

/// The scenario's mesh and the index of the pod --pod names (default its first).
fn scenario_pod(a: &PodArgs, s: &Path) -> Result<(Mesh, usize)> {
    refuse_with_scenario(a, s)?;
    let sc = load_scenario(s)?;
    let pod = match &a.pod {
        None => 0,
        Some(name) => sc.mesh.pod_index(name).ok_or_else(|| {
            miette!("{}: no pod named `{name}`; the pods are: {}", s.display(), sc.pod_names().join(", "))
        })?,
    };
    let mut mesh = sc.mesh;
    for l in &a.listen {
        let sock = listen("--listen", l)?;
        if let Some(p) = mesh.pods.get_mut(pod) {
            p.netns.sockets.push(sock);
        }
    }
    Ok((mesh, pod))
}

/// One pod, from its flags or a scenario (netfilter trace).
pub fn pod(a: &PodArgs, opts: &PodOptions) -> Result<Pod> {
    if let Some(s) = &a.scenario {
        let (mut mesh, index) = scenario_pod(a, s)?;
        let mut pod = mesh.pods.swap_remove(index);
        for name in &opts.interfaces {
            if pod.netns.interface(name).is_none() {
                pod.netns
                    .interfaces
                    .push(meshpath::netns::Interface { name: name.clone(), addrs: Vec::new() });
            }
        }
        pod.netns.forwarding |= opts.forwarding;
        return Ok(pod);
    }
    Ok(pod_files(a, opts)?.read().map_err(evidence)?.build())
}

/// The mesh the flags (or `--scenario`) describe and the index of the pod a connection starts
/// in: the pod (index 0) and its peers with the name table, or the scenario's snapshot.
pub fn mesh(a: &MeshArgs, opts: &PodOptions) -> Result<(Mesh, usize)> {
    let names = names(&a.names)?;
    if let Some(s) = &a.pod.scenario {
        if !a.peer.is_empty() {
            return Err(miette!("--scenario {} describes the pods; drop --peer", s.display()));
        }
        let (mut mesh, pod) = scenario_pod(&a.pod, s)?;
        mesh.names.extend(names);
        return Ok((mesh, pod));
    }
    let mut pods: Vec<PodEvidence> = vec![pod_files(&a.pod, opts)?.read().map_err(evidence)?];
    for spec in &a.peer {
        pods.push(peer(spec)?.read().map_err(evidence)?);
    }
    Ok((Mesh::build(pods, names), 0))
}

/// `NAME=IP,IPTABLES,ENVOY[,LISTEN;LISTEN...]`.
fn peer(spec: &str) -> Result<PodFiles> {
    let (name, rest) =
        spec.split_once('=').ok_or_else(|| miette!("--peer {spec}: expected NAME=IP,IPTABLES,ENVOY"))?;
    let parts: Vec<&str> = rest.split(',').collect();
    if parts.len() < 3 {
        return Err(miette!("--peer {spec}: expected NAME=IP,IPTABLES,ENVOY[,LISTEN;LISTEN]"));
    }
    let addrs = vec![syntax("--peer", parse_addr(parts[0]))?];
    let mut f = PodFiles { name: name.to_string(), addrs, ..PodFiles::default() };
    let rules = Some(parts[1].into());
    if f.addrs[0].addr().is_ipv6() {
        f.ip6tables = rules;
    } else {
        f.iptables = rules;
    }
    f.envoy = (parts[2] != "-").then(|| parts[2].into());
    if let Some(list) = parts.get(3) {
        for l in list.split(';').filter(|l| !l.is_empty()) {
            f.listen.push(listen(&format!("--peer {name}:"), l)?);
        }
    }
    Ok(f)
}

/// The name table of --name (and the deprecated --dns), host names lower-cased; a host given
/// twice gets the addresses of both.
pub fn names(a: &NameArgs) -> Result<NameTable> {
    if !a.dns.is_empty() {
        deprecated("--dns", "--name");
    }
    let mut table = NameTable::new();
    for n in a.names.iter().chain(&a.dns) {
        let (host, ips) = n.split_once('=').ok_or_else(|| miette!("--name {n}: expected HOST=IP[,IP...]"))?;
        let list = table.entry(host.trim().to_ascii_lowercase()).or_default();
        for ip in ips.split(',') {
            list.push(ip.trim().parse().map_err(|_| miette!("--name {n}: `{ip}` is not an IP address"))?);
        }
    }
    Ok(table)
}

/// The sender --from (or the deprecated --uid/--gid) names; `None` when none is given.
/// `--uid N` alone keeps its old meaning, gid 0.
pub fn sender(a: &SenderArgs, istio: &Conventions) -> Result<Option<From>> {
    match (&a.from, a.uid) {
        (Some(_), Some(_)) => Err(miette!("--from and --uid both give the sender; drop --uid and --gid")),
        (Some(f), None) => Ok(Some(syntax("--from", parse_from(f, istio))?)),
        (None, Some(uid)) => {
            let gid = a.gid.unwrap_or(0);
            deprecated(
                if a.gid.is_some() { "--uid/--gid" } else { "--uid" },
                &format!("--from uid:{uid}:{gid}"),
            );
            Ok(Some(From::Process { uid, gid }))
        }
        (None, None) => Ok(None),
    }
}

/// The pick --pick (or the deprecated --random-value) names; every branch by default.
pub fn pick(a: &PickArgs) -> Result<Pick> {
    if let Some(n) = a.random_value {
        deprecated("--random-value", &format!("--pick random-value={n}"));
        return Ok(Pick::RandomValue(n));
    }
    match &a.pick {
        None => Ok(Pick::All),
        Some(p) => syntax("--pick", parse_pick(p)),
    }
}

/// The client's first bytes and HTTP request the request flags describe.
pub fn client(a: &RequestArgs) -> Result<(ClientBytes, Option<HttpRequest>)> {
    let headers = a.header.iter().map(|h| syntax("--header", parse_header(h))).collect::<Result<Vec<_>>>()?;
    Ok(Client {
        sni: a.sni.as_deref(),
        alpn: &a.alpn,
        host: a.host.as_deref(),
        path: a.path.as_deref(),
        method: a.method.as_deref(),
        headers,
        http: false,
        server_first: a.server_first,
    }
    .build())
}
