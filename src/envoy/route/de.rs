//! Proto3-JSON leniencies shared by the route model's `Deserialize` impls.
//!
//! Envoy prints 64-bit integers as strings, durations as `"1.5s"`, enums by name, and hand
//! written YAML uses `{seconds: 30}` for durations and numbers for enums. Every helper here
//! accepts all of those so the same structs read admin dumps, `router_check_tool` inputs and
//! hand-written YAML with serde_json and serde-saphyr alike.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

/// An unsigned integer written as a number or as a decimal string.
pub(crate) fn u64_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = u64;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an unsigned integer or a string holding one")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::custom(format!("negative value {v}")))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
            if v >= 0.0 && v.fract() == 0.0 && v <= u64::MAX as f64 {
                Ok(v as u64)
            } else {
                Err(E::custom(format!("not an unsigned integer: {v}")))
            }
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
            v.trim().parse().map_err(|_| E::custom(format!("not an unsigned integer: {v:?}")))
        }
        // Wrapper types written in proto-text style: `{ value: 3 }`.
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<u64, A::Error> {
            let mut out = None;
            while let Some(key) = map.next_key::<String>()? {
                if key == "value" {
                    out = Some(map.next_value_seed(SeedU64)?);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            out.ok_or_else(|| de::Error::missing_field("value"))
        }
    }
    d.deserialize_any(V)
}

struct SeedU64;
impl<'de> de::DeserializeSeed<'de> for SeedU64 {
    type Value = u64;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        u64_lenient(d)
    }
}

/// A signed integer written as a number or as a decimal string.
pub(crate) fn i64_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = i64;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an integer or a string holding one")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::custom(format!("integer too large: {v}")))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
            if v.fract() == 0.0 && v.abs() <= i64::MAX as f64 {
                Ok(v as i64)
            } else {
                Err(E::custom(format!("not an integer: {v}")))
            }
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
            v.trim().parse().map_err(|_| E::custom(format!("not an integer: {v:?}")))
        }
    }
    d.deserialize_any(V)
}

/// `u32` via [`u64_lenient`], range-checked.
pub(crate) fn u32_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v = u64_lenient(d)?;
    u32::try_from(v).map_err(|_| de::Error::custom(format!("value {v} does not fit in 32 bits")))
}

/// `Option<u32>` via [`u32_lenient`] (for wrapper fields that may be absent or null).
pub(crate) fn opt_u32_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    u32_lenient(d).map(Some)
}

/// A `google.protobuf.Duration`: `"1.5s"`, `"30s"`, `{seconds, nanos}` or a bare number of
/// seconds. Returned as nanoseconds.
pub(crate) fn duration_nanos<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a duration such as \"1.5s\" or {seconds, nanos}")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            v.checked_mul(1_000_000_000).map(Some).ok_or_else(|| E::custom("duration too large"))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            let v = u64::try_from(v).map_err(|_| E::custom("negative duration"))?;
            self.visit_u64(v)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            if (0.0..1e10).contains(&v) {
                Ok(Some((v * 1e9).round() as u64))
            } else {
                Err(E::custom(format!("bad duration {v}")))
            }
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            parse_duration(v).map(Some).map_err(E::custom)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut seconds: i64 = 0;
            let mut nanos: i64 = 0;
            while let Some(key) = map.next_key::<String>()? {
                match key.as_str() {
                    "seconds" => seconds = map.next_value_seed(SeedI64)?,
                    "nanos" => nanos = map.next_value_seed(SeedI64)?,
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            if seconds < 0 || nanos < 0 {
                return Err(de::Error::custom("negative duration"));
            }
            let total = (seconds as u64)
                .checked_mul(1_000_000_000)
                .and_then(|s| s.checked_add(nanos as u64))
                .ok_or_else(|| de::Error::custom("duration too large"))?;
            Ok(Some(total))
        }
    }
    d.deserialize_any(V)
}

struct SeedI64;
impl<'de> de::DeserializeSeed<'de> for SeedI64 {
    type Value = i64;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<i64, D::Error> {
        i64_lenient(d)
    }
}

/// Parses proto3-JSON duration text (`"30s"`, `"0.250s"`) into nanoseconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let body = t.strip_suffix('s').ok_or_else(|| format!("duration {text:?} must end in 's'"))?;
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let secs: u64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| format!("bad duration seconds in {text:?}"))?
    };
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad duration fraction in {text:?}"));
    }
    let mut nanos: u64 = 0;
    for (i, b) in frac.bytes().enumerate() {
        nanos += u64::from(b - b'0') * 10u64.pow(8 - i as u32);
    }
    secs.checked_mul(1_000_000_000)
        .and_then(|s| s.checked_add(nanos))
        .ok_or_else(|| format!("duration {text:?} too large"))
}

/// Formats nanoseconds the way proto3 JSON prints a Duration (`"30s"`, `"0.250s"`).
pub fn format_duration(nanos: u64) -> String {
    let secs = nanos / 1_000_000_000;
    let frac = nanos % 1_000_000_000;
    if frac == 0 {
        format!("{secs}s")
    } else if frac.is_multiple_of(1_000_000) {
        format!("{secs}.{:03}s", frac / 1_000_000)
    } else if frac.is_multiple_of(1_000) {
        format!("{secs}.{:06}s", frac / 1_000)
    } else {
        format!("{secs}.{frac:09}s")
    }
}

/// A proto enum written by name or by number. `names` lists the names in number order.
pub(crate) fn enum_index<'de, D: Deserializer<'de>>(
    d: D,
    what: &'static str,
    names: &'static [&'static str],
) -> Result<usize, D::Error> {
    struct V {
        what: &'static str,
        names: &'static [&'static str],
    }
    impl<'de> Visitor<'de> for V {
        type Value = usize;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "a {} name ({})", self.what, self.names.join(", "))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<usize, E> {
            usize::try_from(v)
                .ok()
                .filter(|i| *i < self.names.len())
                .ok_or_else(|| E::custom(format!("unknown {} number {v}", self.what)))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<usize, E> {
            let v = u64::try_from(v).map_err(|_| E::custom(format!("bad {} {v}", self.what)))?;
            self.visit_u64(v)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<usize, E> {
            self.names.iter().position(|n| n.eq_ignore_ascii_case(v)).ok_or_else(|| {
                E::custom(format!("unknown {} {v:?} (expected one of {})", self.what, self.names.join(", ")))
            })
        }
    }
    d.deserialize_any(V { what, names })
}

/// A bool that may also be written as `"true"`/`"false"` or as a `{value: ...}` wrapper.
pub(crate) fn bool_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a boolean")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
            match v {
                "true" | "True" | "TRUE" => Ok(true),
                "false" | "False" | "FALSE" => Ok(false),
                _ => Err(E::custom(format!("not a boolean: {v:?}"))),
            }
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
            let mut out = None;
            while let Some(key) = map.next_key::<String>()? {
                if key == "value" {
                    out = Some(map.next_value::<bool>()?);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            out.ok_or_else(|| de::Error::missing_field("value"))
        }
    }
    d.deserialize_any(V)
}

/// `Option<bool>` for BoolValue wrappers.
pub(crate) fn opt_bool_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    bool_lenient(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip() {
        assert_eq!(parse_duration("30s"), Ok(30_000_000_000));
        assert_eq!(parse_duration("0.250s"), Ok(250_000_000));
        assert_eq!(format_duration(250_000_000), "0.250s");
        assert_eq!(format_duration(120_000_000_000), "120s");
        assert!(parse_duration("30").is_err());
    }
}
