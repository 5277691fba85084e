//! The upstream transport socket for a chosen host, and the TLS ClientHello it sends.
//!
//! Envoy picks a host's socket in `TransportSocketMatcherImpl::resolve`
//! (source/common/upstream/transport_socket_match_impl.cc): the first of the cluster's
//! `transport_socket_matches` whose `match` labels are all in the endpoint's metadata under
//! `envoy.transport_socket_match`; failing that, the first whose labels are all in the locality's
//! metadata; failing that, the cluster's `transport_socket` (plaintext `raw_buffer` when absent).
//! Labels are compared by `Config::Metadata::metadataLabelMatch` (source/common/config/metadata.cc),
//! so a match with no labels takes any host.

use serde::Serialize;

use super::super::model::{Labels, TransportSocket, UpstreamTransport};

/// The socket Envoy uses for one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransportPick {
    /// The `transport_socket_matches` entry that matched (`None`: the cluster's
    /// `transport_socket`, Envoy's "default" match).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket_match: Option<String>,
    /// Which metadata the match was found in: `endpoint` or `locality`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched_on: Option<&'static str>,
    /// `None`: plaintext (`raw_buffer`, no `transport_socket`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket: Option<TransportSocket>,
    /// The cluster's `auto_sni`.
    pub auto_sni: bool,
}

/// The TLS ClientHello an upstream TLS socket sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientHello {
    pub sni: Option<String>,
    /// `sni` from the context, `auto_sni` from the request's host, or none.
    pub sni_from: &'static str,
    pub alpn: Vec<String>,
    /// The context presents a client certificate.
    pub certificate: bool,
}

fn labels_match(want: &Labels, have: &Labels) -> bool {
    want.iter().all(|w| have.contains(w))
}

/// Envoy's choice for a host with these endpoint and locality labels.
pub fn resolve(t: &UpstreamTransport, endpoint: &Labels, locality: &Labels) -> TransportPick {
    let hit = |have: &Labels| t.matches.iter().find(|m| labels_match(&m.labels, have));
    let (m, on) = match hit(endpoint) {
        Some(m) => (Some(m), Some("endpoint")),
        None => (hit(locality), Some("locality")),
    };
    match m {
        Some(m) => TransportPick {
            socket_match: Some(m.name.clone()),
            matched_on: on,
            socket: Some(m.socket.clone()).filter(|s| !is_raw_buffer(s)),
            auto_sni: t.auto_sni,
        },
        None => TransportPick {
            socket_match: None,
            matched_on: None,
            socket: t.default.clone().filter(|s| !is_raw_buffer(s)),
            auto_sni: t.auto_sni,
        },
    }
}

fn is_raw_buffer(s: &TransportSocket) -> bool {
    s.tls.is_none() && matches!(s.name.as_str(), "envoy.transport_sockets.raw_buffer" | "raw_buffer")
}

impl TransportPick {
    /// The ClientHello, when the socket is TLS. The SNI is the context's `sni`; with `auto_sni`
    /// the HTTP request's host (without port) replaces it unless it is an IP address
    /// (source/common/router/router.cc, `Filter::decodeHeaders`: `parseAuthority(host)`, then
    /// `UpstreamServerName` is set when `!is_ip_address_ && auto_sni()`). `authority` is `None`
    /// for a TCP proxy, which has no request.
    pub fn client_hello(&self, authority: Option<&str>) -> Option<ClientHello> {
        let tls = self.socket.as_ref()?.tls.as_ref()?;
        let host =
            authority.map(strip_port).filter(|h| !h.is_empty() && h.parse::<std::net::IpAddr>().is_err());
        let (sni, sni_from) = match (self.auto_sni, host, &tls.sni) {
            (true, Some(h), _) => (Some(h.to_string()), "auto_sni"),
            (_, _, Some(s)) => (Some(s.clone()), "sni"),
            _ => (None, "none"),
        };
        Some(ClientHello { sni, sni_from, alpn: tls.alpn.clone(), certificate: tls.certificate })
    }
}

fn strip_port(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.parse::<u16>().is_ok() => h,
        _ => authority,
    }
}
