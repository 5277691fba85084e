//! Fields Envoy does not know, inside the messages meshpath models. Envoy reads a resource
//! against its proto and refuses it when a field is not in the message (the JSON loader:
//! envoy source/common/protobuf/utility.cc `MessageUtil::loadFromJson`; xDS:
//! `MessageUtil::checkForUnexpectedFields`), so a misspelt or misplaced field is a rejected
//! resource, not an ignored one. The typed readers ([`super::listener`], [`super::cluster`])
//! skip what they do not need; this pass walks the same text against the field lists of
//! the covered messages and reports every other key with its JSON path.
//!
//! Covered (field lists of api/envoy/config/listener/v3/listener.proto,
//! listener_components.proto, api/envoy/config/core/v3/address.proto, with the v2 fields
//! older dumps print): `Listener`, `Listener.AdditionalAddress`, `FilterChain`,
//! `FilterChainMatch`, `ListenerFilter`, `Address`, `SocketAddress`, `BindConfig`
//! (a cluster's `upstream_bind_config`). Other messages are not checked.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// How a field's value is checked.
#[derive(Clone, Copy)]
pub enum Field {
    /// Not checked (a scalar, or a message meshpath does not cover).
    Any,
    Msg(&'static Message),
    Repeated(&'static Message),
}

/// A message: its proto name and fields (snake_case). `open`: only the listed fields are
/// checked, other keys are not reported (a message meshpath covers only partly).
pub struct Message {
    pub name: &'static str,
    pub fields: &'static [(&'static str, Field)],
    pub open: bool,
}

use Field::{Any, Msg, Repeated};

pub static SOCKET_ADDRESS: Message = Message {
    name: "envoy.config.core.v3.SocketAddress",
    fields: &[
        ("protocol", Any),
        ("address", Any),
        ("port_value", Any),
        ("named_port", Any),
        ("resolver_name", Any),
        ("ipv4_compat", Any),
        ("network_namespace_filepath", Any),
    ],
    open: false,
};

pub static ADDRESS: Message = Message {
    name: "envoy.config.core.v3.Address",
    fields: &[("socket_address", Msg(&SOCKET_ADDRESS)), ("pipe", Any), ("envoy_internal_address", Any)],
    open: false,
};

pub static ADDITIONAL_ADDRESS: Message = Message {
    name: "envoy.config.listener.v3.AdditionalAddress",
    fields: &[("address", Msg(&ADDRESS)), ("socket_options", Any)],
    open: false,
};

pub static FILTER_CHAIN_MATCH: Message = Message {
    name: "envoy.config.listener.v3.FilterChainMatch",
    fields: &[
        ("destination_port", Any),
        ("prefix_ranges", Any),
        ("address_suffix", Any),
        ("suffix_len", Any),
        ("direct_source_prefix_ranges", Any),
        ("source_type", Any),
        ("source_prefix_ranges", Any),
        ("source_ports", Any),
        ("server_names", Any),
        ("transport_protocol", Any),
        ("application_protocols", Any),
        // v2 before server_names (Envoy 1.7).
        ("sni_domains", Any),
    ],
    open: false,
};

pub static FILTER_CHAIN: Message = Message {
    name: "envoy.config.listener.v3.FilterChain",
    fields: &[
        ("filter_chain_match", Msg(&FILTER_CHAIN_MATCH)),
        ("filters", Any),
        ("use_proxy_proto", Any),
        ("metadata", Any),
        ("transport_socket", Any),
        ("transport_socket_connect_timeout", Any),
        ("name", Any),
        ("on_demand_configuration", Any),
        // v2
        ("tls_context", Any),
    ],
    open: false,
};

pub static LISTENER_FILTER: Message = Message {
    name: "envoy.config.listener.v3.ListenerFilter",
    fields: &[
        ("name", Any),
        ("typed_config", Any),
        ("config_discovery", Any),
        ("filter_disabled", Any),
        // v2
        ("config", Any),
    ],
    open: false,
};

