//! Evidence to pod: the one place where what was collected from a pod (rule sets, Envoy's
//! config dump, addresses, sockets, ip rules and routes) becomes a [`Pod`], with Istio's
//! conventions filling in what the evidence does not show. Every front end (`netfilter trace`,
//! `envoy match`, `trace`, `explain`, `replay`, scenario files) builds its pods here, so the
//! same evidence models the same pod everywhere.
//!
//! What is assumed when the evidence is silent (each recorded as an [`Assumption`]):
//! * rules with TPROXY and no `ip rule`/`ip route` evidence: Istio's policy routing, `ip rule
//!   add fwmark MARK lookup 133` and `ip route add local default dev lo table 133`;
//! * rules that redirect DNS to pilot-agent's port: pilot-agent listens there on 127.0.0.1 / ::1;
//! * no config dump and no socket at all: Envoy listens (transparent) on each TPROXY
//!   `--on-port` of the rules.
//!
//! With a config dump, Envoy's sockets are its listeners that bind a port; given sockets
//! (`--listen`, `ss` output) come after them, in the order given.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;

pub use super::dns::{Forwarder, ResolvConf};
use super::identity::proxy_identity;
pub use super::identity::{IdOrigin, ProxyIdentity};
use super::snapshot::Pod;
use crate::diagnostic::FileDiagnostic;
use crate::envoy::model::EnvoyConfig;
use crate::istio::Conventions;
use crate::netfilter::eval::{CompileError, Program};
use crate::netfilter::model::{Family, MarkMask, Target};
use crate::netfilter::parse::{ParseError, ParseOptions, ReadError};
use crate::netns::{
    parse_ip_neigh, parse_ip_route, parse_ip_rule, parse_sockets, Interface, IpRule, Neighbour, Netns, Owner,
    Route, RouteKind, Socket, L4,
};

/// What is known about one pod. [`PodEvidence::build`] makes the pod.
#[derive(Debug, Clone, Default)]
pub struct PodEvidence {
    pub name: String,
    /// eth0's addresses, in the order they were added.
    pub addrs: Vec<IpNet>,
    /// The IPv4 and IPv6 rule sets with their text (for showing rules in reports).
    pub rules_v4: Option<(Program, String)>,
    pub rules_v6: Option<(Program, String)>,
    pub envoy: Option<EnvoyConfig>,
    /// Listening sockets given or read (`--listen`, `ss -ltnup`), in that order.
    pub sockets: Vec<Socket>,
    /// Every `ip rule` (`ip rule show`): replaces the kernel's three default rules.
    pub ip_rules: Option<Vec<IpRule>>,
    /// Every route (`ip route show table all`): replaces the routes the kernel adds.
    pub routes: Option<Vec<Route>>,
    /// Rules and routes added to the others (`--ip-rule`, `--ip-route`).
    pub added_ip_rules: Vec<IpRule>,
    pub added_routes: Vec<Route>,
    /// Interfaces besides lo and eth0, without addresses (a packet arriving on them).
    pub interfaces: Vec<String>,
    /// `net.ipv4.ip_forward` (off in a pod).
    pub forwarding: bool,
    pub istio: Conventions,
    /// The proxy's uid and gid when given (`--proxy-uid`, `--proxy-gid`; module
    /// [`super::identity`] says what is used otherwise).
    pub proxy_uid: Option<u32>,
    pub proxy_gid: Option<u32>,
    /// The pod's `/etc/resolv.conf`: where pilot-agent forwards names it does not know.
    pub resolv_conf: Option<ResolvConf>,
    /// Processes that forward DNS (`--forwarder LISTEN=UPSTREAM`).
    pub forwarders: Vec<Forwarder>,
    /// The neighbour table (`ip neigh`), when given.
    pub neighbours: Option<Vec<Neighbour>>,
}

/// Something the pod is assumed to have because the evidence does not say otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assumption {
    /// Istio's TPROXY policy routing for these marks (no ip rules or routes were given).
    TproxyRouting { v6: bool, marks: Vec<MarkMask>, table: u32 },
    /// pilot-agent's DNS proxy socket (the rules redirect DNS to its port).
    DnsProxy { socket: Socket },
    /// Envoy's transparent listener on a TPROXY port (no config dump, no sockets given).
    EnvoyListener { socket: Socket },
}

