//! Admin dump wrappers (`static_listeners[]`, `dynamic_listeners[]`, ... entries) and bare
//! resources (`istioctl proxy-config listeners -o json` arrays, objects keyed by name). The
//! document walk itself is in [`super::stream`].

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::cluster::{Cluster, LoadAssignment};
use super::listener::Listener;
use super::{Resource, Str};
use serde_json::value::RawValue;

/// A RouteConfiguration kept as its raw JSON text (borrowed); the route layer reads it during
/// conversion so that a bad route table is a note, not a failed dump.
pub type RawRoute<'a> = &'a RawValue;

/// The keys of a `*_route_configs[]` entry: a `{route_config, ...}` wrapper, or (Envoy 1.7) the
/// RouteConfiguration itself.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RouteWrapperKeys<'a> {
    #[serde(borrow, alias = "routeConfig")]
    pub route_config: Option<RawRoute<'a>>,
    #[serde(borrow, alias = "errorState")]
    pub error_state: Option<UpdateFailureState<'a>>,
    #[serde(borrow)]
    pub name: Option<Str<'a>>,
}

/// `admin.v3.UpdateFailureState` of a cluster or route configuration: only the rejected
/// resource's name and Envoy's `details` are read.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct UpdateFailureState<'a> {
    #[serde(borrow, alias = "failedConfiguration")]
    pub failed_configuration: Option<NameOnly<'a>>,
    #[serde(borrow)]
    pub details: Option<Str<'a>>,
}

impl<'a> UpdateFailureState<'a> {
    pub fn failed_name(&self) -> Option<&Str<'a>> {
        self.failed_configuration.as_ref()?.name.as_ref()
    }
}

/// Only the `name` of a resource.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NameOnly<'a> {
    #[serde(borrow)]
    pub name: Option<Str<'a>>,
}

pub const ADMIN_DUMP_KEYS: &[&str] = &[
    "configs",
    "@type",
    "version_info",
    "versionInfo",
    "static_listeners",
    "staticListeners",
    "dynamic_listeners",
    "dynamicListeners",
    "dynamic_active_listeners",
    "dynamicActiveListeners",
    "dynamic_warming_listeners",
    "dynamicWarmingListeners",
    "dynamic_draining_listeners",
    "dynamicDrainingListeners",
    "static_clusters",
    "staticClusters",
    "dynamic_active_clusters",
    "dynamicActiveClusters",
    "dynamic_warming_clusters",
    "dynamicWarmingClusters",
    "static_route_configs",
    "staticRouteConfigs",
    "dynamic_route_configs",
    "dynamicRouteConfigs",
    "static_endpoint_configs",
    "staticEndpointConfigs",
    "dynamic_endpoint_configs",
    "dynamicEndpointConfigs",
    "bootstrap",
    "last_updated",
    "lastUpdated",
];

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListenerWrapper<'a> {
    #[serde(borrow, default)]
    pub listener: Option<Resource<'a, Listener<'a>>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct DynamicListener<'a> {
    #[serde(borrow)]
    pub name: Option<Str<'a>>,
    #[serde(borrow, alias = "activeState")]
    pub active_state: Option<ListenerWrapper<'a>>,
    #[serde(borrow, alias = "warmingState")]
    pub warming_state: Option<ListenerWrapper<'a>>,
    #[serde(borrow, alias = "drainingState")]
    pub draining_state: Option<ListenerWrapper<'a>>,
    #[serde(borrow, alias = "errorState")]
    pub error_state: Option<ErrorState<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorState<'a> {
    #[serde(borrow, alias = "failedConfiguration")]
    pub failed_configuration: Option<Resource<'a, Listener<'a>>>,
    #[serde(borrow)]
    pub details: Option<Str<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ClusterWrapper<'a> {
    #[serde(borrow)]
    pub cluster: Option<Resource<'a, Cluster<'a>>>,
    #[serde(borrow, alias = "errorState")]
    pub error_state: Option<UpdateFailureState<'a>>,
}

