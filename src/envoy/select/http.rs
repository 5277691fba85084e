//! The HTTP part of a connection: host rewriting by the HCM, the route layer's decision, then
//! the cluster(s) it names (Envoy: source/common/router/config_impl.cc).

use std::net::SocketAddr;

use serde::Serialize;

use super::super::model::{EnvoyConfig, HttpConnectionManager, RouteConfigEntry};
use super::super::route::{self, ClusterTarget, Outcome as RouteOutcome};
use super::listener::SocketState;
use super::{failure, finish, ObjectRef, Outcome, Query, Trace, UpstreamContext};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpStep {
    /// The request as routed (after host-port stripping).
    pub authority: String,
    pub path: String,
    pub method: String,
    /// True when no request was given and `dst` with `GET /` was assumed.
    pub assumed: bool,
    pub route_config: ObjectRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_host: Option<ObjectRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<ObjectRef>,
    /// What the router did, e.g. `forward`, `direct_response`, `redirect`, `not_found`.
    pub decision: String,
}

/// HCM host rewriting: `strip_any_host_port`, or `strip_matching_host_port` when the port is
/// the listener's.
fn strip_port(authority: &str, h: &HttpConnectionManager, listener_port: u16) -> String {
    let (host, port) = match authority.rsplit_once(':') {
        // `[v6]:port` or `name:port`; a bare IPv6 literal has no brackets and is kept.
        Some((h, p)) if p.parse::<u16>().is_ok() && (h.ends_with(']') || !h.contains(':')) => {
            (h, p.parse::<u16>().ok())
        }
        _ => (authority, None),
    };
    match port {
        Some(_) if h.strip_any_host_port => host.to_string(),
        Some(p) if h.strip_matching_host_port && p == listener_port => host.to_string(),
        _ => authority.to_string(),
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn route_request(
    cfg: &EnvoyConfig,
    q: &Query,
    st: &SocketState,
    h: &HttpConnectionManager,
    rc: &RouteConfigEntry,
    restored: Option<SocketAddr>,
    tls_terminated: bool,
    t: &mut Trace,
) {
    let assumed = q.request.is_none();
    let given = q.request.clone().unwrap_or_default();
    let authority = given.host.clone().unwrap_or_else(|| q.dst.to_string());
    let authority = strip_port(&authority, h, st.local.port());
    let mut req = route::Request::new(&authority, if given.path.is_empty() { "/" } else { &given.path });
    if !given.method.is_empty() {
        req.method = given.method.clone();
    }
    req.headers = given.headers.clone();
    req.random_value = q.random_value;
    if st.transport_protocol == "tls" && tls_terminated {
        req.scheme = "https".into();
    }
    let d = route::route(&rc.config, &req);
    let sel = |s: &route::Selected| ObjectRef {
        name: s.name.clone(),
        path: format!("{}.{}", rc.origin.path, s.source),
        line: None,
        istio_config: s.istio_config.clone(),
    };
    let mut step = HttpStep {
        authority: req.authority.clone(),
        path: req.path.clone(),
        method: req.method.clone(),
        assumed,
        route_config: ObjectRef {
            name: rc.name.clone(),
            path: rc.origin.path.clone(),
            line: rc.origin.line,
            istio_config: rc.origin.istio_config.clone(),
        },
        virtual_host: d.virtual_host.as_ref().map(sel),
        route: d.route.as_ref().map(sel),
        decision: String::new(),
    };
    let ctx = UpstreamContext { restored_destination: restored, headers: &given.headers };
    match &d.outcome {
        RouteOutcome::NotFound => {
            step.decision = "not_found".into();
            t.outcome = failure(true, 404, "NR", "route_not_found");
        }
        RouteOutcome::DirectResponse { status, .. } => {
            step.decision = "direct_response".into();
            t.outcome = Outcome::HttpResponse {
                status: u16::try_from(*status).unwrap_or(u16::MAX),
                flag: None,
                details: "direct_response".into(),
                location: None,
            };
        }
        RouteOutcome::Redirect { location, status, .. } => {
            step.decision = "redirect".into();
            t.outcome = Outcome::HttpResponse {
                status: *status,
                flag: None,
                details: "redirect".into(),
                location: Some(location.clone()),
            };
        }
        RouteOutcome::NonForwarding => {
            step.decision = "non_forwarding".into();
            t.outcome = Outcome::Undetermined { reason: "route has a non-forwarding action".into() };
        }
        RouteOutcome::Forward { target, .. } => {
            step.decision = "forward".into();
            let vh = d.virtual_host.as_ref().and_then(|v| rc.config.virtual_hosts.get(v.index));
            let action = vh.zip(d.route.as_ref()).and_then(|(vh, r)| vh.routes.get(r.index));
            t.retry = match action.map(|r| &r.action) {
                Some(route::Action::Route(a)) if a.retry_policy.is_some() => a.retry_policy.clone(),
                _ => vh.and_then(|v| v.retry_policy.clone()),
            };
            let (picks, selected) = match target {
                ClusterTarget::Cluster(c) => (vec![(c.clone(), None)], Some(0)),
                ClusterTarget::Header { cluster, .. } => (vec![(cluster.clone(), None)], Some(0)),
                ClusterTarget::Weighted { branches, selected, .. } => {
                    (branches.iter().map(|b| (b.cluster.clone(), Some(b.weight))).collect(), *selected)
                }
            };
            t.http = Some(step);
            finish(cfg, q, st, picks, selected, &ctx, true, t);
            return;
        }
    }
    t.http = Some(step);
}
