//! The neutral Envoy model: one shape for v2 and v3 dumps, owned, with each object's origin.

mod cluster;
mod listener;

pub use cluster::*;
pub use listener::*;

use serde::Serialize;

/// Where an object came from: its name, JSON path inside the dump, line (when known) and the
/// Istio resource that produced it (`metadata.filter_metadata.istio.config`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Origin {
    pub name: Option<String>,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub istio_config: Option<String>,
}

/// A parsed dump.
#[derive(Debug, Clone, Default)]
pub struct EnvoyConfig {
    pub listeners: Vec<Listener>,
    pub clusters: Vec<Cluster>,
    pub route_configs: Vec<RouteConfigEntry>,
    /// ClusterLoadAssignments from an `EndpointsConfigDump` (`?include_eds`) or bare arrays.
    pub load_assignments: Vec<LoadAssignment>,
    /// The kinds of dump sections read, in document order (e.g. `ListenersConfigDump`).
    pub sections: Vec<Section>,
    /// Things present in the input that meshpath did not understand or model.
    pub notes: Vec<Note>,
    /// What Envoy refuses (or serves differently) in this dump ([`crate::envoy::validate`]).
    pub findings: Vec<crate::envoy::validate::Finding>,
    /// Name and address lookups, built when parsing ends (large sidecars hold thousands of
    /// listeners and clusters); empty for a config assembled by hand, then lookups scan.
    pub lookup: Lookup,
}

/// Positions of listeners by bound address and of clusters and load assignments by name.
#[derive(Debug, Clone, Default)]
pub struct Lookup {
    built: bool,
    clusters: std::collections::HashMap<String, Vec<usize>>,
    assignments: std::collections::HashMap<String, usize>,
    listeners_at: std::collections::HashMap<std::net::SocketAddr, Vec<usize>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub kind: String,
    pub path: String,
    pub modelled: bool,
}

/// Something not understood: where, and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    pub message: String,
}

/// Where a route configuration was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteConfigKind {
    /// `dynamic_route_configs` (RDS).
    Dynamic,
    /// `static_route_configs` (Envoy lists every inline HCM route config here too).
    Static,
    /// Inside a listener's HCM.
    Inline,
    /// A bare resource.
    Bare,
}

/// A RouteConfiguration, read by the route layer ([`crate::envoy::route`]).
#[derive(Debug, Clone)]
pub struct RouteConfigEntry {
    pub origin: Origin,
    pub kind: RouteConfigKind,
    pub name: String,
    pub config: crate::envoy::route::RouteConfig,
}

impl EnvoyConfig {
    /// Builds [`Lookup`]; call again after changing the lists.
    pub fn build_lookup(&mut self) {
        let mut l = Lookup { built: true, ..Lookup::default() };
        for (i, c) in self.clusters.iter().enumerate() {
            l.clusters.entry(c.name.clone()).or_default().push(i);
        }
        for (i, a) in self.load_assignments.iter().enumerate() {
            l.assignments.entry(a.cluster_name.clone()).or_insert(i);
        }
        for (i, li) in self.listeners.iter().enumerate() {
            for addr in li.address.socket().into_iter().chain(li.additional_addresses.iter().copied()) {
                let at = l.listeners_at.entry(addr).or_default();
                if !at.contains(&i) {
                    at.push(i);
                }
            }
        }
        self.lookup = l;
    }

    /// Listeners bound to exactly `addr` (their address or an additional one), in order.
    pub fn listeners_at(&self, addr: std::net::SocketAddr) -> Vec<usize> {
        if self.lookup.built {
            return self.lookup.listeners_at.get(&addr).cloned().unwrap_or_default();
        }
        self.listeners
            .iter()
            .enumerate()
            .filter(|(_, l)| l.address.socket() == Some(addr) || l.additional_addresses.contains(&addr))
            .map(|(i, _)| i)
            .collect()
    }

    /// Whether the dump carries route configurations at all (a `RoutesConfigDump`, or any
    /// route configuration); without them a missing RDS name says nothing about Envoy.
    pub fn has_routes(&self) -> bool {
        !self.route_configs.is_empty() || self.sections.iter().any(|s| s.kind.ends_with("RoutesConfigDump"))
    }
    /// Whether the dump was taken with `?include_eds` (it has an `EndpointsConfigDump`).
    pub fn has_endpoints(&self) -> bool {
        !self.load_assignments.is_empty()
            || self.sections.iter().any(|s| s.kind.ends_with("EndpointsConfigDump"))
    }
    /// Whether the dump carries clusters at all.
    pub fn has_clusters(&self) -> bool {
        !self.clusters.is_empty() || self.sections.iter().any(|s| s.kind.ends_with("ClustersConfigDump"))
    }
    pub fn listener(&self, name: &str) -> Option<&Listener> {
        self.listeners.iter().find(|l| l.name == name)
    }
    /// The active cluster with this name (warming clusters are not used for traffic).
    pub fn cluster(&self, name: &str) -> Option<&Cluster> {
        if self.lookup.built {
            let at = self.lookup.clusters.get(name)?;
            return at
                .iter()
                .filter_map(|&i| self.clusters.get(i))
                .find(|c| c.state != ResourceState::Warming);
        }
        self.clusters.iter().find(|c| c.name == name && c.state != ResourceState::Warming)
    }
    /// A dynamic (RDS) route configuration by name; else a static one with that name.
    pub fn route_config(&self, name: &str) -> Option<&RouteConfigEntry> {
        self.route_configs.iter().find(|r| r.name == name && r.kind == RouteConfigKind::Dynamic).or_else(
            || self.route_configs.iter().find(|r| r.name == name && r.kind != RouteConfigKind::Inline),
        )
    }
    /// The load assignment delivered by EDS for `service_name`, if the dump has endpoints.
    pub fn eds_assignment(&self, service_name: &str) -> Option<&LoadAssignment> {
        if self.lookup.built {
            return self.lookup.assignments.get(service_name).and_then(|&i| self.load_assignments.get(i));
        }
        self.load_assignments.iter().find(|a| a.cluster_name == service_name)
    }
}

/// Lifecycle state of a listener or cluster in the dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceState {
    Static,
    Active,
    Warming,
    Draining,
    /// A rejected update (`error_state.failed_configuration`); never serves traffic.
    Error,
}

impl ResourceState {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceState::Static => "static",
            ResourceState::Active => "active",
            ResourceState::Warming => "warming",
            ResourceState::Draining => "draining",
            ResourceState::Error => "error",
        }
    }
    /// Whether connections are accepted by / routed to an object in this state.
    pub fn serves(self) -> bool {
        matches!(self, ResourceState::Static | ResourceState::Active)
    }
}