#[derive(Debug, Clone, Default)]
pub struct RouteWrapper<'a> {
    pub route_config: Option<RawRoute<'a>>,
    /// Envoy 1.7 lists RouteConfigurations directly (no `route_config` wrapper).
    pub unwrapped: Option<RawRoute<'a>>,
    /// A rejected update (v3 `error_state`), beside the last good `route_config` if any.
    pub error_state: Option<UpdateFailureState<'a>>,
    pub name: Option<Str<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for RouteWrapper<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: &'a RawValue = Deserialize::deserialize(d)?;
        let keys: RouteWrapperKeys<'a> = serde_json::from_str(raw.get()).map_err(de::Error::custom)?;
        let (route_config, unwrapped) = match (keys.route_config, &keys.error_state) {
            (Some(rc), _) => (Some(rc), None),
            // Only a rejected update: there is no route configuration to read.
            (None, Some(_)) => (None, None),
            (None, None) => (None, Some(raw)),
        };
        Ok(RouteWrapper { route_config, unwrapped, error_state: keys.error_state, name: keys.name })
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct EndpointWrapper<'a> {
    #[serde(borrow, alias = "endpointConfig")]
    pub endpoint_config: Option<Resource<'a, LoadAssignment<'a>>>,
}

/// A bare resource found in an array or keyed object, classified by its top-level keys.
#[derive(Debug, Clone)]
pub enum BareResource<'a> {
    /// The listener, and its text (checked for fields Envoy does not know).
    Listener(Box<Listener<'a>>, RawRoute<'a>),
    Cluster(Box<Cluster<'a>>, RawRoute<'a>),
    RouteConfig(RawRoute<'a>),
    LoadAssignment(Box<LoadAssignment<'a>>),
    Unknown(Vec<String>),
}

/// Top-level keys of an object (values skipped).
struct Keys(Vec<String>);

impl<'de> Deserialize<'de> for Keys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Keys;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = map.next_key::<String>()? {
                    map.next_value::<IgnoredAny>()?;
                    out.push(k);
                }
                Ok(Keys(out))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Keys(Vec::new()))
            }
        }
        d.deserialize_any(V)
    }
}

fn classify(keys: &[String]) -> u8 {
    let has = |ks: &[&str]| ks.iter().any(|k| keys.iter().any(|x| x == k));
    if has(&[
        "filter_chains",
        "filterChains",
        "listener_filters",
        "listenerFilters",
        "default_filter_chain",
        "defaultFilterChain",
        "internal_listener",
        "internalListener",
        "address",
    ]) {
        1
    } else if has(&["virtual_hosts", "virtualHosts"]) {
        3
    } else if has(&["cluster_name", "clusterName"]) {
        4
    } else if has(&[
        "type",
        "lb_policy",
        "lbPolicy",
        "connect_timeout",
        "connectTimeout",
        "eds_cluster_config",
        "edsClusterConfig",
        "load_assignment",
        "loadAssignment",
        "cluster_type",
        "clusterType",
    ]) {
        2
    } else {
        0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for BareResource<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Each element is taken as raw text (borrowed), its keys are read, then it is parsed
        // typed from the same text: no generic tree.
        let raw: &'a RawValue = Deserialize::deserialize(d)?;
        let keys: Keys = serde_json::from_str(raw.get()).map_err(de::Error::custom)?;
        let text: &'a str = raw.get();
        let e = de::Error::custom;
        Ok(match classify(&keys.0) {
            1 => BareResource::Listener(Box::new(serde_json::from_str(text).map_err(e)?), raw),
            2 => BareResource::Cluster(Box::new(serde_json::from_str(text).map_err(e)?), raw),
            3 => BareResource::RouteConfig(raw),
            4 => BareResource::LoadAssignment(Box::new(serde_json::from_str(text).map_err(e)?)),
            _ => BareResource::Unknown(keys.0.into_iter().take(6).collect()),
        })
    }
}
