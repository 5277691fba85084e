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
    /// Whether the dump carries route configurations at all (a `RoutesConfigDump`, or any
    /// route configuration); without them a missing RDS name says nothing about Envoy.
    pub fn has_routes(&self) -> bool {
        !self.route_configs.is_empty()
            || self
                .sections
                .iter()
                .any(|s| s.kind.ends_with("RoutesConfigDump"))
    }
    /// Whether the dump was taken with `?include_eds` (it has an `EndpointsConfigDump`).
    pub fn has_endpoints(&self) -> bool {
        !self.load_assignments.is_empty()
            || self
                .sections
                .iter()
                .any(|s| s.kind.ends_with("EndpointsConfigDump"))
    }
    /// Whether the dump carries clusters at all.
    pub fn has_clusters(&self) -> bool {
        !self.clusters.is_empty()
            || self
                .sections
                .iter()
                .any(|s| s.kind.ends_with("ClustersConfigDump"))
    }
    pub fn listener(&self, name: &str) -> Option<&Listener> {
        self.listeners.iter().find(|l| l.name == name)
    }
    /// The active cluster with this name (warming clusters are not used for traffic).
    pub fn cluster(&self, name: &str) -> Option<&Cluster> {
        self.clusters
            .iter()
            .find(|c| c.name == name && c.state != ResourceState::Warming)
    }
    /// A dynamic (RDS) route configuration by name; else a static one with that name.
    pub fn route_config(&self, name: &str) -> Option<&RouteConfigEntry> {
        self.route_configs
            .iter()
            .find(|r| r.name == name && r.kind == RouteConfigKind::Dynamic)
            .or_else(|| {
                self.route_configs
                    .iter()
                    .find(|r| r.name == name && r.kind != RouteConfigKind::Inline)
            })
    }
    /// The load assignment delivered by EDS for `service_name`, if the dump has endpoints.
    pub fn eds_assignment(&self, service_name: &str) -> Option<&LoadAssignment> {
        self.load_assignments
            .iter()
            .find(|a| a.cluster_name == service_name)
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
