//! Metadata: `google.protobuf.Struct` values, `filter_metadata` (including Istio's
//! `istio.config`), and the `dynamic_metadata` route matcher.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::de::bool_lenient;
use super::matchers::StringMatcher;

/// A `google.protobuf.Value` in metadata (route metadata, dynamic metadata).
#[derive(Debug, Clone, PartialEq)]
pub enum StructValue {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    List(Vec<StructValue>),
    Struct(BTreeMap<String, StructValue>),
}

impl StructValue {
    /// The string if this is a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            StructValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// A struct field.
    pub fn get(&self, key: &str) -> Option<&StructValue> {
        match self {
            StructValue::Struct(m) => m.get(key),
            _ => None,
        }
    }

    /// `StructUtil::update`: fields of `other` replace (structs merge recursively).
    pub fn merge(&mut self, other: &StructValue) {
        match (self, other) {
            (StructValue::Struct(mine), StructValue::Struct(theirs)) => {
                for (k, v) in theirs {
                    match mine.get_mut(k) {
                        Some(existing @ StructValue::Struct(_)) if matches!(v, StructValue::Struct(_)) => {
                            existing.merge(v)
                        }
                        _ => {
                            mine.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
            (me, other) => *me = other.clone(),
        }
    }
}

impl<'de> Deserialize<'de> for StructValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StructValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a metadata value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<StructValue, E> {
                Ok(StructValue::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<StructValue, E> {
                Ok(StructValue::Null)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<StructValue, E> {
                Ok(StructValue::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<StructValue, E> {
                Ok(StructValue::Number(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<StructValue, E> {
                Ok(StructValue::Number(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<StructValue, E> {
                Ok(StructValue::Number(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StructValue, E> {
                Ok(StructValue::String(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StructValue, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element()? {
                    out.push(v);
                }
                Ok(StructValue::List(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StructValue, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = map.next_entry::<String, StructValue>()? {
                    out.insert(k, v);
                }
                Ok(StructValue::Struct(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// `envoy.config.core.v3.Metadata`: `filter_metadata` by namespace.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Metadata {
    #[serde(default, alias = "filterMetadata")]
    pub filter_metadata: BTreeMap<String, StructValue>,
}

impl Metadata {
    /// Istio's `filter_metadata.istio.config` (the Istio resource that produced the object).
    pub fn istio_config(&self) -> Option<&str> {
        self.filter_metadata.get("istio").and_then(|v| v.get("config")).and_then(StructValue::as_str)
    }
}

/// `envoy.type.matcher.v3.MetadataMatcher` (route `match.dynamic_metadata`).
#[derive(Debug, Clone, Deserialize)]
pub struct MetadataMatcher {
    pub filter: String,
    #[serde(default)]
    pub path: Vec<MetadataPathSegment>,
    pub value: ValueMatcher,
    #[serde(default, deserialize_with = "bool_lenient")]
    pub invert: bool,
}

/// One `path[].key` step of a [`MetadataMatcher`].
#[derive(Debug, Clone, Deserialize)]
pub struct MetadataPathSegment {
    pub key: String,
}

/// `envoy.type.matcher.v3.ValueMatcher` (the supported subset).
#[derive(Debug, Clone, Deserialize)]
pub struct ValueMatcher {
    #[serde(default, alias = "stringMatch")]
    pub string_match: Option<StringMatcher>,
    #[serde(default, alias = "boolMatch", deserialize_with = "super::de::opt_bool_lenient")]
    pub bool_match: Option<bool>,
    #[serde(default, alias = "presentMatch", deserialize_with = "super::de::opt_bool_lenient")]
    pub present_match: Option<bool>,
    #[serde(default, alias = "nullMatch")]
    pub null_match: Option<StructValue>,
}

impl MetadataMatcher {
    /// Looks the path up in `dynamic` (namespace → struct) and applies the value matcher.
    pub fn matches(&self, dynamic: &BTreeMap<String, StructValue>) -> bool {
        let mut cur = dynamic.get(&self.filter);
        for seg in &self.path {
            cur = cur.and_then(|v| v.get(&seg.key));
        }
        let m = &self.value;
        let hit = if let Some(sm) = &m.string_match {
            cur.and_then(StructValue::as_str).is_some_and(|s| sm.matches(s))
        } else if let Some(b) = m.bool_match {
            cur == Some(&StructValue::Bool(b))
        } else if let Some(p) = m.present_match {
            p && cur.is_some()
        } else if m.null_match.is_some() {
            matches!(cur, Some(StructValue::Null))
        } else {
            false
        };
        hit != self.invert
    }
}