impl PodEvidence {
    pub fn new(name: &str, addrs: &[IpNet]) -> PodEvidence {
        PodEvidence { name: name.to_string(), addrs: addrs.to_vec(), ..PodEvidence::default() }
    }

    /// The pod: its namespace from the evidence and Istio's conventions (module docs).
    pub fn build(mut self) -> Pod {
        let (p4, t4) = split(self.rules_v4.take());
        let (p6, t6) = split(self.rules_v6.take());
        let proxy = proxy_identity(
            (self.proxy_uid, self.proxy_gid),
            &self.sockets,
            [p4.as_ref(), p6.as_ref()],
            &self.istio,
        );
        let mut istio = self.istio;
        istio.proxy_uid = proxy.uid;
        istio.proxy_gid = proxy.gid;
        identify_sockets(&mut self.sockets, &mut istio);
        for f in &self.forwarders {
            for proto in [L4::Udp, L4::Tcp] {
                if !self.sockets.iter().any(|s| s.proto == proto && f.listens_on(s)) {
                    self.sockets.push(f.socket(proto));
                }
            }
        }
        let mut netns = Netns::pod(&self.addrs);
        netns.forwarding = self.forwarding;
        netns.neighbours = self.neighbours;
        for name in &self.interfaces {
            if netns.interface(name).is_none() {
                netns.interfaces.push(Interface { name: name.clone(), addrs: Vec::new() });
            }
        }
        let routing_given = self.ip_rules.is_some()
            || self.routes.is_some()
            || !self.added_ip_rules.is_empty()
            || !self.added_routes.is_empty();
        if let Some(rules) = self.ip_rules {
            netns.rules = rules;
        }
        if let Some(routes) = self.routes {
            netns.routes = routes;
        }
        let mut assumed = Vec::new();
        for (prog, v6) in [(&p4, false), (&p6, true)] {
            let Some(prog) = prog else { continue };
            if !routing_given && !prog.tproxy_marks.is_empty() {
                add_tproxy_routing(&mut netns, &prog.tproxy_marks, v6, istio.tproxy_table);
                assumed.push(Assumption::TproxyRouting {
                    v6,
                    marks: prog.tproxy_marks.clone(),
                    table: istio.tproxy_table,
                });
            }
            if captures_dns(prog, istio.dns_proxy_port) {
                let lo: IpAddr =
                    if v6 { IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1u16]) } else { [127, 0, 0, 1].into() };
                for proto in [L4::Udp, L4::Tcp] {
                    let s = Socket {
                        proto,
                        addr: lo,
                        port: istio.dns_proxy_port,
                        transparent: false,
                        owner: Owner::PilotAgent,
                        uid: Some(istio.proxy_uid),
                    };
                    if !netns.sockets.contains(&s) {
                        netns.sockets.push(s.clone());
                        assumed.push(Assumption::DnsProxy { socket: s });
                    }
                }
            }
        }
        netns.rules.extend(self.added_ip_rules);
        netns.routes.extend(self.added_routes);
        match &self.envoy {
            Some(cfg) => {
                // One socket per address of the listener: its `address` and each of
                // `additional_addresses` (Envoy's `ListenerImpl::ListenerImpl` in
                // source/common/listener_manager/listener_impl.cc collects both into `addresses_`
                // and creates a listen socket factory for each; `ConnectionHandlerImpl::addListener`
                // starts one `ActiveTcpListener` per socket factory).
                for l in cfg.listeners.iter().filter(|l| l.bind_to_port) {
                    for sa in l.address.socket().into_iter().chain(l.additional_addresses.iter().copied()) {
                        let s = Socket {
                            proto: L4::Tcp,
                            addr: sa.ip(),
                            port: sa.port(),
                            transparent: l.transparent,
                            owner: Owner::Envoy,
                            uid: Some(istio.proxy_uid),
                        };
                        if !netns.sockets.contains(&s) {
                            netns.sockets.push(s);
                        }
                    }
                }
            }
            None if self.sockets.is_empty() => {
                for (prog, v6) in [(&p4, false), (&p6, true)] {
                    let Some(prog) = prog else { continue };
                    for &(on_ip, port) in &prog.tproxy_ports {
                        let addr = on_ip.unwrap_or(if v6 {
                            IpAddr::from([0u16; 8])
                        } else {
                            IpAddr::from([0u8; 4])
                        });
                        for proto in [L4::Tcp, L4::Udp] {
                            let s = Socket {
                                proto,
                                addr,
                                port,
                                transparent: true,
                                owner: Owner::Envoy,
                                uid: Some(istio.proxy_uid),
                            };
                            if !netns.sockets.contains(&s) {
                                netns.sockets.push(s.clone());
                                assumed.push(Assumption::EnvoyListener { socket: s });
                            }
                        }
                    }
                }
            }
            None => {}
        }
        netns.sockets.extend(self.sockets);
        Pod {
            name: self.name,
            netns,
            rules_v4: p4,
            rules_v6: p6,
            rules_text: (t4, t6),
            envoy: self.envoy,
            istio,
            assumed,
            proxy,
            resolv_conf: self.resolv_conf,
            forwarders: self.forwarders,
        }
    }
}

