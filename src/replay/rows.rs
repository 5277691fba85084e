//! The rows of a replay, made from the flows and their small records one at a time, and the
//! summary; the trace class key and the outcome a walk gives a row.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::record::{id32, opt, Check, ClassKey, Disagrees, Endpoint, Interner, Outcome, Part, Tables};
use super::{sniffed_of, Replay, Row, SummaryLine};
use crate::capture::{Flow, FlowId};
use crate::engine::{Destination, Ending, From, MeshTrace, Start};

impl<'a> Replay<'a> {
    /// How many flows (rows) there are.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The rows in flow order, each made when it is asked for.
    pub fn rows(&self) -> impl Iterator<Item = Row> + '_ {
        (0..self.records.len()).filter_map(|i| self.row(i))
    }

    /// The row of flow `i`.
    pub fn row(&self, i: FlowId) -> Option<Row> {
        let r = self.records.get(i)?;
        let f = self.flows.get(i)?;
        let o = self.tables.outcome(r.outcome);
        let name = match opt(r.name_from) {
            Some(_) => self.tables.text(Some(r.name)),
            None => sniffed_of(f, self.flows).name().map(str::to_string),
        };
        let endpoint = self.endpoint(f, &o);
        let disagrees = match r.disagrees {
            Disagrees::No => None,
            Disagrees::RstFromServer => Some(format!("capture: RST from the server; predicted {}", o.ending)),
            Disagrees::ServerReplied => Some(format!("capture: the server replied; predicted {}", o.ending)),
            Disagrees::EnvoyElsewhere => {
                let predicted = opt(r.upstream_of).and_then(|d| self.endpoint_of(d)).unwrap_or_default();
                Some(format!("capture: Envoy connected to {}; predicted endpoint {predicted}", f.server))
            }
        };
        Some(Row {
            index: f.id,
            time: f.first_nanos.saturating_sub(self.t0) as f64 / 1e9,
            proto: f.transport.name(),
            client: f.client.to_string(),
            server: f.server.to_string(),
            side: r.side,
            name,
            name_from: opt(r.name_from),
            ending: o.ending.to_string(),
            detail: self.tables.text(o.detail),
            listener: self.tables.text(o.listener),
            cluster: self.tables.text(o.cluster),
            endpoint,
            paths: o.paths as usize,
            packets: f.packets(),
            bytes: f.bytes(),
            leg_of: opt(r.leg_of),
            upstream_of: opt(r.upstream_of),
            disagrees,
            trace: opt(r.class),
        })
    }

    fn endpoint(&self, f: &Flow, o: &Outcome) -> Option<String> {
        match o.endpoint {
            Endpoint::None => None,
            Endpoint::Server => Some(f.server.to_string()),
            Endpoint::Other(i) => self.tables.text(Some(i)),
        }
    }

    /// The endpoint predicted for flow `i`.
    pub(super) fn endpoint_of(&self, i: FlowId) -> Option<String> {
        let (r, f) = (self.records.get(i)?, self.flows.get(i)?);
        self.endpoint(f, &self.tables.outcome(r.outcome))
    }
}

/// What a trace depends on, as a few numbers: everything of the start except the client's
/// port, and the generation of the learned names.
pub(super) fn class_key(s: &Start, generation: u64, parts: &mut Interner<Part>) -> ClassKey {
    let ip = |a: IpAddr| Part::Ip(a);
    let from = match &s.from {
        From::Process { uid, gid } => Part::Process(*uid, *gid),
        From::Outside { src } => ip(*src),
    };
    let (dst, port) = match &s.dst {
        Destination::Addr(a) => (ip(a.ip()), a.port()),
        Destination::Host { name, port } => (Part::Text(name.as_str().into()), *port),
    };
    let said = format!("{:?}|{:?}|{:?}", s.client, s.request, s.dns_query);
    let origin = Part::Pair(parts.id(from), parts.id(s.src.map_or(Part::Nothing, |a| ip(a.ip()))));
    ClassKey {
        generation,
        origin: parts.id(origin),
        dst: parts.id(dst),
        said: parts.id(Part::Text(said.into())),
        port,
        proto: s.proto,
    }
}

/// What trace `t` predicts for flow `f`, interned.
pub(super) fn outcome_of(t: &MeshTrace, f: &Flow, tables: &mut Tables) -> u32 {
    let Some(p) = t.paths.first() else {
        return tables.outcomes.id(Outcome::bare("none"));
    };
    let detail = match &p.ending {
        Ending::EnvoyResponse { status, flag, .. } => {
            let parts: Vec<String> =
                status.iter().map(|s| s.to_string()).chain(flag.iter().cloned()).collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        }
        _ => None,
    };
    let hop =
        |pick: fn(&crate::engine::EnvoyHop) -> Option<&String>| p.envoy.iter().find_map(|h| pick(h).cloned());
    let cluster = hop(|h| h.cluster.as_ref()).or_else(|| match &p.ending {
        Ending::Blackhole { cluster, .. } => Some(cluster.clone()),
        Ending::Left { cluster, .. } => cluster.clone(),
        _ => None,
    });
    let endpoint = match hop(|h| h.endpoint.as_ref()) {
        None => Endpoint::None,
        Some(e) if e == f.server.to_string() => Endpoint::Server,
        Some(e) => Endpoint::Other(tables.string(&e)),
    };
    let o = Outcome {
        ending: p.ending.kind(),
        detail: detail.map(|d| tables.string(&d)),
        listener: hop(|h| h.listener.as_ref()).map(|l| tables.string(&l)),
        cluster: cluster.map(|c| tables.string(&c)),
        endpoint,
        paths: u32::try_from(t.paths.len()).unwrap_or(u32::MAX),
        check: match &p.ending {
            Ending::Delivered { .. } | Ending::Left { .. } => Check::ServerReset,
            Ending::Refused { .. } | Ending::Dropped { .. } => Check::ServerReply,
            _ => Check::Nothing,
        },
    };
    tables.outcomes.id(o)
}

/// Flows by ending and cluster.
pub(super) fn summary(r: &Replay<'_>) -> Vec<SummaryLine> {
    let mut per_outcome = vec![0u64; r.tables.outcomes.len()];
    for rec in &r.records {
        if let Some(n) = per_outcome.get_mut(rec.outcome as usize) {
            *n += 1;
        }
    }
    let mut counts: BTreeMap<(String, Option<String>), u64> = BTreeMap::new();
    for (i, n) in per_outcome.into_iter().enumerate().filter(|(_, n)| *n > 0) {
        let o = r.tables.outcome(id32(i));
        *counts.entry((o.ending.to_string(), r.tables.text(o.cluster))).or_default() += n;
    }
    counts.into_iter().map(|((ending, cluster), flows)| SummaryLine { ending, cluster, flows }).collect()
}
