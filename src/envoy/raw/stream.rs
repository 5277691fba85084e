//! The document walk: `{"configs": [...]}` (list, or the Envoy 1.7 map), single `*ConfigDump`s
//! with or without `@type`, bare resource arrays and objects keyed by name. Each resource is
//! handed to a [`DumpSink`] as soon as it is read and then dropped, so the raw structs of a big
//! dump never exist all at once (peak memory ≈ input + model).

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::cluster::LoadAssignment;
use super::dump::{
    BareResource, ClusterWrapper, DynamicListener, EndpointWrapper, ListenerWrapper, RawRoute, RouteWrapper,
    ADMIN_DUMP_KEYS,
};
use super::known::{self, UnknownField};
use super::listener::Listener;
use super::{PrependKey, Str};
use crate::envoy::model::{ResourceState, RouteConfigKind};
use crate::envoy::validate::ObjectKind;
use serde_json::value::RawValue;

/// Receives resources in document order.
pub trait DumpSink<'de> {
    /// A `*ConfigDump` section was entered (`kind` = short type name).
    fn section(&mut self, kind: &str, path: &str);
    fn listener(&mut self, l: &Listener<'de>, path: &str, state: ResourceState);
    fn dynamic_listener(&mut self, d: &DynamicListener<'de>, path: &str);
    fn cluster(&mut self, c: &super::cluster::Cluster<'de>, path: &str, state: ResourceState);
    fn route(&mut self, r: RawRoute<'de>, path: &str, kind: RouteConfigKind);
    fn load_assignment(&mut self, a: &LoadAssignment<'de>, path: &str);
    fn bare(&mut self, r: &BareResource<'de>, path: &str);
    fn note(&mut self, path: &str, message: String);
    /// A cluster's or route configuration's `error_state` (listeners come whole through
    /// [`DumpSink::dynamic_listener`]).
    fn update_rejected(&mut self, r: UpdateRejected<'_, 'de>);
    /// Fields Envoy does not know, found in a listener or cluster ([`super::known`]).
    fn unknown_fields(&mut self, object: ObjectKind, found: Vec<UnknownField>);
}

/// Reads `T` from an element already taken as raw text.
fn typed<'de, T: serde::Deserialize<'de>, E: de::Error>(raw: &'de RawValue) -> Result<T, E> {
    serde_json::from_str(raw.get()).map_err(E::custom)
}

/// An `error_state` of a dynamic cluster or route configuration: Envoy rejected the update
/// (`details`); `last_good` is the path of the version it still serves, if the entry has one.
pub struct UpdateRejected<'p, 'de> {
    pub object: ObjectKind,
    pub name: &'p str,
    pub path: &'p str,
    pub details: Option<&'p Str<'de>>,
    pub last_good: Option<String>,
}

/// Walks a whole document into `sink`.
pub fn walk<'de, D: Deserializer<'de>, S: DumpSink<'de>>(d: D, sink: &mut S) -> Result<(), D::Error> {
    d.deserialize_any(RootVisitor { sink })
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

fn short_type(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

struct RootVisitor<'s, S> {
    sink: &'s mut S,
}

impl<'de, S: DumpSink<'de>> Visitor<'de> for RootVisitor<'_, S> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an Envoy config dump (object) or an array of resources")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.sink.section("resource array", "$");
        let mut i = 0usize;
        while let Some(r) = seq.next_element::<BareResource<'de>>()? {
            self.sink.bare(&r, &format!("[{i}]"));
            i += 1;
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some(first) = map.next_key::<Str<'de>>()? else {
            return Ok(());
        };
        if first.as_str() == "@type" || ADMIN_DUMP_KEYS.contains(&first.as_str()) {
            let seed = DumpSeed { sink: self.sink, path: String::new() };
            return seed.deserialize(de::value::MapAccessDeserializer::new(PrependKey::new(first, map)));
        }
        self.sink.section("resources keyed by name", "$");
        let r = map.next_value::<BareResource<'de>>()?;
        self.sink.bare(&r, &format!("[{:?}]", first.as_str()));
        while let Some(k) = map.next_key::<String>()? {
            let r = map.next_value::<BareResource<'de>>()?;
            self.sink.bare(&r, &format!("[{k:?}]"));
        }
        Ok(())
    }
}

/// One `*ConfigDump` (any kind; `@type` optional) or the top-level object.
struct DumpSeed<'s, S> {
    sink: &'s mut S,
    path: String,
}

impl<'de, S: DumpSink<'de>> DeserializeSeed<'de> for DumpSeed<'_, S> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

const MODELLED: [&str; 4] = ["Listeners", "Clusters", "Routes", "Endpoints"];

impl<'de, S: DumpSink<'de>> Visitor<'de> for DumpSeed<'_, S> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an Envoy *ConfigDump object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let DumpSeed { sink, path } = self;
        let list = |field: &str| join(&path, field);
        while let Some(key) = map.next_key::<Str<'de>>()? {
            let k = key.as_str();
            let state = |s| ListKind::Listeners(s);
            let kind = match k {
                "@type" => {
                    let url = map.next_value::<Str<'de>>()?;
                    let kind = short_type(url.as_str());
                    let p = if path.is_empty() { "$".to_string() } else { path.clone() };
                    if !MODELLED.iter().any(|m| kind.ends_with(&format!(".{m}ConfigDump"))) {
                        sink.note(&p, format!("{kind}: not modelled (skipped)"));
                    }
                    sink.section(kind, &p);
                    continue;
                }
                "configs" => {
                    map.next_value_seed(ConfigsSeed { sink: &mut *sink, path: list("configs") })?;
                    continue;
                }
                "static_listeners" | "staticListeners" => (state(ResourceState::Static), "static_listeners"),
                "dynamic_active_listeners" | "dynamicActiveListeners" => {
                    (state(ResourceState::Active), "dynamic_active_listeners")
                }
                "dynamic_warming_listeners" | "dynamicWarmingListeners" => {
                    (state(ResourceState::Warming), "dynamic_warming_listeners")
                }
                "dynamic_draining_listeners" | "dynamicDrainingListeners" => {
                    (state(ResourceState::Draining), "dynamic_draining_listeners")
                }
                "dynamic_listeners" | "dynamicListeners" => (ListKind::DynamicListeners, "dynamic_listeners"),
                "static_clusters" | "staticClusters" => {
                    (ListKind::Clusters(ResourceState::Static), "static_clusters")
                }
                "dynamic_active_clusters" | "dynamicActiveClusters" => {
                    (ListKind::Clusters(ResourceState::Active), "dynamic_active_clusters")
                }
                "dynamic_warming_clusters" | "dynamicWarmingClusters" => {
                    (ListKind::Clusters(ResourceState::Warming), "dynamic_warming_clusters")
                }
                "static_route_configs" | "staticRouteConfigs" => {
                    (ListKind::Routes(RouteConfigKind::Static), "static_route_configs")
                }
                "dynamic_route_configs" | "dynamicRouteConfigs" => {
                    (ListKind::Routes(RouteConfigKind::Dynamic), "dynamic_route_configs")
                }
                "static_endpoint_configs" | "staticEndpointConfigs" => {
                    (ListKind::Endpoints, "static_endpoint_configs")
                }
                "dynamic_endpoint_configs" | "dynamicEndpointConfigs" => {
                    (ListKind::Endpoints, "dynamic_endpoint_configs")
                }
                "dynamic_scoped_route_configs"
                | "dynamicScopedRouteConfigs"
                | "inline_scoped_route_configs"
                | "inlineScopedRouteConfigs" => {
                    let n = map.next_value::<Option<Vec<IgnoredAny>>>()?.map(|v| v.len()).unwrap_or(0);
                    if n > 0 {
                        sink.note(
                            &list("dynamic_scoped_route_configs"),
                            "scoped route configurations are not modelled".into(),
                        );
                    }
                    continue;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            let (kind, field) = kind;
            map.next_value_seed(ListSeed { sink: &mut *sink, path: list(field), kind })?;
        }
        Ok(())
    }
}

