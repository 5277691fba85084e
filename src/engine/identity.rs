//! Who the proxy is in a pod: the uid and gid Envoy and pilot-agent run as, from the evidence.
//!
//! In order, the first that says:
//! 1. given: `--proxy-uid` / `--proxy-gid`, or the scenario keys `proxy_uid` / `proxy_gid` (what
//!    the proxy container runs as: `runAsUser` / `runAsGroup` of its security context);
//! 2. (uid only) the uid `ss -e` shows on a socket of Envoy or pilot-agent;
//! 3. the rules' owner exemption, when it names one identity: istio-iptables appends
//!    `-m owner --uid-owner N -j RETURN` (and `--gid-owner N`) to ISTIO_OUTPUT for each of its
//!    proxy uids (gids), `for _, uid := range split(cfg.ProxyUID)` in
//!    tools/istio-iptables/pkg/capture/run.go;
//! 4. Istio's default, 1337 ([`Conventions::proxy_uid`]).
//!
//! A given identity wins over the rules because the two can differ, and that difference is a
//! real failure: a proxy running as another uid than the one the rules exempt has its own
//! connections captured again.

use std::sync::Arc;

use serde::Serialize;

use crate::istio::Conventions;
use crate::netfilter::eval::Program;
use crate::netfilter::model::{IdRange, Match, Neg, Target};
use crate::netns::{Owner, Socket};

/// Where a proxy uid or gid comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum IdOrigin {
    /// `--proxy-uid` / `--proxy-gid`, or the scenario keys `proxy_uid` / `proxy_gid`.
    Given,
    /// The uid shown for this socket of Envoy or pilot-agent (`ss -e`).
    Socket { socket: String },
    /// The rules exempt it from capture (`-m owner --uid-owner N -j RETURN`) at `file:line`.
    Rules { file: Arc<str>, line: u32 },
    /// Nothing in the evidence names it: Istio's default.
    Default,
}

/// The proxy's identity in a pod and where each half comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProxyIdentity {
    pub uid: u32,
    pub gid: u32,
    pub uid_from: IdOrigin,
    pub gid_from: IdOrigin,
}

impl Default for ProxyIdentity {
    fn default() -> Self {
        let c = Conventions::ISTIO;
        ProxyIdentity {
            uid: c.proxy_uid,
            gid: c.proxy_gid,
            uid_from: IdOrigin::Default,
            gid_from: IdOrigin::Default,
        }
    }
}

impl ProxyIdentity {
    /// Whether both the uid and the gid come from the rules' exemptions.
    pub fn from_rules(&self) -> bool {
        matches!((&self.uid_from, &self.gid_from), (IdOrigin::Rules { .. }, IdOrigin::Rules { .. }))
    }
}

/// Which owner match an exemption names.
#[derive(Clone, Copy)]
enum Id {
    Uid,
    Gid,
}

/// The proxy's identity from what is given, the sockets and the rule sets (module docs).
pub fn proxy_identity(
    given: (Option<u32>, Option<u32>),
    sockets: &[Socket],
    programs: [Option<&Program>; 2],
    istio: &Conventions,
) -> ProxyIdentity {
    let (uid, uid_from) = match given.0 {
        Some(u) => (u, IdOrigin::Given),
        None => socket_uid(sockets)
            .or_else(|| exemption(programs, Id::Uid))
            .unwrap_or((istio.proxy_uid, IdOrigin::Default)),
    };
    let (gid, gid_from) = match given.1 {
        Some(g) => (g, IdOrigin::Given),
        None => exemption(programs, Id::Gid).unwrap_or((istio.proxy_gid, IdOrigin::Default)),
    };
    ProxyIdentity { uid, gid, uid_from, gid_from }
}

/// The one uid the sockets of Envoy and pilot-agent show (none when they show several).
fn socket_uid(sockets: &[Socket]) -> Option<(u32, IdOrigin)> {
    let mut found: Option<(u32, &Socket)> = None;
    for s in sockets.iter().filter(|s| matches!(s.owner, Owner::Envoy | Owner::PilotAgent)) {
        let Some(uid) = s.uid else { continue };
        match found {
            Some((u, _)) if u != uid => return None,
            Some(_) => {}
            None => found = Some((uid, s)),
        }
    }
    found.map(|(uid, s)| {
        let socket = format!("{} {} ({})", s.proto.as_str(), s.endpoint(), s.owner.as_str());
        (uid, IdOrigin::Socket { socket })
    })
}

