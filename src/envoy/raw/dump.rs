//! Admin dump wrappers: `{"configs": [...]}`, single `*ConfigDump`s (v2alpha and v3; all kinds
//! share one union struct because their field names differ), the 2018 `configs` map, bare
//! resource arrays (`istioctl proxy-config listeners -o json`) and objects keyed by listener
//! name.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::cluster::{Cluster, LoadAssignment};
use super::listener::Listener;
use super::{rest_of_map, Resource, Str};
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
}

/// Every `*ConfigDump` kind, plus the top-level `configs` list.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AdminDump<'a> {
    #[serde(borrow, default)]
    pub configs: Configs<'a>,
    #[serde(
        borrow,
        default,
        deserialize_with = "crate::envoy::raw::nullable",
        alias = "staticListeners"
    )]
    pub static_listeners: Vec<ListenerWrapper<'a>>,
    #[serde(
        borrow,
        default,
        deserialize_with = "crate::envoy::raw::nullable",
        alias = "dynamicListeners"
    )]
    pub dynamic_listeners: Vec<DynamicListener<'a>>,
    #[serde(
        borrow,
        default,
        deserialize_with = "crate::envoy::raw::nullable",
        alias = "dynamicActiveListeners"
    )]
    pub dynamic_active_listeners: Vec<ListenerWrapper<'a>>,
    #[serde(
        borrow,
        default,
        deserialize_with = "crate::envoy::raw::nullable",
        alias = "dynamicWarmingListeners"
    )]
    pub dynamic_warming_listeners: Vec<ListenerWrapper<'a>>,
    #[serde(
        borrow,
        default,
        deserialize_with = "crate::envoy::raw::nullable",
        alias = "dynamicDrainingListeners"
    )]
    pub dynamic_draining_listeners: Vec<ListenerWrapper<'a>>,
    #[serde(
        borrow,
        default,
        deserialize_with = "crate::envoy::raw::nullable",
        alias = "staticClusters"
    )]
    pub static_clusters: Vec<ClusterWrapper<'a>>,
    #[serde(
        borrow,
        default,
        deserialize_with = "crate::envoy::raw::nullable",
        alias = "dynamicActiveClusters"
    )]
    pub dynamic_active_clusters: Vec<ClusterWrapper<'a>>,
    #[serde(
        borrow,
        default,
        deserialize_with = "crate::envoy::raw::nullable",
        alias = "dynamicWarmingClusters"
    )]
    pub dynamic_warming_clusters: Vec<ClusterWrapper<'a>>,
    #[serde(
        borrow,
        default,
        deserialize_with = "crate::envoy::raw::nullable",
        alias = "staticRouteConfigs"
    )]
    pub static_route_configs: Vec<RouteWrapper<'a>>,
    #[serde(
        borrow,
        default,
        deserialize_with = "crate::envoy::raw::nullable",
        alias = "dynamicRouteConfigs"
    )]
    pub dynamic_route_configs: Vec<RouteWrapper<'a>>,
    #[serde(
        borrow,
        default,
        deserialize_with = "crate::envoy::raw::nullable",
        alias = "staticEndpointConfigs"
    )]
    pub static_endpoint_configs: Vec<EndpointWrapper<'a>>,
    #[serde(
        borrow,
        default,
        deserialize_with = "crate::envoy::raw::nullable",
        alias = "dynamicEndpointConfigs"
    )]
    pub dynamic_endpoint_configs: Vec<EndpointWrapper<'a>>,
    #[serde(
        default,
        deserialize_with = "crate::envoy::raw::nullable",
        alias = "dynamicScopedRouteConfigs"
    )]
    pub dynamic_scoped_route_configs: Vec<IgnoredAny>,
    #[serde(
        default,
        deserialize_with = "crate::envoy::raw::nullable",
        alias = "inlineScopedRouteConfigs"
    )]
    pub inline_scoped_route_configs: Vec<IgnoredAny>,
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
}