/// `configs`: a list of dumps, or (Envoy 1.7) a map from kind to dump.
struct ConfigsSeed<'s, S> {
    sink: &'s mut S,
    path: String,
}

impl<'de, S: DumpSink<'de>> DeserializeSeed<'de> for ConfigsSeed<'_, S> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, S: DumpSink<'de>> Visitor<'de> for ConfigsSeed<'_, S> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list or map of config dumps")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        loop {
            let seed = DumpSeed { sink: &mut *self.sink, path: format!("{}[{i}]", self.path) };
            if seq.next_element_seed(seed)?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(k) = map.next_key::<String>()? {
            map.next_value_seed(DumpSeed { sink: &mut *self.sink, path: format!("{}.{k}", self.path) })?;
        }
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum ListKind {
    Listeners(ResourceState),
    DynamicListeners,
    Clusters(ResourceState),
    Routes(RouteConfigKind),
    Endpoints,
}

/// One resource list; each element is converted and dropped before the next is read.
struct ListSeed<'s, S> {
    sink: &'s mut S,
    path: String,
    kind: ListKind,
}

impl<'de, S: DumpSink<'de>> DeserializeSeed<'de> for ListSeed<'_, S> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, S: DumpSink<'de>> Visitor<'de> for ListSeed<'_, S> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of resources")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let ListSeed { sink, path, kind } = self;
        let mut i = 0usize;
        loop {
            let p = format!("{path}[{i}]");
            let more = match kind {
                // Listeners and clusters are taken as text first: read typed, then checked for
                // fields Envoy does not know.
                ListKind::Listeners(state) => match seq.next_element::<&'de RawValue>()? {
                    None => None,
                    Some(raw) => {
                        let w: ListenerWrapper<'de> = typed(raw)?;
                        sink.unknown_fields(
                            ObjectKind::Listener,
                            known::unknown_fields(raw.get(), &known::LISTENER_ENTRY, &p),
                        );
                        if let Some(l) = &w.listener {
                            sink.listener(&l.value, &format!("{p}.listener"), state);
                        }
                        Some(())
                    }
                },
                ListKind::DynamicListeners => match seq.next_element::<&'de RawValue>()? {
                    None => None,
                    Some(raw) => {
                        let d: DynamicListener<'de> = typed(raw)?;
                        sink.unknown_fields(
                            ObjectKind::Listener,
                            known::unknown_fields(raw.get(), &known::DYNAMIC_LISTENER, &p),
                        );
                        sink.dynamic_listener(&d, &p);
                        Some(())
                    }
                },
                ListKind::Clusters(state) => match seq.next_element::<&'de RawValue>()? {
                    None => None,
                    Some(raw) => {
                        cluster_entry(sink, typed(raw)?, raw, &p, state);
                        Some(())
                    }
                },
                ListKind::Routes(k) => seq.next_element::<RouteWrapper<'de>>()?.map(|w| {
                    match (w.route_config, w.unwrapped) {
                        (Some(r), _) => sink.route(r, &format!("{p}.route_config"), k),
                        (None, Some(r)) => sink.route(r, &p, k),
                        (None, None) => {}
                    }
                    if let Some(es) = &w.error_state {
                        sink.update_rejected(UpdateRejected {
                            object: ObjectKind::RouteConfiguration,
                            name: es.failed_name().or(w.name.as_ref()).map(|n| n.as_str()).unwrap_or(""),
                            path: &format!("{p}.error_state"),
                            details: es.details.as_ref(),
                            last_good: w.route_config.map(|_| format!("{p}.route_config")),
                        });
                    }
                }),
                ListKind::Endpoints => seq.next_element::<EndpointWrapper<'de>>()?.map(|w| {
                    if let Some(a) = &w.endpoint_config {
                        sink.load_assignment(&a.value, &format!("{p}.endpoint_config"));
                    }
                }),
            };
            if more.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }
}

/// One `*_clusters[]` entry: its fields Envoy does not know, the cluster, and a rejected update
/// (`error_state`) beside it.
fn cluster_entry<'de, S: DumpSink<'de>>(
    sink: &mut S,
    w: ClusterWrapper<'de>,
    raw: &'de RawValue,
    p: &str,
    state: ResourceState,
) {
    sink.unknown_fields(ObjectKind::Cluster, known::unknown_fields(raw.get(), &known::CLUSTER_ENTRY, p));
    if let Some(c) = &w.cluster {
        sink.cluster(&c.value, &format!("{p}.cluster"), state);
    }
    if let Some(es) = &w.error_state {
        let name = es.failed_name().or_else(|| w.cluster.as_ref()?.value.name.as_ref());
        sink.update_rejected(UpdateRejected {
            object: ObjectKind::Cluster,
            name: name.map(|n| n.as_str()).unwrap_or(""),
            path: &format!("{p}.error_state"),
            details: es.details.as_ref(),
            last_good: w.cluster.as_ref().map(|_| format!("{p}.cluster")),
        });
    }
}