/// The one id the rules exempt from capture with `-m owner --uid-owner N -j RETURN` (or
/// ACCEPT; `--gid-owner` for gids), over both families; none when they exempt several or none.
fn exemption(programs: [Option<&Program>; 2], which: Id) -> Option<(u32, IdOrigin)> {
    let mut found: Option<(u32, Arc<str>, u32)> = None;
    for prog in programs.into_iter().flatten() {
        let rules = prog.ruleset.tables.iter().flat_map(|t| &t.chains).flat_map(|c| &c.rules);
        for r in rules.filter(|r| matches!(r.target, Target::Return | Target::Accept)) {
            for m in &r.matches {
                let Match::Owner { uid, gid, .. } = m else { continue };
                let id = match which {
                    Id::Uid => uid,
                    Id::Gid => gid,
                };
                let Some(Neg { negated: false, value: IdRange { lo, hi } }) = *id else { continue };
                if lo != hi {
                    return None;
                }
                match &found {
                    Some((v, _, _)) if *v != lo => return None,
                    Some(_) => {}
                    None => found = Some((lo, prog.file.clone(), r.line)),
                }
            }
        }
    }
    found.map(|(v, file, line)| (v, IdOrigin::Rules { file, line }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netfilter::parse::{parse, ParseOptions};

    fn program(text: &str) -> Program {
        Program::new(parse("rules", text, ParseOptions::default()).unwrap().ruleset).unwrap()
    }

    fn nat(body: &str) -> String {
        format!("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:ISTIO_OUTPUT - [0:0]\n:ISTIO_REDIRECT - [0:0]\n-A OUTPUT -p tcp -j ISTIO_OUTPUT\n{body}-A ISTIO_OUTPUT -j ISTIO_REDIRECT\n-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001\nCOMMIT\n")
    }

    /// istio-iptables run with `--proxy-uid 2000 --proxy-gid 3000` (tools/istio-iptables/pkg/
    /// capture/run.go writes `-m owner --uid-owner 2000 -j RETURN` and `--gid-owner 3000`).
    #[test]
    fn the_rules_exemption_names_the_proxy() {
        let p = program(&nat("-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 2000 -j RETURN\n-A ISTIO_OUTPUT -m owner --uid-owner 2000 -j RETURN\n-A ISTIO_OUTPUT -m owner --gid-owner 3000 -j RETURN\n"));
        let id = proxy_identity((None, None), &[], [Some(&p), None], &Conventions::ISTIO);
        assert_eq!((id.uid, id.gid), (2000, 3000));
        assert_eq!(id.uid_from, IdOrigin::Rules { file: "rules".into(), line: 10 });
        assert_eq!(id.gid_from, IdOrigin::Rules { file: "rules".into(), line: 11 });
    }

    /// `--proxy-uid 1337,1338` gives two exemptions: no one identity, so the default holds.
    #[test]
    fn two_exempt_uids_name_no_one_proxy() {
        let p = program(&nat("-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN\n-A ISTIO_OUTPUT -m owner --uid-owner 1338 -j RETURN\n"));
        let id = proxy_identity((None, None), &[], [Some(&p), None], &Conventions::ISTIO);
        assert_eq!((id.uid, id.uid_from, id.gid_from), (1337, IdOrigin::Default, IdOrigin::Default));
    }

    #[test]
    fn given_and_socket_identities_come_first() {
        let p = program(&nat("-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN\n"));
        let mut s = crate::netns::parse_listen("udp:127.0.0.1:15053").unwrap();
        s.owner = Owner::PilotAgent;
        s.uid = Some(1000680000);
        let id =
            proxy_identity((None, None), std::slice::from_ref(&s), [Some(&p), None], &Conventions::ISTIO);
        assert_eq!(id.uid, 1000680000);
        assert!(matches!(id.uid_from, IdOrigin::Socket { .. }));
        let id = proxy_identity((Some(7), Some(8)), &[s], [Some(&p), None], &Conventions::ISTIO);
        assert_eq!((id.uid, id.gid, id.uid_from, id.gid_from), (7, 8, IdOrigin::Given, IdOrigin::Given));
    }
}
