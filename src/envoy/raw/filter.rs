//! Network filters: `typed_config` with one-pass `@type` dispatch, `udpa.type.v1.TypedStruct` /
//! `xds.type.v3.TypedStruct`, and the untyped v1/v2 `config` Struct. The two filters meshpath
//! models (tcp_proxy, http_connection_manager) share one union struct, [`NetConfig`], since
//! their field names do not collide; the filter name / type URL decides how it is read.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::dump::RawRoute;
use super::{rest_of_map, CidrRange, Many, NamedTyped, Scalar, Str};

#[derive(Debug, Clone, Default, Deserialize)]
pub struct NetworkFilter<'a> {
    #[serde(borrow)]
    pub name: Option<Str<'a>>,
    #[serde(borrow, alias = "typedConfig")]
    pub typed_config: Option<FilterConfig<'a>>,
    #[serde(borrow)]
    pub config: Option<NetConfig<'a>>,
}

/// The decoded `typed_config` of a network filter.
#[derive(Debug, Clone)]
pub enum FilterConfig<'a> {
    /// A type meshpath models (`@type` = tcp_proxy or http_connection_manager, or a TypedStruct
    /// wrapping one): the type URL of the payload and its fields.
    Known {
        type_url: String,
        config: Box<NetConfig<'a>>,
    },
    /// Any other type, kept by name only.
    Other { type_url: String },
}

fn is_modelled(type_url: &str) -> bool {
    type_url.ends_with(".TcpProxy") || type_url.ends_with(".HttpConnectionManager")
}

fn is_typed_struct(type_url: &str) -> bool {
    type_url.ends_with("udpa.type.v1.TypedStruct") || type_url.ends_with("xds.type.v3.TypedStruct")
}

impl<'de: 'a, 'a> Deserialize<'de> for FilterConfig<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = FilterConfig<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a google.protobuf.Any object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let Some(first) = map.next_key::<Str<'de>>()? else {
                    return Ok(FilterConfig::Other {
                        type_url: String::new(),
                    });
                };
                if first.as_str() != "@type" {
                    return buffered(first, map);
                }
                let url = map.next_value::<Str<'de>>()?;
                let url = url.as_str();
                if is_modelled(url) {
                    let config = rest_of_map(None, map)?;
                    Ok(FilterConfig::Known {
                        type_url: url.to_string(),
                        config: Box::new(config),
                    })
                } else if is_typed_struct(url) {
                    let ts: TypedStruct<'a> = rest_of_map(None, map)?;
                    Ok(ts.into_config())
                } else {
                    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                    Ok(FilterConfig::Other {
                        type_url: url.to_string(),
                    })
                }
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

/// Fallback when `@type` is not the first key (hand-edited input): keep this object's entries
/// as raw text, find `@type`, then read the payload from those entries.
fn buffered<'de: 'a, 'a, A: MapAccess<'de>>(
    first: Str<'de>,
    mut map: A,
) -> Result<FilterConfig<'a>, A::Error> {
    let mut entries: Vec<(String, &'de RawValue)> =
        vec![(first.as_str().to_string(), map.next_value()?)];
    while let Some((k, v)) = map.next_entry::<String, &'de RawValue>()? {
        entries.push((k, v));
    }
    let url = entries
        .iter()
        .find(|(k, _)| k == "@type")
        .and_then(|(_, v)| serde_json::from_str::<String>(v.get()).ok())
        .unwrap_or_default();
    let rest = || {
        de::value::MapDeserializer::<_, serde_json::Error>::new(
            entries
                .iter()
                .filter(|(k, _)| k != "@type")
                .map(|(k, v)| (k.as_str(), *v)),
        )
    };
    if is_modelled(&url) {
        let config = NetConfig::deserialize(rest()).map_err(de::Error::custom)?;
        Ok(FilterConfig::Known {
            type_url: url,
            config: Box::new(config),
        })
    } else if is_typed_struct(&url) {
        let ts = TypedStruct::deserialize(rest()).map_err(de::Error::custom)?;
        Ok(ts.into_config())
    } else {
        Ok(FilterConfig::Other { type_url: url })
    }
}

/// `udpa.type.v1.TypedStruct`: `type_url` then `value` (a Struct in the payload's JSON form).
#[derive(Debug, Clone, Default)]
struct TypedStruct<'a> {
    type_url: String,
    value: Option<NetConfig<'a>>,
}

