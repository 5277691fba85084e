//! Raw (borrowed, as-spelled) → model (owned, neutral). Paths use the canonical snake_case
//! field names whatever spelling the input used.

mod cluster;
mod listener;
mod matcher;
#[cfg(test)]
mod tests;
mod transport;

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use super::model::{EnvoyConfig, Note, Origin, ResourceState, RouteConfigEntry, RouteConfigKind, Section};
use super::raw::dump::{BareResource, DynamicListener, RawRoute};
use super::raw::known::{self, UnknownField};
use super::raw::stream::{DumpSink, UpdateRejected};
use super::raw::{self, Metadata, Scalar, Str};
use super::route::RouteConfig;
use super::validate::{Finding, Instead, ObjectKind, Problem, Severity};

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
        Ctx { input, lines_valid, cursor_off: 0, cursor_line: 1, notes: Vec::new() }
    }

    /// Line of a byte offset. The cursor moves forwards or backwards by counting only the
    /// newlines in between, so a document-order traversal with local back-steps (a chain's
    /// `name` printed after its filters) stays linear.
    fn line_at(&mut self, off: usize) -> u32 {
        let off = off.min(self.input.len());
        let count = |a: usize, b: usize| {
            crate::util::bytes::count(self.input.get(a..b).unwrap_or_default(), b'\n') as u32
        };
        if off >= self.cursor_off {
            self.cursor_line += count(self.cursor_off, off);
        } else {
            self.cursor_line -= count(off, self.cursor_off);
        }
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
        self.notes.push(Note { path: path.into(), line, message: message.into() });
    }

    pub fn origin(&mut self, name: Option<&Str<'_>>, path: &str, md: Option<&Metadata<'_>>) -> Origin {
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
                self.note(format!("{path}.{field}"), line, format!("malformed {field}: {e}"));
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
                self.note(format!("{path}.{field}"), line, format!("malformed {field}: {v} exceeds {max}"));
                None
            }
            Ok(None) => None,
            Err(e) => {
                let line = self.scalar_line(s);
                self.note(format!("{path}.{field}"), line, format!("malformed {field}: {e}"));
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
        let len = self.uint(&c.prefix_len, path, "prefix_len", max).unwrap_or(0) as u8;
        IpNet::new(ip, len).ok().map(|n| n.trunc())
    }

    pub fn cidr_text(&mut self, s: &Str<'_>, path: &str) -> Option<IpNet> {
        let t = s.as_str();
        let parsed = t.parse::<IpNet>().ok().or_else(|| t.parse::<IpAddr>().ok().map(IpNet::from));
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
                self.note(format!("{path}.address"), line, format!("malformed IP address {:?}", a.as_str()));
                None
            }
        }
    }
}

pub fn owned(s: &Option<Str<'_>>) -> Option<String> {
    s.as_ref().map(|s| s.as_str().to_string())
}

/// Converts resources as the document walk ([`super::raw::stream`]) delivers them.
pub struct Converter<'i> {
    pub ctx: Ctx<'i>,
    pub out: EnvoyConfig,
    /// Fields Envoy does not know, tied to their objects when reading ends.
    unknown: Vec<(ObjectKind, UnknownField)>,
}

impl<'i> Converter<'i> {
    pub fn new(input: &'i [u8], lines_valid: bool) -> Self {
        Converter { ctx: Ctx::new(input, lines_valid), out: EnvoyConfig::default(), unknown: Vec::new() }
    }

    pub fn finish(mut self) -> EnvoyConfig {
        self.out.notes = std::mem::take(&mut self.ctx.notes);
        self.out.build_lookup();
        super::validate::unknown_fields(&mut self.out, std::mem::take(&mut self.unknown));
        super::validate::validate(&mut self.out);
        self.out
    }
}

const MODELLED_SECTIONS: [&str; 4] = ["Listeners", "Clusters", "Routes", "Endpoints"];