/// Sockets of Envoy and pilot-agent without a uid run as the proxy; the app's uid is the one
/// its sockets show (`ss -e`, `--listen ...:UID`) when they show one.
fn identify_sockets(sockets: &mut [Socket], istio: &mut Conventions) {
    let mut app_uids = sockets.iter().filter(|s| s.owner == Owner::App).filter_map(|s| s.uid);
    if let Some(uid) = app_uids.next() {
        if app_uids.all(|u| u == uid) {
            istio.app_uid = uid;
        }
    }
    for s in sockets.iter_mut().filter(|s| matches!(s.owner, Owner::Envoy | Owner::PilotAgent)) {
        s.uid.get_or_insert(istio.proxy_uid);
    }
}

fn split(x: Option<(Program, String)>) -> (Option<Program>, Option<String>) {
    match x {
        Some((p, t)) => (Some(p), Some(t)),
        None => (None, None),
    }
}

/// Whether the rules send DNS to pilot-agent's proxy (`REDIRECT --to-ports 15053`).
fn captures_dns(p: &Program, port: u16) -> bool {
    p.ruleset
        .tables
        .iter()
        .flat_map(|t| &t.chains)
        .flat_map(|c| &c.rules)
        .any(|r| matches!(r.target, Target::Redirect { ports: Some(pr) } if pr.lo == port))
}

/// Istio's TPROXY policy routing (tools/common/tproxy/run_linux.go): for each mark `ip rule
/// add fwmark MARK lookup TABLE` (preference 32765, as the kernel assigns it) and `ip route add
/// local default dev lo table TABLE`, for one address family.
fn add_tproxy_routing(ns: &mut Netns, marks: &[MarkMask], v6: bool, tproxy_table: u32) {
    for m in marks {
        let rule = IpRule {
            pref: 32765,
            fwmark: Some(*m),
            from: None,
            to: None,
            iif: None,
            not: false,
            table: tproxy_table,
            v6: Some(v6),
        };
        if !ns.rules.contains(&rule) {
            ns.rules.push(rule);
        }
    }
    if !marks.is_empty() {
        let any = if v6 { IpAddr::from([0u16; 8]) } else { IpAddr::from([0u8; 4]) };
        let route = Route {
            table: tproxy_table,
            kind: RouteKind::Local,
            dst: IpNet::new(any, 0).expect("a zero prefix is always valid"),
            dev: "lo".into(),
            via: None,
            src: None,
        };
        if !ns.routes.contains(&route) {
            ns.routes.push(route);
        }
    }
}

/// A piece of evidence that could not be read.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum EvidenceError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    /// A rule file that does not parse, located to the byte.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Rules(ParseError),
    /// Located in a file: a rule set the kernel would refuse, a line of `ss`, `ip rule` or
    /// `ip route` output, a syntax error in a config dump.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Located(Box<FileDiagnostic>),
    /// A config dump that cannot be parsed, where no position is known.
    #[error("{path}: {message}")]
    Envoy { path: String, message: String },
}

