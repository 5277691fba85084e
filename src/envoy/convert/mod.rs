//! Raw (borrowed, as-spelled) → model (owned, neutral). Paths use the canonical snake_case
//! field names whatever spelling the input used.

mod cluster;
mod listener;
mod matcher;
#[cfg(test)]
mod tests;

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use super::model::{
    EnvoyConfig, Note, Origin, ResourceState, RouteConfigEntry, RouteConfigKind, Section,
};
use super::raw::dump::{AdminDump, BareResource, RawRoute, Root};
use super::raw::{self, Metadata, Scalar, Str};
use super::route::RouteConfig;

/// Conversion context: the input (to turn borrowed strings into line numbers) and the notes.
pub struct Ctx<'i> {
    input: &'i [u8],
    lines_valid: bool,
    cursor_off: usize,
    cursor_line: u32,
    pub notes: Vec<Note>,
}

impl<'i> Ctx<'i> {
    pub fn new(input: &'i [u8], lines_valid: bool) -> Self {
        Ctx {
            input,
            lines_valid,
            cursor_off: 0,
            cursor_line: 1,
            notes: Vec::new(),
        }
    }

    /// Line of a byte offset; amortised O(n) over a document-order traversal.
    fn line_at(&mut self, off: usize) -> u32 {
        let off = off.min(self.input.len());
        if off < self.cursor_off {
            self.cursor_off = 0;
            self.cursor_line = 1;
        }
        let slice = self.input.get(self.cursor_off..off).unwrap_or_default();
        self.cursor_line += slice.iter().filter(|&&b| b == b'\n').count() as u32;
        self.cursor_off = off;
        self.cursor_line
    }

    pub fn line_of(&mut self, s: Option<&Str<'_>>) -> Option<u32> {
        if !self.lines_valid {
            return None;
        }
        let off = s?.offset_in(self.input)?;
        Some(self.line_at(off))
    }

    fn scalar_line(&mut self, s: &Scalar<'_>) -> Option<u32> {
        if !self.lines_valid {
            return None;
        }
        let off = s.text_offset(self.input)?;
        Some(self.line_at(off))
    }

    pub fn note(&mut self, path: impl Into<String>, line: Option<u32>, message: impl Into<String>) {
        self.notes.push(Note {
            path: path.into(),
            line,
            message: message.into(),
        });
    }

    pub fn origin(
        &mut self,
        name: Option<&Str<'_>>,
        path: &str,
        md: Option<&Metadata<'_>>,
    ) -> Origin {
        Origin {
            name: name.map(|n| n.as_str().to_string()),
            path: path.to_string(),
            line: self.line_of(name),
            istio_config: md.and_then(|m| m.istio_config()).map(str::to_string),
        }
    }

    /// A bool field; malformed → note, default.
    pub fn bool(&mut self, s: &Scalar<'_>, path: &str, field: &str, default: bool) -> bool {
        match s.as_bool() {
            Ok(v) => v.unwrap_or(default),
            Err(e) => {
                let line = self.scalar_line(s);
                self.note(
                    format!("{path}.{field}"),
                    line,
                    format!("malformed {field}: {e}"),
                );
                default
            }
        }
    }

    /// An unsigned field that must fit `max`; malformed → note, None.
    pub fn uint(&mut self, s: &Scalar<'_>, path: &str, field: &str, max: u64) -> Option<u64> {
        match s.as_u64() {
            Ok(Some(v)) if v <= max => Some(v),
            Ok(Some(v)) => {
                let line = self.scalar_line(s);
                self.note(
                    format!("{path}.{field}"),
                    line,
                    format!("malformed {field}: {v} exceeds {max}"),
                );
                None
            }
            Ok(None) => None,
            Err(e) => {
                let line = self.scalar_line(s);
                self.note(
                    format!("{path}.{field}"),
                    line,
                    format!("malformed {field}: {e}"),
                );
                None
            }
        }
    }

    pub fn cidr(&mut self, c: &raw::CidrRange<'_>, path: &str) -> Option<IpNet> {
        let Some(prefix) = c.address_prefix.as_ref() else {
            self.note(path, None, "CIDR range without address_prefix");
            return None;
        };
        let ip: IpAddr = match prefix.as_str().parse() {
            Ok(ip) => ip,
            Err(_) => {
                let line = self.line_of(Some(prefix));
                self.note(
                    format!("{path}.address_prefix"),
                    line,
                    format!("malformed address_prefix {:?}", prefix.as_str()),
                );
                return None;
            }
        };
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len = self
            .uint(&c.prefix_len, path, "prefix_len", max)
            .unwrap_or(0) as u8;
        IpNet::new(ip, len).ok().map(|n| n.trunc())
    }

    pub fn cidr_text(&mut self, s: &Str<'_>, path: &str) -> Option<IpNet> {
        let t = s.as_str();
        let parsed = t
            .parse::<IpNet>()
            .ok()
            .or_else(|| t.parse::<IpAddr>().ok().map(IpNet::from));
        if parsed.is_none() {
            let line = self.line_of(Some(s));
            self.note(path, line, format!("malformed CIDR {t:?}"));
        }
        parsed.map(|n| n.trunc())
    }

