//! Borrowed, typed subsets of the proto3-JSON Envoy emits (see `docs/envoy.md`;
//! strings are borrowed from the input where they can be). Only fields the model needs are declared; everything else is skipped
//! with `IgnoredAny`. Every multi-word field accepts its snake_case and lowerCamelCase spelling.
//! Scalars are lenient (numbers may be strings, wrappers may be `{"value": x}`); a scalar that
//! cannot be read is kept as [`Scalar::Malformed`] so conversion can report it with its path.

pub mod cluster;
pub mod dump;
pub mod filter;
pub mod known;
pub mod listener;
pub mod matcher;
pub mod stream;
pub mod transport;

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

/// A string that borrows from the input when it has no escapes (no copy for the common case).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Str<'a>(pub Cow<'a, str>);

impl<'a> Str<'a> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Byte offset of this string inside `input`, when it was borrowed from it.
    pub fn offset_in(&self, input: &[u8]) -> Option<usize> {
        match &self.0 {
            Cow::Borrowed(s) => {
                let start = input.as_ptr() as usize;
                let p = s.as_ptr() as usize;
                (p >= start && p <= start + input.len()).then(|| p - start)
            }
            Cow::Owned(_) => None,
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Str<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
            // YAML may type unquoted scalars; keep their text.
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_string())))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V(PhantomData))
    }
}

/// A lenient scalar: a number, a numeric string (proto3 int64), a bool, a `{"value": x}` wrapper
/// (gogo/Go encoding of wrapper types), or something unreadable.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Scalar<'a> {
    #[default]
    Absent,
    Int(i128),
    Float(f64),
    Bool(bool),
    Text(Str<'a>),
    /// What was found instead (e.g. "an object", "an array").
    Malformed(&'static str),
}

impl<'a> Scalar<'a> {
    pub fn as_u64(&self) -> Result<Option<u64>, String> {
        match self {
            Scalar::Absent => Ok(None),
            Scalar::Int(i) => u64::try_from(*i).map(Some).map_err(|_| format!("{i} is out of range")),
            Scalar::Float(f) if f.fract() == 0.0 && *f >= 0.0 => Ok(Some(*f as u64)),
            Scalar::Text(s) => s
                .as_str()
                .trim()
                .parse::<u64>()
                .map(Some)
                .map_err(|_| format!("{:?} is not an unsigned integer", s.as_str())),
            other => Err(format!("expected an unsigned integer, found {}", other.describe())),
        }
    }
    pub fn as_bool(&self) -> Result<Option<bool>, String> {
        match self {
            Scalar::Absent => Ok(None),
            Scalar::Bool(b) => Ok(Some(*b)),
            Scalar::Text(s) if s.as_str() == "true" => Ok(Some(true)),
            Scalar::Text(s) if s.as_str() == "false" => Ok(Some(false)),
            other => Err(format!("expected a boolean, found {}", other.describe())),
        }
    }
    fn describe(&self) -> String {
        match self {
            Scalar::Absent => "nothing".into(),
            Scalar::Int(i) => format!("{i}"),
            Scalar::Float(f) => format!("{f}"),
            Scalar::Bool(b) => format!("{b}"),
            Scalar::Text(s) => format!("{:?}", s.as_str()),
            Scalar::Malformed(what) => (*what).to_string(),
        }
    }
    pub fn text_offset(&self, input: &[u8]) -> Option<usize> {
        match self {
            Scalar::Text(s) => s.offset_in(input),
            _ => None,
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Scalar<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scalar")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Scalar::Int(v.into()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Scalar::Int(v.into()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Text(Str(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Scalar::Text(Str(Cow::Owned(v.to_string()))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Absent)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Absent)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                Scalar::deserialize(d)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Malformed("an array"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                // `{"value": x}` is how Go's encoding/json prints protobuf wrapper types.
                let mut found = Scalar::Malformed("an object");
                while let Some(key) = map.next_key::<Str<'de>>()? {
                    if key.as_str() == "value" {
                        found = map.next_value::<Scalar<'a>>()?;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                        found = Scalar::Malformed("an object");
                    }
                }
                Ok(found)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A map access that yields one already-consumed key before delegating, so a visitor that
/// peeked at the first key (to look for `@type`) can still hand the whole map to a derived type.
pub struct PrependKey<'de, A> {
    first: Option<Str<'de>>,
    inner: A,
}

impl<'de, A> PrependKey<'de, A> {
    pub fn new(first: Str<'de>, inner: A) -> Self {
        PrependKey { first: Some(first), inner }
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for PrependKey<'de, A> {
    type Error = A::Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        match self.first.take() {
            Some(Str(Cow::Borrowed(k))) => {
                seed.deserialize(de::value::BorrowedStrDeserializer::new(k)).map(Some)
            }
            Some(Str(Cow::Owned(k))) => seed.deserialize(de::value::StringDeserializer::new(k)).map(Some),
            None => self.inner.next_key_seed(seed),
        }
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.inner.next_value_seed(seed)
    }
}

/// Deserializes `T` from a map whose first key was already read.
pub fn rest_of_map<'de, T: Deserialize<'de>, A: MapAccess<'de>>(
    first: Option<Str<'de>>,
    map: A,
) -> Result<T, A::Error> {
    T::deserialize(de::value::MapAccessDeserializer::new(PrependKey { first, inner: map }))
}

/// A resource slot that may hold an `Any` (`{"@type": url, ...fields}`, v3) or the resource
/// inline (v2alpha). The slot determines the type, so `@type` is only recorded.
#[derive(Debug, Clone, Default)]
pub struct Resource<'a, T> {
    pub type_url: Option<Str<'a>>,
    pub value: T,
}