impl EvidenceError {
    /// 1-based line and column in the file at fault, when known.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            EvidenceError::Rules(e) => Some((e.line as usize, e.col)),
            EvidenceError::Located(d) => Some((d.line, d.col)),
            EvidenceError::Io { .. } | EvidenceError::Envoy { .. } => None,
        }
    }

    fn located(d: FileDiagnostic) -> EvidenceError {
        EvidenceError::Located(Box::new(d))
    }
}

fn read_text(path: &Path) -> Result<String, EvidenceError> {
    crate::util::read::read_text(path)
        .map_err(|source| EvidenceError::Io { path: path.display().to_string(), source })
}

/// A rule file (`iptables-save` / `ip6tables-save` output, restore-style rules or an
/// istio-init log) of `family`, ready to walk, and its text.
pub fn read_rules(path: &Path, family: Family, lenient: bool) -> Result<(Program, String), EvidenceError> {
    let (text, parsed) =
        crate::netfilter::parse::read_rules(path, ParseOptions { lenient, family: Some(family) }).map_err(
            |e| match e {
                ReadError::Io { path, source } => EvidenceError::Io { path, source },
                ReadError::Parse(p) => EvidenceError::Rules(p),
            },
        )?;
    let program = compile(parsed.ruleset, &text)?;
    Ok((program, text))
}

/// Prepares a parsed rule set; a rule set the kernel would refuse is located in `text`.
pub fn compile(ruleset: crate::netfilter::model::Ruleset, text: &str) -> Result<Program, EvidenceError> {
    Program::new(ruleset).map_err(|e| match e {
        CompileError::Loop { file, line, chain, path } => EvidenceError::located(
            FileDiagnostic::at_line(
                &file,
                text,
                line as usize,
                format!("jumping to chain {chain} forms a loop ({path}); the kernel refuses such a rule set"),
            )
            .with_help("the kernel refuses to load a rule set whose jumps loop; remove one of the jumps"),
        ),
    })
}

/// An Envoy `/config_dump` (JSON or YAML, also `istioctl proxy-config ... -o json`).
pub fn read_envoy(path: &Path) -> Result<EnvoyConfig, EvidenceError> {
    crate::envoy::load(path).map_err(|e| match e {
        crate::envoy::LoadError::Io { path, source } => EvidenceError::Io { path, source },
        crate::envoy::LoadError::Parse { path, bytes, error } => match error.position() {
            Some((line, col)) => {
                let text = String::from_utf8_lossy(&bytes);
                // The position is the diagnostic's; the message says what is wrong there.
                let what = match &error {
                    crate::envoy::ParseError::Json { message, .. } => format!("invalid JSON: {message}"),
                    other => other.to_string(),
                };
                let message = format!("not a readable Envoy config dump: {what}");
                EvidenceError::located(
                    FileDiagnostic::at(&path, &text, line, col, 1, message)
                        .with_help("a config dump is the JSON (or YAML) of Envoy's /config_dump"),
                )
            }
            None => EvidenceError::Envoy { path, message: error.to_string() },
        },
    })
}

/// Listening sockets from `ss -ltnup` or `netstat -lntup` output.
pub fn read_sockets(path: &Path) -> Result<Vec<Socket>, EvidenceError> {
    let text = read_text(path)?;
    parse_sockets(&text).map_err(|e| {
        EvidenceError::located(
            FileDiagnostic::at_line(&path.display().to_string(), &text, e.line as usize, e.message)
                .with_help("give `ss -ltnup` or `netstat -lntup` output"),
        )
    })
}

/// The pod's `/etc/resolv.conf`.
pub fn read_resolv_conf(path: &Path) -> Result<ResolvConf, EvidenceError> {
    let text = read_text(path)?;
    let file = path.display().to_string();
    ResolvConf::parse(&file, &text).map_err(|(line, message)| {
        EvidenceError::located(
            FileDiagnostic::at_line(&file, &text, line, message)
                .with_help("give the pod's /etc/resolv.conf (`nameserver IP` lines)"),
        )
    })
}

/// Every `ip rule` from `ip rule show` (`ip -6 rule show` when `v6`).
pub fn read_ip_rules(path: &Path, v6: bool) -> Result<Vec<IpRule>, EvidenceError> {
    read_lines(path, "give `ip rule show` output", |l| parse_ip_rule(l, v6))
}