    /// A socket address with an IP literal; `None` (+ note) if it is missing or malformed.
    pub fn socket(&mut self, sa: &raw::SocketAddress<'_>, path: &str) -> Option<SocketAddr> {
        let ip = self.ip_of(sa, path)?;
        let port = self.uint(&sa.port_value, path, "port_value", u64::from(u16::MAX))?;
        Some(SocketAddr::new(ip, port as u16))
    }

    fn ip_of(&mut self, sa: &raw::SocketAddress<'_>, path: &str) -> Option<IpAddr> {
        let Some(a) = sa.address.as_ref() else {
            self.note(path, None, "socket_address without address");
            return None;
        };
        match a.as_str().parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                let line = self.line_of(Some(a));
                self.note(
                    format!("{path}.address"),
                    line,
                    format!("malformed IP address {:?}", a.as_str()),
                );
                None
            }
        }
    }
}

pub fn owned(s: &Option<Str<'_>>) -> Option<String> {
    s.as_ref().map(|s| s.as_str().to_string())
}

/// Converts a whole document.
pub fn convert(root: Root<'_>, ctx: &mut Ctx<'_>) -> EnvoyConfig {
    let mut out = EnvoyConfig::default();
    match root {
        Root::Dump(d) => {
            let kind = d.type_url.as_ref().map(|t| short_type(t.as_str()));
            dump(&d.value, "", kind, ctx, &mut out);
        }
        Root::Array(items) => {
            out.sections.push(Section {
                kind: "resource array".into(),
                path: "$".into(),
                modelled: true,
            });
            for (i, r) in items.iter().enumerate() {
                bare(r, &format!("[{i}]"), ctx, &mut out);
            }
        }
        Root::Keyed(items) => {
            out.sections.push(Section {
                kind: "resources keyed by name".into(),
                path: "$".into(),
                modelled: true,
            });
            for (k, r) in &items {
                bare(r, &format!("[{k:?}]"), ctx, &mut out);
            }
        }
    }
    out.notes = std::mem::take(&mut ctx.notes);
    out
}

fn short_type(url: &str) -> String {
    url.rsplit('/').next().unwrap_or(url).to_string()
}

fn bare(r: &BareResource<'_>, path: &str, ctx: &mut Ctx<'_>, out: &mut EnvoyConfig) {
    match r {
        BareResource::Listener(l) => {
            if let Some(l) = listener::listener(l, path, ResourceState::Active, ctx) {
                out.listeners.push(l);
            }
        }
        BareResource::Cluster(c) => {
            if let Some(c) = cluster::cluster(c, path, ResourceState::Active, ctx) {
                out.clusters.push(c);
            }
        }
        BareResource::RouteConfig(r) => {
            if let Some(r) = route_config(r, path, RouteConfigKind::Bare, ctx) {
                out.route_configs.push(r);
            }
        }
        BareResource::LoadAssignment(a) => out
            .load_assignments
            .push(cluster::load_assignment(a, path, ctx)),
        BareResource::Unknown(keys) => ctx.note(
            path,
            None,
            format!("unrecognised resource (keys: {})", keys.join(", ")),
        ),
    }
}