impl<'de> DumpSink<'de> for Converter<'_> {
    fn section(&mut self, kind: &str, path: &str) {
        let modelled = kind.starts_with("resource")
            || MODELLED_SECTIONS.iter().any(|k| kind.ends_with(&format!(".{k}ConfigDump")));
        self.out.sections.push(Section { kind: kind.to_string(), path: path.to_string(), modelled });
    }

    fn listener(&mut self, l: &raw::listener::Listener<'de>, path: &str, state: ResourceState) {
        if let Some(l) = listener::listener(l, path, state, &mut self.ctx) {
            self.out.listeners.push(l);
        }
    }

    fn dynamic_listener(&mut self, dl: &DynamicListener<'de>, base: &str) {
        let states = [
            ("active_state", &dl.active_state, ResourceState::Active),
            ("warming_state", &dl.warming_state, ResourceState::Warming),
            ("draining_state", &dl.draining_state, ResourceState::Draining),
        ];
        for (field, w, state) in states {
            if let Some(l) = w.as_ref().and_then(|w| w.listener.as_ref()) {
                self.listener(&l.value, &format!("{base}.{field}.listener"), state);
            }
        }
        if let Some(es) = &dl.error_state {
            let name = dl.name.as_ref().map(|n| n.as_str()).unwrap_or("");
            let last_good = states
                .iter()
                .find(|(_, w, s)| {
                    *s == ResourceState::Active && w.as_ref().is_some_and(|w| w.listener.is_some())
                })
                .map(|(field, _, _)| format!("{base}.{field}.listener"));
            let p = format!("{base}.error_state");
            let index = es.failed_configuration.as_ref().and_then(|l| {
                let before = self.out.listeners.len();
                self.listener(&l.value, &format!("{p}.failed_configuration"), ResourceState::Error);
                (self.out.listeners.len() > before).then_some(before)
            });
            let line = self.ctx.line_of(dl.name.as_ref());
            let details = es.details.as_ref().map(|d| d.as_str()).unwrap_or("");
            let failure =
                UpdateFailure { object: ObjectKind::Listener, name, path: &p, line, details, last_good };
            self.update_failure(failure, index);
        }
    }

    fn cluster(&mut self, c: &raw::cluster::Cluster<'de>, path: &str, state: ResourceState) {
        if let Some(c) = cluster::cluster(c, path, state, &mut self.ctx) {
            self.out.clusters.push(c);
        }
    }

    fn route(&mut self, r: RawRoute<'de>, path: &str, kind: RouteConfigKind) {
        if let Some(r) = route_config(r, path, kind, &mut self.ctx) {
            self.out.route_configs.push(r);
        }
    }

    fn load_assignment(&mut self, a: &raw::cluster::LoadAssignment<'de>, path: &str) {
        let a = cluster::load_assignment(a, path, &mut self.ctx);
        self.out.load_assignments.push(a);
    }

    fn bare(&mut self, r: &BareResource<'de>, path: &str) {
        match r {
            BareResource::Listener(l, raw) => {
                let found = known::unknown_fields(raw.get(), &known::LISTENER, path);
                self.unknown_fields(ObjectKind::Listener, found);
                self.listener(l, path, ResourceState::Active)
            }
            BareResource::Cluster(c, raw) => {
                let found = known::unknown_fields(raw.get(), &known::CLUSTER, path);
                self.unknown_fields(ObjectKind::Cluster, found);
                self.cluster(c, path, ResourceState::Active)
            }
            BareResource::RouteConfig(r) => self.route(r, path, RouteConfigKind::Bare),
            BareResource::LoadAssignment(a) => self.load_assignment(a, path),
            BareResource::Unknown(keys) => {
                self.ctx.note(path, None, format!("unrecognised resource (keys: {})", keys.join(", ")))
            }
        }
    }

    fn note(&mut self, path: &str, message: String) {
        self.ctx.note(path, None, message);
    }

    fn unknown_fields(&mut self, object: ObjectKind, found: Vec<UnknownField>) {
        self.unknown.extend(found.into_iter().map(|u| (object, u)));
    }

    fn update_rejected(&mut self, r: UpdateRejected<'_, 'de>) {
        let line = self.ctx.line_of(r.details);
        let details = r.details.map(|d| d.as_str()).unwrap_or("");
        let failure = UpdateFailure {
            object: r.object,
            name: r.name,
            path: r.path,
            line,
            details,
            last_good: r.last_good,
        };
        self.update_failure(failure, None);
    }
}

/// A rejected update as recorded: which object, where, Envoy's `details`, and the path of the
/// version Envoy still serves when the dump shows one.
struct UpdateFailure<'p> {
    object: ObjectKind,
    name: &'p str,
    path: &'p str,
    line: Option<u32>,
    details: &'p str,
    last_good: Option<String>,
}

impl Converter<'_> {
    /// Records an `error_state`: Envoy rejected this update and serves the last good version
    /// (or nothing); `listener` is the rejected listener's index when it was read.
    fn update_failure(&mut self, f: UpdateFailure<'_>, listener: Option<usize>) {
        let instead = match f.last_good {
            Some(path) => Instead::LastGood { path },
            None => Instead::Nothing,
        };
        self.out.findings.push(Finding {
            object: f.object,
            name: f.name.to_string(),
            path: f.path.to_string(),
            line: f.line,
            problem: Problem::UpdateRejected,
            severity: Severity::Rejected,
            reason: f.details.to_string(),
            instead,
            listener,
        });
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