/// Every route from `ip route show table all` (a line with `:` is read as IPv6).
pub fn read_ip_routes(path: &Path, v6: bool) -> Result<Vec<Route>, EvidenceError> {
    read_lines(path, "give `ip route show table all` output", |l| parse_ip_route(l, v6 || l.contains(':')))
}

/// The neighbour table from `ip neigh show` output (both families).
pub fn read_neighbours(path: &Path) -> Result<Vec<Neighbour>, EvidenceError> {
    read_lines(path, "give `ip neigh show` output", parse_ip_neigh)
}

fn read_lines<T>(
    path: &Path,
    help: &str,
    f: impl Fn(&str) -> Result<Option<T>, crate::netns::RouteSyntaxError>,
) -> Result<Vec<T>, EvidenceError> {
    let text = read_text(path)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        match f(line) {
            Ok(Some(v)) => out.push(v),
            Ok(None) => {}
            Err(e) => {
                return Err(EvidenceError::located(
                    FileDiagnostic::at_line(&path.display().to_string(), &text, i + 1, e.message)
                        .with_help(help),
                ))
            }
        }
    }
    Ok(out)
}

/// A pod described by the files collected from it (what `--iptables`, `--envoy`, `--sockets`,
/// `--ip-rules`... name) and the values given directly. [`PodFiles::read`] reads the files.
#[derive(Debug, Clone, Default)]
pub struct PodFiles {
    pub name: String,
    pub addrs: Vec<IpNet>,
    pub iptables: Option<PathBuf>,
    pub ip6tables: Option<PathBuf>,
    pub envoy: Option<PathBuf>,
    /// Sockets given one by one (`--listen`); before those of `sockets`.
    pub listen: Vec<Socket>,
    /// `ss -ltnup` / `netstat -lntup` output.
    pub sockets: Option<PathBuf>,
    pub ip_rules: Option<PathBuf>,
    pub ip_routes: Option<PathBuf>,
    pub added_ip_rules: Vec<IpRule>,
    pub added_routes: Vec<Route>,
    pub interfaces: Vec<String>,
    pub forwarding: bool,
    /// Keep unsupported matches and targets as "unknown" instead of failing.
    pub lenient: bool,
    pub istio: Conventions,
    pub proxy_uid: Option<u32>,
    pub proxy_gid: Option<u32>,
    pub resolv_conf: Option<PathBuf>,
    pub forwarders: Vec<Forwarder>,
    /// `ip neigh show` output.
    pub neigh: Option<PathBuf>,
}

impl PodFiles {
    /// The family `ip rule` and `ip route` evidence is read in: IPv6 when the pod has only
    /// IPv6 rules (`ip rule show` lists IPv4 unless given `-6`).
    pub fn routing_v6(&self) -> bool {
        self.ip6tables.is_some() && self.iptables.is_none()
    }

