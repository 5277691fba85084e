//! Scenario files (`*.scenario.yaml`, docs/scenarios.md): a mesh snapshot (pods with their
//! rule sets, Envoy config dumps, addresses and sockets; a name table) and probes, each a
//! connection to walk with expectations on how it ends and which Envoy objects it uses.
//!
//! [`load`] reads the YAML and every file it references (paths relative to the scenario's
//! directory, confined to a root folder: [`files`]) and builds the [`engine::Mesh`] and one [`engine::Start`] per probe, exactly as
//! `meshpath trace` does from the equivalent flags (both go through [`syntax`]).
//! [`expect::compare`] says how a trace differs from a probe's expectations; [`update`]
//! rewrites expectations in the file's text.

pub mod error;
pub mod expect;
pub mod files;
pub mod model;
pub mod run;
pub mod syntax;
pub mod update;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_saphyr::Spanned;

use crate::engine::evidence::{self, EvidenceError, PodEvidence};
use crate::engine::{self, Mesh, Start};
use crate::netfilter::model::Family;
use crate::netns::{parse_listen, L4};

use error::At;
pub use error::{Located, ScenarioError};
pub use model::{EndingKind, Expect, HopExpect, ScenarioFile, SCHEMA};

/// A loaded scenario: the file as written, the snapshot and the probes' starts.
#[derive(Debug)]
pub struct Scenario {
    pub path: PathBuf,
    /// The file's text (for `check --update` and diagnostics).
    pub text: Arc<String>,
    pub file: ScenarioFile,
    /// `name:`, or the file stem.
    pub name: String,
    pub description: Option<String>,
    pub mesh: Mesh,
    pub probes: Vec<Probe>,
}

/// One probe, ready to trace.
#[derive(Debug, Clone)]
pub struct Probe {
    pub name: String,
    pub start: Start,
    pub expect: Option<Expect>,
}

impl Scenario {
    pub fn probe(&self, name: &str) -> Option<&Probe> {
        self.probes.iter().find(|p| p.name == name)
    }

    pub fn probe_names(&self) -> Vec<&str> {
        self.probes.iter().map(|p| p.name.as_str()).collect()
    }

    /// The pod names in file order (index = pod index in the mesh).
    pub fn pod_names(&self) -> Vec<&str> {
        self.mesh.pods.iter().map(|p| p.name.as_str()).collect()
    }
}

/// Whether `path` is named like a scenario file (`*.scenario.yaml` / `*.scenario.yml`).
pub fn is_scenario_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".scenario.yaml") || n.ends_with(".scenario.yml"))
}

/// The name a scenario gets without `name:`: the file name without `.scenario.yaml`.
fn stem(path: &Path) -> String {
    let n = path.file_name().and_then(|n| n.to_str()).unwrap_or("scenario");
    n.trim_end_matches(".yaml").trim_end_matches(".yml").trim_end_matches(".scenario").to_string()
}

/// Reads `path` and everything it references; the first problem found is the error.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let file_name = path.display().to_string();
    let text = crate::util::read::read_text(path)
        .map_err(|source| ScenarioError::Io { file: file_name.clone(), source })?;
    let root = files::root_for(path)
        .map_err(|e| ScenarioError::Io { file: file_name.clone(), source: std::io::Error::other(e) })?;
    let text = Arc::new(text);
    let doc: ScenarioFile =
        serde_saphyr::from_str_with_options(&text, crate::util::yaml::options_for(&text)).map_err(|e| {
            ScenarioError::Yaml { file: file_name.clone(), text: text.clone(), error: Box::new(e) }
        })?;
    let at = At { file: file_name, text: text.clone() };
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
    let (mesh, probes) = build(&doc, &Dirs { dir, root }, &at)?;
    Ok(Scenario {
        path: path.to_path_buf(),
        name: doc.name.clone().unwrap_or_else(|| stem(path)),
        description: doc.description.clone(),
        text,
        file: doc,
        mesh,
        probes,
    })
}

/// The scenario's folder and the root its references must stay under.
struct Dirs {
    dir: PathBuf,
    root: PathBuf,
}