impl<'de: 'a, 'a, T: Deserialize<'de> + Default> Deserialize<'de> for Resource<'a, T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a, T>(PhantomData<(&'a (), T)>);
        impl<'de: 'a, 'a, T: Deserialize<'de> + Default> Visitor<'de> for V<'a, T> {
            type Value = Resource<'a, T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let Some(first) = map.next_key::<Str<'de>>()? else {
                    return Ok(Resource { type_url: None, value: T::default() });
                };
                if first.as_str() == "@type" {
                    let url = map.next_value::<Str<'de>>()?;
                    let value = rest_of_map(None, map)?;
                    Ok(Resource { type_url: Some(url), value })
                } else {
                    let value = rest_of_map(Some(first), map)?;
                    Ok(Resource { type_url: None, value })
                }
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

/// Only the `@type` of an `Any` (the rest is skipped).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TypeOnly<'a> {
    #[serde(rename = "@type", borrow)]
    pub type_url: Option<Str<'a>>,
}

/// `name` + `typed_config` (TypedExtensionConfig) when only the type matters.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NamedTyped<'a> {
    #[serde(borrow)]
    pub name: Option<Str<'a>>,
    #[serde(borrow, alias = "typedConfig")]
    pub typed_config: Option<TypeOnly<'a>>,
}

/// `metadata.filter_metadata.istio.config` (the Istio resource that produced an object).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Metadata<'a> {
    #[serde(borrow, alias = "filterMetadata")]
    pub filter_metadata: Option<FilterMetadata<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct FilterMetadata<'a> {
    #[serde(borrow)]
    pub istio: Option<IstioMetadata<'a>>,
    /// Labels a cluster's `transport_socket_matches` test (on endpoints and localities).
    #[serde(rename = "envoy.transport_socket_match", default)]
    pub transport_socket_match: Option<std::collections::BTreeMap<String, serde_json::Value>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct IstioMetadata<'a> {
    #[serde(borrow)]
    pub config: Option<Str<'a>>,
    /// On EDS endpoints: `name;namespace;canonical-name;revision;cluster`.
    #[serde(borrow, default)]
    pub workload: Option<Str<'a>>,
}

impl<'a> Metadata<'a> {
    pub fn istio_config(&self) -> Option<&str> {
        self.filter_metadata.as_ref()?.istio.as_ref()?.config.as_ref().map(|s| s.as_str())
    }
}

/// `config.core.v3.Address`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Address<'a> {
    #[serde(borrow, alias = "socketAddress")]
    pub socket_address: Option<SocketAddress<'a>>,
    #[serde(borrow)]
    pub pipe: Option<Pipe<'a>>,
    #[serde(borrow, alias = "envoyInternalAddress")]
    pub envoy_internal_address: Option<InternalAddress<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SocketAddress<'a> {
    #[serde(borrow)]
    pub address: Option<Str<'a>>,
    #[serde(borrow, default, alias = "portValue")]
    pub port_value: Scalar<'a>,
    #[serde(borrow, alias = "namedPort")]
    pub named_port: Option<Str<'a>>,
    #[serde(borrow, default, alias = "ipv4Compat")]
    pub ipv4_compat: Scalar<'a>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Pipe<'a> {
    #[serde(borrow)]
    pub path: Option<Str<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct InternalAddress<'a> {
    #[serde(borrow, alias = "serverListenerName")]
    pub server_listener_name: Option<Str<'a>>,
}

/// `config.core.v3.CidrRange`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CidrRange<'a> {
    #[serde(borrow, alias = "addressPrefix")]
    pub address_prefix: Option<Str<'a>>,
    #[serde(borrow, default, alias = "prefixLen")]
    pub prefix_len: Scalar<'a>,
}

/// A repeated field that an untyped Struct may hold as a single object (seen in Envoy 1.10-era
/// Istio dumps: `"http_filters": {"name": "envoy.router"}`).
#[derive(Debug, Clone)]
pub struct Many<T>(pub Vec<T>);

impl<T> Default for Many<T> {
    fn default() -> Self {
        Many(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Many<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Many<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list or a single object")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(x) = seq.next_element()? {
                    out.push(x);
                }
                Ok(Many(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                Ok(Many(vec![T::deserialize(de::value::MapAccessDeserializer::new(map))?]))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Many(Vec::new()))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// `null` reads as the default (Go's encoding/json prints empty repeated fields as `null`).
pub fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}
