//! The scenario file as written (docs/scenarios.md, `meshpath.scenario/v1`): serde types with
//! unknown keys refused, and source locations on the values later checks point at.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::Spanned;

/// The only schema identifier so far.
pub const SCHEMA: &str = "meshpath.scenario/v1";

/// The top-level keys a scenario file may hold (kept in step with [`ScenarioFile`]; the JSON
/// Schema in docs/scenario.schema.json lists the same).
pub const TOP_LEVEL_KEYS: &[&str] = &["schema", "name", "description", "pods", "names", "probes"];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub schema: Spanned<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub pods: Spanned<Ordered<PodSpec>>,
    #[serde(default)]
    pub names: Ordered<Vec<Spanned<String>>>,
    pub probes: Spanned<Vec<ProbeSpec>>,
}

/// One pod of the snapshot.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodSpec {
    pub addresses: Vec<Spanned<String>>,
    #[serde(default)]
    pub iptables: Option<Spanned<String>>,
    #[serde(default)]
    pub ip6tables: Option<Spanned<String>>,
    #[serde(default)]
    pub envoy: Option<Spanned<String>>,
    #[serde(default)]
    pub listen: Vec<Spanned<String>>,
    #[serde(default)]
    pub sockets: Option<Spanned<String>>,
    /// `ip rule show` output (replaces the kernel's default rules and Istio's assumed ones).
    #[serde(default)]
    pub ip_rules: Option<Spanned<String>>,
    /// `ip route show table all` output (replaces the kernel's routes and Istio's assumed ones).
    #[serde(default)]
    pub ip_routes: Option<Spanned<String>>,
    /// The uid and gid the proxy runs as (else from the sockets, the rules, Istio's default).
    #[serde(default)]
    pub proxy_uid: Option<u32>,
    #[serde(default)]
    pub proxy_gid: Option<u32>,
    /// The pod's `/etc/resolv.conf` (pilot-agent's upstream nameservers).
    #[serde(default)]
    pub resolv_conf: Option<Spanned<String>>,
    /// Processes that forward DNS: `LISTEN=UPSTREAM` each.
    #[serde(default)]
    pub forwarders: Vec<Spanned<String>>,
    /// The neighbour table, `ip neigh show` output.
    #[serde(default)]
    pub neigh: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    #[serde(default)]
    pub sni: Option<String>,
    #[serde(default)]
    pub alpn: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub headers: Ordered<String>,
}

/// A DNS query the probe sends (over `protocol: udp` or tcp to port 53).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSpec {
    /// The question's name.
    pub query: Spanned<String>,
}

/// One connection to walk, and what must happen to it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeSpec {
    pub name: Spanned<String>,
    pub from: Spanned<String>,
    #[serde(default)]
    pub sender: Option<Spanned<String>>,
    pub to: Spanned<String>,
    #[serde(default)]
    pub protocol: Option<Protocol>,
    /// The ICMP message of an `icmp`/`icmpv6` probe (`echo-request` by default).
    #[serde(default)]
    pub icmp_type: Option<Spanned<String>>,
    #[serde(default)]
    pub src: Option<Spanned<String>>,
    #[serde(default)]
    pub tls: Option<TlsSpec>,
    #[serde(default)]
    pub http: Option<HttpSpec>,
    #[serde(default)]
    pub dns: Option<DnsSpec>,
    /// The client sends nothing until the server speaks (a server-first protocol).
    #[serde(default)]
    pub server_first: Option<Spanned<bool>>,
    #[serde(default)]
    pub pick: Option<Spanned<String>>,
    #[serde(default)]
    pub expect: Option<Spanned<Expect>>,
}

/// The kinds of ending (`engine::Ending::kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndingKind {
    Delivered,
    Refused,
    Dropped,
    EnvoyResponse,
    Blackhole,
    Left,
    Unresolved,
    Loop,
    Undetermined,
    RejectedConfig,
    Stalled,
}

impl EndingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EndingKind::Delivered => "delivered",
            EndingKind::Refused => "refused",
            EndingKind::Dropped => "dropped",
            EndingKind::EnvoyResponse => "envoy_response",
            EndingKind::Blackhole => "blackhole",
            EndingKind::Left => "left",
            EndingKind::Unresolved => "unresolved",
            EndingKind::Loop => "loop",
            EndingKind::Undetermined => "undetermined",
            EndingKind::RejectedConfig => "rejected_config",
            EndingKind::Stalled => "stalled",
        }
    }
}