fn build(doc: &ScenarioFile, dirs: &Dirs, at: &At) -> Result<(Mesh, Vec<Probe>), ScenarioError> {
    if doc.schema.value != SCHEMA {
        return Err(at.error(
            &doc.schema.referenced,
            format!("unknown schema `{}`", doc.schema.value),
            format!("write `schema: {SCHEMA}`"),
        ));
    }
    if doc.pods.value.0.is_empty() {
        return Err(at.error(&doc.pods.referenced, "no pods", "describe at least one pod under `pods:`"));
    }
    let mut pods = Vec::new();
    for (name, spec) in &doc.pods.value.0 {
        pods.push(pod(&name.value, &name.referenced, spec, dirs, at)?);
    }
    let mut mesh = Mesh::build(pods, Default::default());
    for (host, ips) in &doc.names.0 {
        let mut list = Vec::new();
        for ip in ips {
            list.push(ip.value.parse().map_err(|_| {
                at.error(
                    &ip.referenced,
                    format!("`{}` is not an IP address", ip.value),
                    "the name table maps a host to IP addresses",
                )
            })?);
        }
        mesh.names.insert(host.value.to_ascii_lowercase(), list);
    }
    if doc.probes.value.is_empty() {
        return Err(at.error(&doc.probes.referenced, "no probes", "give at least one probe under `probes:`"));
    }
    let mut probes: Vec<Probe> = Vec::new();
    for p in &doc.probes.value {
        if probes.iter().any(|q| q.name == p.name.value) {
            return Err(at.error(
                &p.name.referenced,
                format!("duplicate probe name `{}`", p.name.value),
                "probe names must be unique in a file; rename one of them",
            ));
        }
        probes.push(probe(p, &mesh, at)?);
    }
    Ok((mesh, probes))
}

fn pod(
    name: &str,
    loc: &serde_saphyr::Location,
    spec: &model::PodSpec,
    dirs: &Dirs,
    at: &At,
) -> Result<PodEvidence, ScenarioError> {
    let dir = dirs.dir.as_path();
    // A referenced file, or why the scenario may not read it (located at the path).
    let file = |f: &Spanned<String>| {
        files::confine(&dirs.root, dir, &f.value).map_err(|message| {
            at.error(
                &f.referenced,
                message,
                "name files by paths relative to the scenario's folder, under the root",
            )
        })
    };
    let mut addrs = Vec::new();
    for a in &spec.addresses {
        addrs.push(syntax::parse_addr(&a.value).map_err(|e| {
            at.error(&a.referenced, e.to_string(), "write an IP address or CIDR, e.g. 10.244.0.5")
        })?);
    }
    if addrs.is_empty() {
        return Err(at.error(
            loc,
            format!("pod {name} has no addresses"),
            "give its eth0 addresses in `addresses:`",
        ));
    }
    if spec.iptables.is_none() && spec.ip6tables.is_none() {
        return Err(at.error(
            loc,
            format!("pod {name} has no rule set"),
            "give its iptables-save output in `iptables:` (and `ip6tables:` for IPv6)",
        ));
    }
    let mut e = PodEvidence::new(name, &addrs);
    // What an evidence file's problem becomes: located at the key that names the file.
    let fail = |f: &Spanned<String>, err: EvidenceError, what: &str| {
        let help = match &err {
            EvidenceError::Io { .. } => missing_help(dir),
            EvidenceError::Rules(pe) => pe.help.clone().unwrap_or_else(|| what.to_string()),
            _ => what.to_string(),
        };
        at.error(&f.referenced, err.to_string(), help)
    };
    const RULES_HELP: &str =
        "check it with `meshpath netfilter check FILE`, or point the key at another file";
    if let Some(f) = &spec.iptables {
        e.rules_v4 =
            Some(evidence::read_rules(&file(f)?, Family::V4, false).map_err(|x| fail(f, x, RULES_HELP))?);
    }
    if let Some(f) = &spec.ip6tables {
        e.rules_v6 =
            Some(evidence::read_rules(&file(f)?, Family::V6, false).map_err(|x| fail(f, x, RULES_HELP))?);
    }
    if let Some(f) = &spec.envoy {
        e.envoy = Some(evidence::read_envoy(&file(f)?).map_err(|x| {
            fail(
                f,
                x,
                "fix the dump (see `meshpath envoy summary --envoy FILE`) or point `envoy:` at another file",
            )
        })?);
    }
    for l in &spec.listen {
        e.sockets.push(parse_listen(&l.value).map_err(|err| {
            at.error(
                &l.referenced,
                err,
                "write tcp:IP:PORT[:UID] or udp:IP:PORT[:UID], e.g. tcp:0.0.0.0:9080",
            )
        })?);
    }
    if let Some(f) = &spec.sockets {
        let found = evidence::read_sockets(&file(f)?)
            .map_err(|x| fail(f, x, "give `ss -ltnup` or `netstat -lntup` output"))?;
        e.sockets.extend(found);
    }
    let v6 = spec.ip6tables.is_some() && spec.iptables.is_none();
    if let Some(f) = &spec.ip_rules {
        e.ip_rules = Some(
            evidence::read_ip_rules(&file(f)?, v6).map_err(|x| fail(f, x, "give `ip rule show` output"))?,
        );
    }
    if let Some(f) = &spec.ip_routes {
        e.routes = Some(
            evidence::read_ip_routes(&file(f)?, v6)
                .map_err(|x| fail(f, x, "give `ip route show table all` output"))?,
        );
    }
    e.proxy_uid = spec.proxy_uid;
    e.proxy_gid = spec.proxy_gid;
    if let Some(f) = &spec.neigh {
        e.neighbours = Some(
            evidence::read_neighbours(&resolve(dir, &f.value))
                .map_err(|x| fail(f, x, "give the pod's `ip neigh show` output"))?,
        );
    }
    if let Some(f) = &spec.resolv_conf {
        e.resolv_conf = Some(
            evidence::read_resolv_conf(&resolve(dir, &f.value))
                .map_err(|x| fail(f, x, "give the pod's /etc/resolv.conf"))?,
        );
    }
    for f in &spec.forwarders {
        e.forwarders.push(evidence::Forwarder::parse(&f.value).map_err(|err| {
            at.error(&f.referenced, err, "write LISTEN=UPSTREAM, e.g. 127.0.0.53=10.96.0.10:53")
        })?);
    }
    Ok(e)
}