impl<'a> TypedStruct<'a> {
    fn into_config(self) -> FilterConfig<'a> {
        match self.value {
            Some(config) if is_modelled(&self.type_url) => FilterConfig::Known {
                type_url: self.type_url,
                config: Box::new(config),
            },
            _ => FilterConfig::Other {
                type_url: self.type_url,
            },
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for TypedStruct<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = TypedStruct<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a TypedStruct")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = TypedStruct::default();
                while let Some(key) = map.next_key::<Str<'de>>()? {
                    match key.as_str() {
                        "type_url" | "typeUrl" => {
                            out.type_url = map.next_value::<Str<'de>>()?.as_str().to_string()
                        }
                        // The payload is read only when its type is known to be modelled; a
                        // `value` before `type_url` is skipped (never seen in Envoy output).
                        "value" if is_modelled(&out.type_url) => {
                            out.value = Some(map.next_value::<NetConfig<'a>>()?)
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

/// Union of the `TcpProxy` and `HttpConnectionManager` fields meshpath reads.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NetConfig<'a> {
    #[serde(borrow, alias = "statPrefix")]
    pub stat_prefix: Option<Str<'a>>,
    // --- tcp_proxy
    #[serde(borrow)]
    pub cluster: Option<Str<'a>>,
    #[serde(borrow, alias = "weightedClusters")]
    pub weighted_clusters: Option<WeightedClusters<'a>>,
    /// TcpProxy v2 `deprecated_v1 {routes}`, or `true` in the v1 `{deprecated_v1, value}` form.
    #[serde(borrow, default, alias = "deprecatedV1")]
    pub deprecated_v1: TcpV1<'a>,
    /// Envoy v1 filter JSON: `{"deprecated_v1": true, "value": {...}}`.
    #[serde(borrow)]
    pub value: Option<V1Value<'a>>,
    // --- http_connection_manager
    #[serde(borrow)]
    pub rds: Option<Rds<'a>>,
    /// HCM inline route config.
    #[serde(borrow, alias = "routeConfig")]
    pub route_config: Option<RawRoute<'a>>,
    #[serde(alias = "scopedRoutes")]
    pub scoped_routes: Option<IgnoredAny>,
    #[serde(borrow, default, alias = "httpFilters")]
    pub http_filters: Many<NamedTyped<'a>>,
    #[serde(borrow, default, alias = "stripMatchingHostPort")]
    pub strip_matching_host_port: Scalar<'a>,
    #[serde(borrow, default, alias = "stripAnyHostPort")]
    pub strip_any_host_port: Scalar<'a>,
}

/// The v1 tcp_proxy payload: `{stat_prefix, route_config: {routes: [...]}}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct V1Value<'a> {
    #[serde(borrow, alias = "statPrefix")]
    pub stat_prefix: Option<Str<'a>>,
    #[serde(borrow, alias = "routeConfig")]
    pub route_config: Option<TcpV1<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct WeightedClusters<'a> {
    #[serde(borrow, default, deserialize_with = "crate::envoy::raw::nullable")]
    pub clusters: Vec<WeightedCluster<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct WeightedCluster<'a> {
    #[serde(borrow)]
    pub name: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub weight: Scalar<'a>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Rds<'a> {
    #[serde(borrow, alias = "routeConfigName")]
    pub route_config_name: Option<Str<'a>>,
}

/// Envoy v1 TCP proxy route table (first matching route wins).
#[derive(Debug, Clone, Default)]
pub struct TcpV1<'a> {
    pub routes: Vec<TcpV1Route<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for TcpV1<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Routes<'a> {
            #[serde(borrow, default)]
            routes: Vec<TcpV1Route<'a>>,
        }
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = TcpV1<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a boolean or a route table")
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(TcpV1::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let r: Routes<'a> =
                    Routes::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(TcpV1 { routes: r.routes })
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct TcpV1Route<'a> {
    #[serde(borrow)]
    pub cluster: Option<Str<'a>>,
    #[serde(
        borrow,
        default,
        deserialize_with = "crate::envoy::raw::nullable",
        alias = "destinationIpList"
    )]
    pub destination_ip_list: Vec<CidrOrText<'a>>,
    #[serde(borrow, alias = "destinationPorts")]
    pub destination_ports: Option<Str<'a>>,
    #[serde(
        borrow,
        default,
        deserialize_with = "crate::envoy::raw::nullable",
        alias = "sourceIpList"
    )]
    pub source_ip_list: Vec<CidrOrText<'a>>,
    #[serde(borrow, alias = "sourcePorts")]
    pub source_ports: Option<Str<'a>>,
}

/// A CIDR as `"10.0.0.0/8"` (v1) or as a `CidrRange` object (v2).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum CidrOrText<'a> {
    #[serde(borrow)]
    Text(Str<'a>),
    #[serde(borrow)]
    Range(CidrRange<'a>),
}