/// Expectations on a trace (top level: every path) or on one path (`paths` items, which may
/// also give `weight` but not `paths`). An absent field is not compared.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    #[serde(default)]
    pub ending: Option<EndingKind>,
    #[serde(default)]
    pub pod: Option<String>,
    #[serde(default)]
    pub socket: Option<String>,
    #[serde(default)]
    pub process: Option<String>,
    #[serde(default)]
    pub dst: Option<String>,
    #[serde(default)]
    pub cluster: Option<String>,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub flag: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub closed_by: Option<Vec<String>>,
    #[serde(default)]
    pub envoy: Option<Vec<HopExpect>>,
    #[serde(default)]
    pub weight: Option<Spanned<f64>>,
    #[serde(default)]
    pub paths: Option<Spanned<Vec<Expect>>>,
}

/// Expectations on one Envoy hop; only the fields given are compared.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HopExpect {
    #[serde(default)]
    pub pod: Option<String>,
    #[serde(default)]
    pub listener: Option<String>,
    #[serde(default)]
    pub filter_chain: Option<String>,
    #[serde(default)]
    pub route_config: Option<String>,
    #[serde(default)]
    pub virtual_host: Option<String>,
    #[serde(default)]
    pub route: Option<String>,
    #[serde(default)]
    pub cluster: Option<String>,
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub source_address: Option<String>,
}

/// A YAML mapping in the order written (pods are indexed by position; names and headers keep
/// the author's order). Duplicate keys are refused by the YAML reader.
#[derive(Debug, Clone, PartialEq)]
pub struct Ordered<V>(pub Vec<(Spanned<String>, V)>);

impl<V> Default for Ordered<V> {
    fn default() -> Self {
        Ordered(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V2<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for V2<V> {
            type Value = Ordered<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<Spanned<String>, V>()? {
                    out.push((k, v));
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V2(PhantomData))
    }
}

impl<V> Ordered<V> {
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.value.as_str())
    }

    pub fn sorted(&self) -> BTreeMap<&str, &V> {
        self.0.iter().map(|(k, v)| (k.value.as_str(), v)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA_JSON: &str = include_str!("../../docs/scenario.schema.json");

    /// The keys a type accepts, from the reader's own "unknown field" message.
    fn accepted<T: for<'de> Deserialize<'de> + fmt::Debug>() -> Vec<String> {
        let err =
            serde_saphyr::from_str::<T>("not_a_key_of_this_type: 1\n").expect_err("unknown key refused");
        let msg = err.to_string();
        let list = msg.split("expected one of ").nth(1).unwrap_or("").lines().next().unwrap_or("");
        let mut keys: Vec<String> = list
            .split(',')
            .map(|k| k.trim().trim_matches('`').to_string())
            .filter(|k| !k.is_empty())
            .collect();
        keys.sort();
        keys
    }

    fn schema_keys(v: &serde_json::Value) -> Vec<String> {
        let mut keys: Vec<String> =
            v["properties"].as_object().expect("properties").keys().cloned().collect();
        keys.sort();
        keys
    }

    #[test]
    fn json_schema_lists_what_the_types_accept() {
        let schema: serde_json::Value = serde_json::from_str(SCHEMA_JSON).expect("valid JSON");
        assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
        assert_eq!(schema["properties"]["schema"]["const"], SCHEMA);
        let mut top: Vec<String> = TOP_LEVEL_KEYS.iter().map(|s| s.to_string()).collect();
        top.sort();
        assert_eq!(schema_keys(&schema), top);
        assert_eq!(accepted::<ScenarioFile>(), top);
        let defs = &schema["$defs"];
        assert_eq!(schema_keys(&defs["pod"]), accepted::<PodSpec>());
        assert_eq!(schema_keys(&defs["probe"]), accepted::<ProbeSpec>());
        assert_eq!(schema_keys(&defs["hop"]), accepted::<HopExpect>());
        let mut expect = schema_keys(&defs["expect"]);
        expect.push("weight".into());
        expect.sort();
        assert_eq!(expect, accepted::<Expect>());
        let mut path = schema_keys(&defs["pathExpect"]);
        path.push("paths".into());
        path.sort();
        assert_eq!(path, accepted::<Expect>());
    }

    #[test]
    fn duplicate_pod_names_are_refused() {
        let doc = "schema: meshpath.scenario/v1\npods:\n  a: {addresses: [10.0.0.1]}\n  a: {addresses: [10.0.0.2]}\nprobes: []\n";
        assert!(serde_saphyr::from_str::<ScenarioFile>(doc).is_err());
    }

    #[test]
    fn pods_keep_their_order() {
        let doc = "schema: meshpath.scenario/v1\npods:\n  z: {addresses: [10.0.0.1]}\n  a: {addresses: [10.0.0.2]}\nprobes: []\n";
        let f = serde_saphyr::from_str::<ScenarioFile>(doc).expect("reads");
        assert_eq!(f.pods.value.keys().collect::<Vec<_>>(), ["z", "a"]);
        assert_eq!(f.pods.value.0[1].0.referenced.line(), 4);
    }
}