    /// Reads every file; the first that cannot be read is the error.
    pub fn read(&self) -> Result<PodEvidence, EvidenceError> {
        let v6 = self.routing_v6();
        let mut sockets = self.listen.clone();
        if let Some(f) = &self.sockets {
            sockets.extend(read_sockets(f)?);
        }
        Ok(PodEvidence {
            name: self.name.clone(),
            addrs: self.addrs.clone(),
            rules_v4: self
                .iptables
                .as_deref()
                .map(|p| read_rules(p, Family::V4, self.lenient))
                .transpose()?,
            rules_v6: self
                .ip6tables
                .as_deref()
                .map(|p| read_rules(p, Family::V6, self.lenient))
                .transpose()?,
            envoy: self.envoy.as_deref().map(read_envoy).transpose()?,
            sockets,
            ip_rules: self.ip_rules.as_deref().map(|p| read_ip_rules(p, v6)).transpose()?,
            routes: self.ip_routes.as_deref().map(|p| read_ip_routes(p, v6)).transpose()?,
            added_ip_rules: self.added_ip_rules.clone(),
            added_routes: self.added_routes.clone(),
            interfaces: self.interfaces.clone(),
            forwarding: self.forwarding,
            istio: self.istio,
            proxy_uid: self.proxy_uid,
            proxy_gid: self.proxy_gid,
            resolv_conf: self.resolv_conf.as_deref().map(read_resolv_conf).transpose()?,
            forwarders: self.forwarders.clone(),
            neighbours: self.neigh.as_deref().map(read_neighbours).transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str =
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/mesh/istio-1.25-tproxy.v4.iptables-save");

    fn tproxy_pod() -> PodEvidence {
        let mut e = PodEvidence::new("p", &["10.244.0.5/32".parse().unwrap()]);
        e.rules_v4 = Some(read_rules(Path::new(RULES), Family::V4, false).unwrap());
        e
    }

    /// Istio's TPROXY mode (tools/common/tproxy/run_linux.go, config.go): fwmark 0x539 to
    /// table 133, `local default dev lo table 133`, Envoy transparent on 15006.
    #[test]
    fn tproxy_rules_without_other_evidence_get_istios_setup() {
        let pod = tproxy_pod().build();
        assert!(pod.netns.rules.iter().any(|r| r.table == 133 && r.fwmark.map(|m| m.value) == Some(0x539)));
        assert!(pod.netns.routes.iter().any(|r| r.table == 133 && r.kind == RouteKind::Local));
        let envoy: Vec<_> = pod.netns.sockets.iter().filter(|s| s.owner == Owner::Envoy).collect();
        assert!(envoy.iter().any(|s| s.port == 15006 && s.transparent && s.uid == Some(1337)), "{envoy:?}");
        assert!(pod.assumed.iter().any(|a| matches!(a, Assumption::EnvoyListener { .. })));
    }

    #[test]
    fn given_evidence_replaces_the_assumptions() {
        let mut e = tproxy_pod();
        e.sockets = vec![crate::netns::parse_listen("tcp:0.0.0.0:9080").unwrap()];
        e.added_ip_rules = vec![parse_ip_rule("fwmark 0x1 lookup 7", false).unwrap().unwrap()];
        e.proxy_uid = Some(4242);
        let pod = e.build();
        assert!(!pod.netns.rules.iter().any(|r| r.table == 133));
        assert!(pod.netns.rules.iter().any(|r| r.table == 7));
        assert_eq!(pod.netns.sockets.len(), 1);
        assert!(pod.assumed.is_empty());
        assert_eq!(pod.istio.proxy_uid, 4242);
        assert_eq!(pod.proxy.uid_from, IdOrigin::Given);
        // The gid is the one the rules exempt (`-m owner --gid-owner 1337 -j RETURN`, line 48).
        assert_eq!(pod.proxy.gid_from, IdOrigin::Rules { file: RULES.into(), line: 48 });
    }

    /// Envoy opens a socket on each of a listener's addresses (listener_impl.cc,
    /// `ListenerImpl::ListenerImpl`: `address` and `additional_addresses` into `addresses_`).
    #[test]
    fn envoy_gets_a_socket_on_each_listener_address() {
        let dump = br#"{"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
          "dynamic_listeners": [{"name": "virtualOutbound", "active_state": {"listener": {
            "@type": "type.googleapis.com/envoy.config.listener.v3.Listener", "name": "virtualOutbound",
            "address": {"socket_address": {"address": "0.0.0.0", "port_value": 15001}},
            "additional_addresses": [{"address": {"socket_address": {"address": "::", "port_value": 15001}}}],
            "use_original_dst": true}}}]}]}"#;
        let mut e =
            PodEvidence::new("p", &["10.244.0.5/32".parse().unwrap(), "fd00::5/128".parse().unwrap()]);
        e.envoy = Some(crate::envoy::parse_dump(&dump[..]).unwrap());
        let pod = e.build();
        let envoy: Vec<_> =
            pod.netns.sockets.iter().filter(|s| s.owner == Owner::Envoy).map(|s| s.endpoint()).collect();
        assert_eq!(envoy, ["0.0.0.0:15001", "[::]:15001"]);
    }

    #[test]
    fn unreadable_lines_are_located() {
        let dir = std::env::temp_dir().join(format!("meshpath-evidence-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("rules.txt");
        std::fs::write(&f, "0: from all lookup local\n32766: from all bogus main\n").unwrap();
        let e = read_ip_rules(&f, false).unwrap_err();
        assert_eq!(e.position(), Some((2, 1)));
        assert!(e.to_string().contains("rules.txt:2:1:"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
