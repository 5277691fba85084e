//! The request a route table is asked about and the decision it makes.

use std::collections::BTreeMap;

use super::matchers::{HeaderMap, StructValue};

/// One HTTP request as the router sees it.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `:authority` / Host (may carry `:port`).
    pub authority: String,
    /// `:path`, including any `?query`.
    pub path: String,
    /// `:method`.
    pub method: String,
    /// Further request headers, in order (names compared case-insensitively).
    pub headers: Vec<(String, String)>,
    /// `:scheme` (`http` or `https`).
    pub scheme: String,
    /// `x-forwarded-proto`; `None` means "same as `scheme`" unless `headers` carries one.
    pub forwarded_proto: Option<String>,
    /// Drives `weighted_clusters` and `runtime_fraction`. `None`: weighted routes keep every
    /// branch with its weight, and a `runtime_fraction` route matches when its fraction is
    /// above zero (the decision says so in its `considered` list).
    pub random_value: Option<u64>,
    /// How runtime-gated routes are evaluated.
    pub runtime: RuntimeMode,
    /// Dynamic metadata by filter namespace (for `match.dynamic_metadata`).
    pub dynamic_metadata: BTreeMap<String, StructValue>,
}

/// The runtime layer seen by `runtime_fraction`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RuntimeMode {
    /// A proxy without runtime overrides: each key's `default_value` decides.
    #[default]
    Defaults,
    /// Envoy's `router_check_tool` mock: a runtime-gated route can match only when its key is
    /// `enabled_key` (the test's `input.runtime`), and then by its default fraction with a zero
    /// numerator raised to one (E:test/tools/router_check/router.cc `runtimeMock`,
    /// `assignRuntimeFraction`).
    RouterCheckTool { enabled_key: Option<String> },
}

impl Request {
    /// A GET over plain HTTP for `authority` and `path`.
    pub fn new(authority: &str, path: &str) -> Request {
        Request {
            authority: authority.to_string(),
            path: path.to_string(),
            method: "GET".to_string(),
            scheme: "http".to_string(),
            ..Request::default()
        }
    }

    /// The request as an Envoy header map: pseudo-headers, `x-forwarded-proto`, then `headers`.
    pub fn header_map(&self) -> HeaderMap {
        let mut map = HeaderMap::default();
        map.add(":authority", &self.authority);
        map.add(":path", &self.path);
        map.add(":method", &self.method);
        map.add(":scheme", &self.scheme);
        let explicit_xfp = self.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("x-forwarded-proto"));
        if !explicit_xfp {
            map.add("x-forwarded-proto", self.forwarded_proto.as_deref().unwrap_or(&self.scheme));
        }
        for (k, v) in &self.headers {
            map.add(k, v);
        }
        map
    }
}

/// A virtual host or route that was selected: its position, name and origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    /// Index in `virtual_hosts` (or in the virtual host's `routes`).
    pub index: usize,
    pub name: String,
    /// Index path inside the route configuration, e.g. `virtual_hosts[1].routes[3]`.
    pub source: String,
    /// Istio's `metadata.filter_metadata.istio.config`, when present.
    pub istio_config: Option<String>,
}

/// Where a matched request goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Forwarded upstream.
    Forward {
        target: ClusterTarget,
        /// Route timeout in nanoseconds (15 s when not configured; 0 = none).
        timeout_nanos: u64,
    },
    /// A redirect: the `Location` Envoy sends and the status.
    Redirect {
        location: String,
        status: u16,
        /// True for the virtual host's `require_tls` redirect (not a route's `redirect`).
        require_tls: bool,
    },
    /// `direct_response`.
    DirectResponse { status: u32, body: Option<String> },
    /// `non_forwarding_action` / `filter_action`.
    NonForwarding,
    /// No virtual host or no route: 404 with flag NR, details `route_not_found`.
    NotFound,
}

/// The cluster a forwarded request goes to.
#[derive(Debug, Clone, PartialEq)]
pub enum ClusterTarget {
    /// `route.cluster`.
    Cluster(String),
    /// `route.cluster_header`: the cluster named by a request header ("" when missing, which
    /// Envoy answers with 503 NC).
    Header { header: String, cluster: String },
    /// `route.weighted_clusters`.
    Weighted {
        branches: Vec<WeightedBranch>,
        total_weight: u64,
        /// The branch `random_value % total_weight` picks; `None` without a random value.
        selected: Option<usize>,
    },
}

/// One branch of a weighted cluster choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightedBranch {
    /// The cluster name (resolved from `cluster_header` when the branch uses one).
    pub cluster: String,
    pub weight: u32,
}

impl ClusterTarget {
    /// The single cluster name, when one was determined.
    pub fn cluster_name(&self) -> Option<&str> {
        match self {
            ClusterTarget::Cluster(c) => Some(c),
            ClusterTarget::Header { cluster, .. } => Some(cluster),
            ClusterTarget::Weighted { branches, selected, .. } => {
                selected.and_then(|i| branches.get(i)).map(|b| b.cluster.as_str())
            }
        }
    }
}

/// Envoy response flags this layer can decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFlag {
    /// `NR`: no route (404, `route_not_found`).
    NoRouteFound,
    /// `NC`: the route named no cluster (503, `cluster_not_found`).
    NoClusterFound,
}

impl ResponseFlag {
    /// The short flag as in access logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseFlag::NoRouteFound => "NR",
            ResponseFlag::NoClusterFound => "NC",
        }
    }
}

/// One thing the router looked at while deciding, in evaluation order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Index path of the virtual host or route (empty for the table as a whole).
    pub source: String,
    pub name: String,
    pub matched: bool,
    /// Why it matched or the first criterion that failed.
    pub detail: String,
}

/// The router's answer for one request.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteDecision {
    pub virtual_host: Option<Selected>,
    pub route: Option<Selected>,
    pub outcome: Outcome,
    /// The virtual-host choice and every route tried, in order.
    pub considered: Vec<Candidate>,
}

impl RouteDecision {
    /// The flag Envoy would log when the decision alone ends the request.
    pub fn response_flag(&self) -> Option<ResponseFlag> {
        match &self.outcome {
            Outcome::NotFound => Some(ResponseFlag::NoRouteFound),
            Outcome::Forward { target, .. } => match target.cluster_name() {
                Some("") => Some(ResponseFlag::NoClusterFound),
                _ => None,
            },
            _ => None,
        }
    }

    /// The HTTP status Envoy itself answers with, if it answers locally.
    pub fn local_status(&self) -> Option<u32> {
        match &self.outcome {
            Outcome::NotFound => Some(404),
            Outcome::Redirect { status, .. } => Some(u32::from(*status)),
            Outcome::DirectResponse { status, .. } => Some(*status),
            Outcome::Forward { .. } if self.response_flag().is_some() => Some(503),
            _ => None,
        }
    }

    /// The chosen cluster name, if the request is forwarded to a single known cluster.
    pub fn cluster_name(&self) -> Option<&str> {
        match &self.outcome {
            Outcome::Forward { target, .. } => target.cluster_name(),
            _ => None,
        }
    }
}