pub static LISTENER: Message = Message {
    name: "envoy.config.listener.v3.Listener",
    fields: &[
        ("name", Any),
        ("address", Msg(&ADDRESS)),
        ("additional_addresses", Repeated(&ADDITIONAL_ADDRESS)),
        ("stat_prefix", Any),
        ("filter_chains", Repeated(&FILTER_CHAIN)),
        ("filter_chain_matcher", Any),
        ("use_original_dst", Any),
        ("default_filter_chain", Msg(&FILTER_CHAIN)),
        ("per_connection_buffer_limit_bytes", Any),
        ("metadata", Any),
        ("deprecated_v1", Any),
        ("drain_type", Any),
        ("listener_filters", Repeated(&LISTENER_FILTER)),
        ("listener_filters_timeout", Any),
        ("continue_on_listener_filters_timeout", Any),
        ("transparent", Any),
        ("freebind", Any),
        ("socket_options", Any),
        ("tcp_fast_open_queue_length", Any),
        ("traffic_direction", Any),
        ("udp_listener_config", Any),
        ("api_listener", Any),
        ("connection_balance_config", Any),
        ("reuse_port", Any),
        ("enable_reuse_port", Any),
        ("access_log", Any),
        ("tcp_backlog_size", Any),
        ("max_connections_to_accept_per_socket_event", Any),
        ("bind_to_port", Any),
        ("internal_listener", Any),
        ("enable_mptcp", Any),
        ("ignore_global_conn_limit", Any),
        ("bypass_overload_manager", Any),
        ("fcds_config", Any),
        ("listener_specifier", Any),
        // v2
        ("udp_writer_config", Any),
    ],
    open: false,
};

pub static BIND_CONFIG: Message = Message {
    name: "envoy.config.core.v3.BindConfig",
    fields: &[
        ("source_address", Msg(&SOCKET_ADDRESS)),
        ("freebind", Any),
        ("socket_options", Any),
        ("extra_source_addresses", Any),
        ("additional_source_addresses", Any),
        ("local_address_selector", Any),
    ],
    open: false,
};

/// Only `upstream_bind_config` of a cluster is checked.
pub static CLUSTER: Message = Message {
    name: "envoy.config.cluster.v3.Cluster",
    fields: &[("upstream_bind_config", Msg(&BIND_CONFIG))],
    open: true,
};

/// `static_listeners[]` / `active_state` ... entries: `{listener, version_info, last_updated}`.
pub static LISTENER_ENTRY: Message = Message {
    name: "envoy.admin.v3.ListenersConfigDump.StaticListener",
    fields: &[("listener", Msg(&LISTENER))],
    open: true,
};

/// `dynamic_listeners[]`: the states Envoy serves or will serve (a rejected update's own
/// fields are not checked: Envoy already refused it).
pub static DYNAMIC_LISTENER: Message = Message {
    name: "envoy.admin.v3.ListenersConfigDump.DynamicListener",
    fields: &[
        ("active_state", Msg(&LISTENER_ENTRY)),
        ("warming_state", Msg(&LISTENER_ENTRY)),
        ("draining_state", Msg(&LISTENER_ENTRY)),
    ],
    open: true,
};

/// `static_clusters[]` / `dynamic_active_clusters[]` ... entries.
pub static CLUSTER_ENTRY: Message = Message {
    name: "envoy.admin.v3.ClustersConfigDump.StaticCluster",
    fields: &[("cluster", Msg(&CLUSTER))],
    open: true,
};

/// A field that is not in its message: its JSON path and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownField {
    pub path: String,
    /// The key as written.
    pub field: String,
    pub message: &'static str,
}

/// `lowerCamelCase` → `snake_case` (proto3 JSON accepts both spellings).
fn snake(key: &str) -> std::borrow::Cow<'_, str> {
    if !key.bytes().any(|b| b.is_ascii_uppercase()) {
        return key.into();
    }
    let mut s = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            s.push('_');
            s.push(c.to_ascii_lowercase());
        } else {
            s.push(c);
        }
    }
    s.into()
}

