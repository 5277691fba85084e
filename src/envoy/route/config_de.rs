//! `Deserialize` for [`RouteConfig`]: reads the fields, then assigns index paths and checks
//! what Envoy checks when it loads a route table (unique domains, one `*`).

use serde::de::{self, Deserializer, IgnoredAny};
use serde::Deserialize;

use super::config::{RouteConfig, VirtualHost};
use super::de::bool_lenient;
use super::headers::HeaderValueOption;

#[derive(Deserialize)]
struct RawRouteConfig {
    #[serde(default)]
    name: String,
    #[serde(default, alias = "virtualHosts")]
    virtual_hosts: Vec<VirtualHost>,
    #[serde(default, alias = "internalOnlyHeaders")]
    internal_only_headers: Vec<String>,
    #[serde(default, alias = "requestHeadersToAdd")]
    request_headers_to_add: Vec<HeaderValueOption>,
    #[serde(default, alias = "requestHeadersToRemove")]
    request_headers_to_remove: Vec<String>,
    #[serde(default, alias = "responseHeadersToAdd")]
    response_headers_to_add: Vec<HeaderValueOption>,
    #[serde(default, alias = "responseHeadersToRemove")]
    response_headers_to_remove: Vec<String>,
    #[serde(default, alias = "ignorePortInHostMatching", deserialize_with = "bool_lenient")]
    ignore_port_in_host_matching: bool,
    #[serde(default, alias = "vhostHeader")]
    vhost_header: String,
    #[serde(default, alias = "mostSpecificHeaderMutationsWins", deserialize_with = "bool_lenient")]
    most_specific_header_mutations_wins: bool,
    #[serde(default, alias = "ignorePathParametersInPathMatching", deserialize_with = "bool_lenient")]
    ignore_path_parameters_in_path_matching: bool,
    #[serde(default)]
    metadata: super::metadata::Metadata,
    #[serde(default)]
    vhds: Option<IgnoredAny>,
    #[serde(default, alias = "clusterSpecifierPlugins")]
    cluster_specifier_plugins: Option<IgnoredAny>,
}

impl<'de> Deserialize<'de> for RouteConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawRouteConfig::deserialize(d)?;
        let mut unsupported = Vec::new();
        if raw.vhds.is_some() {
            unsupported.push("vhds".to_string());
        }
        if raw.cluster_specifier_plugins.is_some() {
            unsupported.push("cluster_specifier_plugins".to_string());
        }
        let mut cfg = RouteConfig {
            name: raw.name,
            virtual_hosts: raw.virtual_hosts,
            internal_only_headers: raw.internal_only_headers,
            request_headers_to_add: raw.request_headers_to_add,
            request_headers_to_remove: raw.request_headers_to_remove,
            response_headers_to_add: raw.response_headers_to_add,
            response_headers_to_remove: raw.response_headers_to_remove,
            ignore_port_in_host_matching: raw.ignore_port_in_host_matching,
            vhost_header: (!raw.vhost_header.is_empty()).then_some(raw.vhost_header),
            most_specific_header_mutations_wins: raw.most_specific_header_mutations_wins,
            ignore_path_parameters_in_path_matching: raw.ignore_path_parameters_in_path_matching,
            metadata: raw.metadata,
            unsupported,
        };
        cfg.assign_sources();
        cfg.validate_domains().map_err(de::Error::custom)?;
        Ok(cfg)
    }
}

impl RouteConfig {
    /// Sets each virtual host's and route's `source` to its index path. Called by the
    /// deserializer; call again after building or editing a config by hand.
    pub fn assign_sources(&mut self) {
        for (vi, vh) in self.virtual_hosts.iter_mut().enumerate() {
            vh.source = format!("virtual_hosts[{vi}]");
            for (ri, r) in vh.routes.iter_mut().enumerate() {
                r.source = format!("virtual_hosts[{vi}].routes[{ri}]");
            }
        }
    }

    /// Envoy rejects a route table in which a domain (lower-cased) appears twice or more than
    /// one virtual host claims `*` (E:source/common/router/config_impl.cc `RouteMatcher`).
    pub fn validate_domains(&self) -> Result<(), String> {
        let mut seen: crate::util::fasthash::FastMap<String, &str> = Default::default();
        for vh in &self.virtual_hosts {
            for d in &vh.domains {
                let lower = d.to_ascii_lowercase();
                if let Some(prev) = seen.get(&lower).copied() {
                    return Err(if lower == "*" {
                        format!(
                            "Only a single wildcard domain is permitted in route {} \
                             (virtual hosts {prev:?} and {:?})",
                            self.name, vh.name
                        )
                    } else {
                        format!(
                            "Only unique values for domains are permitted. Duplicate entry of \
                             domain {lower} in route {} (virtual hosts {prev:?} and {:?})",
                            self.name, vh.name
                        )
                    });
                }
                seen.insert(lower, &vh.name);
            }
        }
        Ok(())
    }
}