#[derive(Debug, Clone, Default)]
pub struct RouteWrapper<'a> {
    pub route_config: Option<RawRoute<'a>>,
    /// Envoy 1.7 lists RouteConfigurations directly (no `route_config` wrapper).
    pub unwrapped: Option<RawRoute<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for RouteWrapper<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: &'a RawValue = Deserialize::deserialize(d)?;
        let keys: RouteWrapperKeys<'a> =
            serde_json::from_str(raw.get()).map_err(de::Error::custom)?;
        Ok(match keys.route_config {
            Some(rc) => RouteWrapper {
                route_config: Some(rc),
                unwrapped: None,
            },
            None => RouteWrapper {
                route_config: None,
                unwrapped: Some(raw),
            },
        })
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct EndpointWrapper<'a> {
    #[serde(borrow, alias = "endpointConfig")]
    pub endpoint_config: Option<Resource<'a, LoadAssignment<'a>>>,
}

/// `configs`: a list of `Any` dumps, or (Envoy 1.7) a map from dump kind to dump.
#[derive(Debug, Clone, Default)]
pub struct Configs<'a>(pub Vec<(Option<String>, Resource<'a, AdminDump<'a>>)>);

impl<'de: 'a, 'a> Deserialize<'de> for Configs<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Configs<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list or map of config dumps")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(d) = seq.next_element::<Resource<'a, AdminDump<'a>>>()? {
                    out.push((None, d));
                }
                Ok(Configs(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = map.next_key::<String>()? {
                    let d = map.next_value::<Resource<'a, AdminDump<'a>>>()?;
                    out.push((Some(k), d));
                }
                Ok(Configs(out))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A bare resource found in an array or keyed object, classified by its top-level keys.
#[derive(Debug, Clone)]
pub enum BareResource<'a> {
    Listener(Box<Listener<'a>>),
    Cluster(Box<Cluster<'a>>),
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
            1 => BareResource::Listener(Box::new(serde_json::from_str(text).map_err(e)?)),
            2 => BareResource::Cluster(Box::new(serde_json::from_str(text).map_err(e)?)),
            3 => BareResource::RouteConfig(raw),
            4 => BareResource::LoadAssignment(Box::new(serde_json::from_str(text).map_err(e)?)),
            _ => BareResource::Unknown(keys.0.into_iter().take(6).collect()),
        })
    }
}

/// The whole document.
#[derive(Debug, Clone)]
pub enum Root<'a> {
    /// `{"configs": ...}` or a single `*ConfigDump` (with or without `@type`).
    Dump(Box<Resource<'a, AdminDump<'a>>>),
    /// `[resource, ...]`.
    Array(Vec<BareResource<'a>>),
    /// `{"<name>": resource, ...}` (Pilot test goldens).
    Keyed(Vec<(String, BareResource<'a>)>),
}

impl<'de: 'a, 'a> Deserialize<'de> for Root<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Root<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an Envoy config dump (object) or an array of resources")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(r) = seq.next_element::<BareResource<'a>>()? {
                    out.push(r);
                }
                Ok(Root::Array(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let Some(first) = map.next_key::<Str<'de>>()? else {
                    return Ok(Root::Dump(Box::default()));
                };
                if first.as_str() == "@type" {
                    let url = map.next_value::<Str<'de>>()?;
                    let value = rest_of_map(None, map)?;
                    return Ok(Root::Dump(Box::new(Resource {
                        type_url: Some(url),
                        value,
                    })));
                }
                if ADMIN_DUMP_KEYS.contains(&first.as_str()) {
                    let value = rest_of_map(Some(first), map)?;
                    return Ok(Root::Dump(Box::new(Resource {
                        type_url: None,
                        value,
                    })));
                }
                let mut out = vec![(
                    first.as_str().to_string(),
                    map.next_value::<BareResource<'a>>()?,
                )];
                while let Some(k) = map.next_key::<String>()? {
                    let r = map.next_value::<BareResource<'a>>()?;
                    out.push((k, r));
                }
                Ok(Root::Keyed(out))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}