fn dump(
    d: &AdminDump<'_>,
    path: &str,
    kind: Option<String>,
    ctx: &mut Ctx<'_>,
    out: &mut EnvoyConfig,
) {
    let join = |p: &str, f: &str| {
        if p.is_empty() {
            f.to_string()
        } else {
            format!("{p}.{f}")
        }
    };
    for (i, (key, c)) in d.configs.0.iter().enumerate() {
        let p = match key {
            Some(k) => join(path, &format!("configs.{k}")),
            None => join(path, &format!("configs[{i}]")),
        };
        let kind = c.type_url.as_ref().map(|t| short_type(t.as_str()));
        dump(&c.value, &p, kind, ctx, out);
    }
    if let Some(kind) = kind {
        let modelled = ["Listeners", "Clusters", "Routes", "Endpoints"]
            .iter()
            .any(|k| kind.ends_with(&format!(".{k}ConfigDump")));
        let p = if path.is_empty() {
            "$".to_string()
        } else {
            path.to_string()
        };
        if !modelled {
            ctx.note(&p, None, format!("{kind}: not modelled (skipped)"));
        }
        out.sections.push(Section {
            kind,
            path: p,
            modelled,
        });
    }
    if !d.dynamic_scoped_route_configs.is_empty() || !d.inline_scoped_route_configs.is_empty() {
        ctx.note(
            join(path, "dynamic_scoped_route_configs"),
            None,
            "scoped route configurations are not modelled",
        );
    }
    let listeners: [(&str, &[raw::dump::ListenerWrapper<'_>], ResourceState); 4] = [
        (
            "static_listeners",
            &d.static_listeners,
            ResourceState::Static,
        ),
        (
            "dynamic_active_listeners",
            &d.dynamic_active_listeners,
            ResourceState::Active,
        ),
        (
            "dynamic_warming_listeners",
            &d.dynamic_warming_listeners,
            ResourceState::Warming,
        ),
        (
            "dynamic_draining_listeners",
            &d.dynamic_draining_listeners,
            ResourceState::Draining,
        ),
    ];
    for (field, list, state) in listeners {
        for (i, w) in list.iter().enumerate() {
            if let Some(l) = &w.listener {
                let p = join(path, &format!("{field}[{i}].listener"));
                if let Some(l) = listener::listener(&l.value, &p, state, ctx) {
                    out.listeners.push(l);
                }
            }
        }
    }
    for (i, dl) in d.dynamic_listeners.iter().enumerate() {
        let base = join(path, &format!("dynamic_listeners[{i}]"));
        let states = [
            ("active_state", &dl.active_state, ResourceState::Active),
            ("warming_state", &dl.warming_state, ResourceState::Warming),
            (
                "draining_state",
                &dl.draining_state,
                ResourceState::Draining,
            ),
        ];
        for (field, w, state) in states {
            if let Some(l) = w.as_ref().and_then(|w| w.listener.as_ref()) {
                let p = format!("{base}.{field}.listener");
                if let Some(l) = listener::listener(&l.value, &p, state, ctx) {
                    out.listeners.push(l);
                }
            }
        }
        if let Some(es) = &dl.error_state {
            let line = ctx.line_of(dl.name.as_ref());
            let details = es.details.as_ref().map(|d| d.as_str()).unwrap_or("");
            ctx.note(
                format!("{base}.error_state"),
                line,
                format!(
                    "listener {:?} update was rejected by Envoy: {details}",
                    dl.name.as_ref().map(|n| n.as_str()).unwrap_or("")
                ),
            );
            if let Some(l) = &es.failed_configuration {
                let p = format!("{base}.error_state.failed_configuration");
                if let Some(l) = listener::listener(&l.value, &p, ResourceState::Error, ctx) {
                    out.listeners.push(l);
                }
            }
        }
    }
    let clusters: [(&str, &[raw::dump::ClusterWrapper<'_>], ResourceState); 3] = [
        ("static_clusters", &d.static_clusters, ResourceState::Static),
        (
            "dynamic_active_clusters",
            &d.dynamic_active_clusters,
            ResourceState::Active,
        ),
        (
            "dynamic_warming_clusters",
            &d.dynamic_warming_clusters,
            ResourceState::Warming,
        ),
    ];
    for (field, list, state) in clusters {
        for (i, w) in list.iter().enumerate() {
            if let Some(c) = &w.cluster {
                let p = join(path, &format!("{field}[{i}].cluster"));
                if let Some(c) = cluster::cluster(&c.value, &p, state, ctx) {
                    out.clusters.push(c);
                }
            }
        }
    }
    let routes = [
        (
            "static_route_configs",
            &d.static_route_configs,
            RouteConfigKind::Static,
        ),
        (
            "dynamic_route_configs",
            &d.dynamic_route_configs,
            RouteConfigKind::Dynamic,
        ),
    ];
    for (field, list, kind) in routes {
        for (i, w) in list.iter().enumerate() {
            let (raw, p) = match (w.route_config, w.unwrapped) {
                (Some(r), _) => (r, join(path, &format!("{field}[{i}].route_config"))),
                (None, Some(r)) => (r, join(path, &format!("{field}[{i}]"))),
                (None, None) => continue,
            };
            if let Some(r) = route_config(raw, &p, kind.clone(), ctx) {
                out.route_configs.push(r);
            }
        }
    }
    let endpoints = [
        ("static_endpoint_configs", &d.static_endpoint_configs),
        ("dynamic_endpoint_configs", &d.dynamic_endpoint_configs),
    ];
    for (field, list) in endpoints {
        for (i, w) in list.iter().enumerate() {
            if let Some(a) = &w.endpoint_config {
                let p = join(path, &format!("{field}[{i}].endpoint_config"));
                out.load_assignments
                    .push(cluster::load_assignment(&a.value, &p, ctx));
            }
        }
    }
}

/// Reads one RouteConfiguration with the route layer; a table it rejects becomes a note.
pub fn route_config(
    raw: RawRoute<'_>,
    path: &str,
    kind: RouteConfigKind,
    ctx: &mut Ctx<'_>,
) -> Option<RouteConfigEntry> {
    let text = raw.get();
    let start = text.as_ptr() as usize;
    let base = ctx.input.as_ptr() as usize;
    let line = (ctx.lines_valid && start >= base && start <= base + ctx.input.len())
        .then(|| ctx.line_at(start - base));
    match RouteConfig::from_json_str(text, path) {
        Ok(config) => Some(RouteConfigEntry {
            origin: Origin {
                name: Some(config.name.clone()),
                path: path.to_string(),
                line,
                istio_config: None,
            },
            kind,
            name: config.name.clone(),
            config,
        }),
        Err(e) => {
            let at = match (&e, line) {
                (crate::envoy::route::RouteConfigError::Json { line: l, .. }, Some(base_line)) => {
                    Some(base_line + *l as u32 - 1)
                }
                _ => line,
            };
            ctx.note(path, at, format!("route configuration not understood: {e}"));
            None
        }
    }
}