/// `dir/rel` with `..` folded lexically, so sources and messages name files readably.
fn resolve(dir: &Path, rel: &str) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in dir.join(rel).components() {
        match c {
            Component::ParentDir if matches!(out.components().next_back(), Some(Component::Normal(_))) => {
                out.pop();
            }
            Component::CurDir if out.as_os_str().is_empty() => {}
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

fn missing_help(dir: &Path) -> String {
    format!("paths are relative to the scenario file's directory ({})", dir.display())
}

fn probe(p: &model::ProbeSpec, mesh: &Mesh, at: &At) -> Result<Probe, ScenarioError> {
    let Some(pod) = mesh.pod_index(&p.from.value) else {
        let names: Vec<&str> = mesh.pods.iter().map(|p| p.name.as_str()).collect();
        return Err(at.error(
            &p.from.referenced,
            format!(
                "probe `{}` starts in pod `{}`, which the scenario does not describe",
                p.name.value, p.from.value
            ),
            format!("`from:` names one of the pods under `pods:`: {}", names.join(", ")),
        ));
    };
    let istio = &mesh.pods[pod].istio;
    let from = match &p.sender {
        None => Ok(engine::From::Process { uid: istio.app_uid, gid: istio.app_gid }),
        Some(s) => syntax::parse_from(&s.value, istio).map_err(|e| {
            at.error(&s.referenced, e.to_string(), "write app, envoy, uid:N[:GID] or outside[:IP]")
        }),
    }?;
    let icmp = matches!(p.protocol, Some(model::Protocol::Icmp | model::Protocol::Icmpv6));
    let dst = if icmp { syntax::parse_icmp_dst(&p.to.value) } else { syntax::parse_dst(&p.to.value) }
        .map_err(|e| at.error(&p.to.referenced, e.to_string(), "write IP:PORT, [IPv6]:PORT or HOST:PORT"))?;
    let dst_v6 = matches!(dst, engine::Destination::Addr(a) if a.is_ipv6());
    let src = match &p.src {
        None => None,
        Some(s) => Some(
            syntax::parse_src(&s.value)
                .map_err(|e| at.error(&s.referenced, e.to_string(), "write IP or IP:PORT"))?,
        ),
    };
    let pick = match &p.pick {
        None => engine::Pick::All,
        Some(s) => syntax::parse_pick(&s.value)
            .map_err(|e| at.error(&s.referenced, e.to_string(), "write all, first or random-value:N"))?,
    };
    if let (Some(d), Some(_)) = (&p.dns, &p.http) {
        return Err(at.error(
            &d.query.referenced,
            "a probe sends either a DNS query or an HTTP request",
            "drop `http:` or `dns:`",
        ));
    }
    let server_first = p.server_first.as_ref().is_some_and(|s| s.value);
    if let Some(s) = p
        .server_first
        .as_ref()
        .filter(|s| s.value && (p.tls.is_some() || p.http.is_some() || p.dns.is_some()))
    {
        return Err(at.error(
            &s.referenced,
            "a server-first client sends nothing first: no TLS ClientHello, HTTP request or DNS query",
            "drop `server_first:` or the `tls:`/`http:`/`dns:` block",
        ));
    }
    let tls = p.tls.clone().unwrap_or_default();
    let http = p.http.clone().unwrap_or_default();
    let headers = http
        .headers
        .0
        .iter()
        .map(|(k, v)| (k.value.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let (client, request) = syntax::Client {
        sni: tls.sni.as_deref(),
        alpn: &tls.alpn,
        host: http.host.as_deref(),
        path: http.path.as_deref(),
        method: http.method.as_deref(),
        headers,
        http: p.http.is_some(),
        server_first,
    }
    .build();
    let expect = match &p.expect {
        None => None,
        Some(e) => {
            check_expect(&e.value, at, true)?;
            Some(e.value.clone())
        }
    };
    let proto = match p.protocol {
        None | Some(model::Protocol::Tcp) => L4::Tcp,
        Some(model::Protocol::Udp) => L4::Udp,
        Some(model::Protocol::Icmp) if dst_v6 => L4::Icmpv6,
        Some(model::Protocol::Icmp) => L4::Icmp,
        Some(model::Protocol::Icmpv6) => L4::Icmpv6,
    };
    let icmp_type = match &p.icmp_type {
        None => None,
        Some(t) => Some(syntax::parse_icmp_type(&t.value, dst_v6).map_err(|e| {
            at.error(&t.referenced, e.to_string(), "write an ICMP type name (echo-request) or TYPE[/CODE]")
        })?),
    };
    let dns_query = p.dns.as_ref().map(|d| d.query.value.clone());
    let start = Start { pod, from, dst, proto, src, client, request, dns_query, pick, icmp_type };
    Ok(Probe { name: p.name.value.clone(), start, expect })
}

/// `weight` only in `paths` items, `paths` only at the top.
fn check_expect(e: &Expect, at: &At, top: bool) -> Result<(), ScenarioError> {
    if top {
        if let Some(w) = &e.weight {
            return Err(at.error(
                &w.referenced,
                "`weight` applies to one path",
                "give it in an item of `paths:`",
            ));
        }
        if let Some(paths) = &e.paths {
            for p in &paths.value {
                check_expect(p, at, false)?;
            }
        }
    } else if let Some(w) = e.weight.as_ref().filter(|w| !(0.0..=1.0).contains(&w.value)) {
        // NaN compares false with every number: `.nan` would have passed every comparison.
        return Err(at.error(
            &w.referenced,
            format!("weight {} is not a share between 0 and 1", w.value),
            "a path's weight is its share of the connections, e.g. 0.5",
        ));
    } else if let Some(p) = &e.paths {
        return Err(at.error(
            &p.referenced,
            "`paths` inside `paths`",
            "list the paths once, at the top of `expect:`",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scenarios/pass").join(name)
    }

    fn bad(name: &str) -> ScenarioError {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scenarios/bad").join(name);
        load(&p).expect_err("must not load")
    }

    #[test]
    fn semantic_errors_point_at_the_value() {
        let e = bad("unknown-pod.scenario.yaml");
        assert_eq!(e.position(), Some((8, 11)));
        assert!(e.to_string().contains("starts in pod `reviews`"), "{e}");
        assert_eq!(bad("duplicate-probe.scenario.yaml").position(), Some((10, 11)));
        assert_eq!(bad("missing-file.scenario.yaml").position(), Some((6, 12)));
        assert_eq!(bad("bad-rules.scenario.yaml").position(), Some((5, 15)));
        assert_eq!(bad("bad-yaml.scenario.yaml").position(), Some((4, 17)));
    }

    #[test]
    fn yaml_errors_have_a_position() {
        let e = bad("unknown-key.scenario.yaml");
        assert!(matches!(e, ScenarioError::Yaml { .. }));
        assert_eq!(e.position(), Some((10, 5)));
        assert!(bad("syntax.scenario.yaml").position().is_some());
    }

    #[test]
    fn paths_fold_parent_components() {
        assert_eq!(resolve(Path::new("a/b"), "../c"), PathBuf::from("a/c"));
        assert_eq!(resolve(Path::new("."), "../c"), PathBuf::from("../c"));
        assert_eq!(resolve(Path::new("a"), "/abs/x"), PathBuf::from("/abs/x"));
        assert_eq!(stem(Path::new("d/x.scenario.yaml")), "x");
    }

    #[test]
    fn loads_bookinfo() {
        let s = load(&fixture("bookinfo.scenario.yaml")).map_err(|e| format!("{e:?}")).unwrap();
        assert_eq!(s.name, "bookinfo on Istio 1.25");
        assert_eq!(s.pod_names(), ["productpage", "reviews"]);
        assert_eq!(s.probes.len(), 4);
        assert_eq!(s.mesh.names.get("reviews.default.svc.cluster.local").map(Vec::len), Some(1));
        let p = s.probe("productpage calls reviews").unwrap();
        assert_eq!(p.start.pod, 0);
        assert!(p.expect.is_some());
        assert!(s.probe("own pod ip").unwrap().expect.is_none());
    }
}