/// Walks the JSON text of one `msg` (at `path`) and returns the keys it does not have.
pub fn unknown_fields(text: &str, msg: &'static Message, path: &str) -> Vec<UnknownField> {
    let mut out = Vec::new();
    let mut de = serde_json::Deserializer::from_str(text);
    // A text that does not parse was already reported by the typed reader.
    let _ = Check { msg, path: path.to_string(), out: &mut out }.deserialize(&mut de);
    out
}

struct Check<'o> {
    msg: &'static Message,
    path: String,
    out: &'o mut Vec<UnknownField>,
}

impl<'de> DeserializeSeed<'de> for Check<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Check<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a message")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let k = snake(&key);
            // `@type` of an Any-wrapped resource; deprecated fields Envoy 1.17-1.18 printed
            // under their hidden names; keys with a capital first letter are Go's encoding of
            // a proto struct (oneof wrappers `Address`, `ConfigType`, `XXX_*`) in debug
            // output Envoy never read, where no proto3 JSON name starts so.
            let field = self.msg.fields.iter().find(|(n, _)| *n == k).map(|(_, f)| *f);
            let path = format!("{}.{k}", self.path);
            match field {
                Some(Msg(m)) => map.next_value_seed(Check { msg: m, path, out: &mut *self.out })?,
                Some(Repeated(m)) => map.next_value_seed(Each { msg: m, path, out: &mut *self.out })?,
                Some(Any) => {
                    map.next_value::<IgnoredAny>()?;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                    let go_name = key.starts_with(|c: char| c.is_ascii_uppercase());
                    if !(self.msg.open
                        || go_name
                        || key == "@type"
                        || k.starts_with("hidden_envoy_deprecated_"))
                    {
                        self.out.push(UnknownField { path, field: key.to_string(), message: self.msg.name });
                    }
                }
            }
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
}

/// A repeated message field (a single object is read as one element, as [`super::Many`]).
struct Each<'o> {
    msg: &'static Message,
    path: String,
    out: &'o mut Vec<UnknownField>,
}

impl<'de> DeserializeSeed<'de> for Each<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Each<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of messages")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        loop {
            let path = format!("{}[{i}]", self.path);
            if seq.next_element_seed(Check { msg: self.msg, path, out: &mut *self.out })?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        Check { msg: self.msg, path: self.path, out: self.out }.visit_map(map)
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// address.proto: `BindConfig.source_address` is a `SocketAddress`; a `socket_address`
    /// key inside it is not one of SocketAddress's fields.
    #[test]
    fn socket_address_wrapper_in_bind_config_is_unknown() {
        let c = r#"{"name": "c", "type": "STATIC", "upstreamBindConfig": {"source_address": {"socket_address": {"address": "127.0.0.6", "port_value": 0}}}}"#;
        let found = unknown_fields(c, &CLUSTER, "cluster");
        assert_eq!(
            found,
            vec![UnknownField {
                path: "cluster.upstream_bind_config.source_address.socket_address".into(),
                field: "socket_address".into(),
                message: "envoy.config.core.v3.SocketAddress",
            }]
        );
        let ok = r#"{"name": "c", "upstream_bind_config": {"source_address": {"address": "127.0.0.6", "port_value": 0}}}"#;
        assert!(unknown_fields(ok, &CLUSTER, "cluster").is_empty());
    }

    /// listener.proto / listener_components.proto field names, both JSON spellings.
    #[test]
    fn listener_fields_are_checked_down_to_socket_address() {
        let l = r#"{"@type": "x", "name": "l", "address": {"socketAddress": {"address": "0.0.0.0", "portValue": 80, "port": 1}},
            "filterChains": [{"filterChainMatch": {"destinationPort": 80, "serverName": "a"}}, {"filters": []}],
            "listener_filters": [{"name": "f", "typo": 1}], "hidden_envoy_deprecated_use_original_dst": true, "colour": "red"}"#;
        let found: Vec<String> = unknown_fields(l, &LISTENER, "l").into_iter().map(|u| u.path).collect();
        assert_eq!(
            found,
            [
                "l.address.socket_address.port",
                "l.filter_chains[0].filter_chain_match.server_name",
                "l.listener_filters[0].typo",
                "l.colour"
            ]
        );
    }
}
