//! What `replay` keeps per flow, kept small (docs/reliability.md, "Memory per flow in
//! `replay`"): a [`FlowRecord`] of fixed-size numbers per flow, pointing into tables shared by
//! all flows: the [`Outcome`]s (what a walk predicted, deduplicated) and the interned strings
//! (listener, cluster, endpoint, names). Rows are rendered from these and the flows, one at a
//! time, never all at once.

use std::hash::Hash;
use std::net::IpAddr;

use crate::util::fasthash::FastMap;

/// The value of a `u32` reference that points nowhere.
pub(crate) const NONE: u32 = u32::MAX;

/// A flow id as a `u32` reference (a capture of 2^32 flows does not fit in memory anyway).
pub(crate) fn id32(id: usize) -> u32 {
    u32::try_from(id).unwrap_or(NONE)
}

/// A `u32` reference as an optional flow id or table index.
pub(crate) fn opt(v: u32) -> Option<usize> {
    (v != NONE).then_some(v as usize)
}

/// What the capture shows that contradicts the prediction (the words are made when the row is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disagrees {
    No,
    /// The server reset a connection predicted delivered or gone out.
    RstFromServer,
    /// The server answered a connection predicted refused or dropped.
    ServerReplied,
    /// Envoy connected elsewhere than the endpoint predicted for its downstream flow.
    EnvoyElsewhere,
}

/// One flow of the replay: the row's facts that are not in the [`crate::capture::Flow`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct FlowRecord {
    /// Index into [`Tables::outcomes`].
    pub outcome: u32,
    /// The flow's trace class (flows walked identically share one), or [`NONE`].
    pub class: u32,
    /// An interned name an earlier DNS answer gave the server, or [`NONE`].
    pub name: u32,
    /// The flow whose DNS answer gave `name`, or [`NONE`].
    pub name_from: u32,
    pub leg_of: u32,
    pub upstream_of: u32,
    pub side: super::RowSide,
    pub disagrees: Disagrees,
}

/// Where a predicted connection ends, relative to the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Endpoint {
    None,
    /// The flow's own server address (a passthrough, an original destination).
    Server,
    /// An interned string.
    Other(u32),
}

/// What a walk predicts for a flow, in the row's terms; interned, so that many flows (of many
/// trace classes) that end alike share one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Outcome {
    pub ending: &'static str,
    pub detail: Option<u32>,
    pub listener: Option<u32>,
    pub cluster: Option<u32>,
    pub endpoint: Endpoint,
    pub paths: u32,
    /// What in the capture would contradict the first path's ending.
    pub check: Check,
}

/// What the capture shows that contradicts a predicted ending (docs/replay.md, "disagrees").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Check {
    Nothing,
    /// Predicted delivered or gone out: a reset from the server contradicts it.
    ServerReset,
    /// Predicted refused or dropped: an answer from the server contradicts it.
    ServerReply,
}

impl Outcome {
    /// An outcome with an ending only.
    pub(crate) const fn bare(ending: &'static str) -> Outcome {
        Outcome {
            ending,
            detail: None,
            listener: None,
            cluster: None,
            endpoint: Endpoint::None,
            paths: 0,
            check: Check::Nothing,
        }
    }
}

/// Values numbered in first-seen order, each stored once.
#[derive(Debug)]
pub(crate) struct Interner<T> {
    ids: FastMap<T, u32>,
    values: Vec<T>,
}

impl<T> Default for Interner<T> {
    fn default() -> Self {
        Interner { ids: FastMap::default(), values: Vec::new() }
    }
}

impl<T: Hash + Eq + Clone> Interner<T> {
    pub(crate) fn id(&mut self, v: T) -> u32 {
        if let Some(&i) = self.ids.get(&v) {
            return i;
        }
        let i = id32(self.values.len());
        self.values.push(v.clone());
        self.ids.insert(v, i);
        i
    }

    pub(crate) fn get(&self, i: u32) -> Option<&T> {
        self.values.get(i as usize)
    }

    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }
}

/// The tables that [`FlowRecord`]s point into.
#[derive(Debug, Default)]
pub(crate) struct Tables {
    pub outcomes: Interner<Outcome>,
    pub strings: Interner<Box<str>>,
}

impl Tables {
    pub(crate) fn string(&mut self, s: &str) -> u32 {
        self.strings.id(s.into())
    }

    pub(crate) fn text(&self, i: Option<u32>) -> Option<String> {
        i.and_then(|i| self.strings.get(i)).map(|s| s.to_string())
    }

    pub(crate) fn outcome(&self, i: u32) -> Outcome {
        self.outcomes.get(i).copied().unwrap_or(Outcome::bare("none"))
    }
}

/// A part of a trace class key, interned: the key is then a few numbers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Part {
    Ip(IpAddr),
    Text(Box<str>),
    Process(u32, u32),
    Nothing,
    /// Two parts together (who starts, from which address).
    Pair(u32, u32),
}

/// What a trace depends on, as numbers: everything of the engine's start except the client's
/// port, and the generation of the names learned from the capture's DNS answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ClassKey {
    pub generation: u64,
    /// Who starts the connection and from which address ([`Part::Pair`]).
    pub origin: u32,
    pub dst: u32,
    /// The client's bytes, HTTP request and DNS question.
    pub said: u32,
    pub port: u16,
    pub proto: crate::netns::L4,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-flow state stays a handful of numbers (the goal: under 300 bytes per flow in
    /// all, flow table included; docs/reliability.md).
    #[test]
    fn per_flow_state_is_small() {
        assert!(std::mem::size_of::<FlowRecord>() <= 32, "{}", std::mem::size_of::<FlowRecord>());
        assert!(std::mem::size_of::<ClassKey>() <= 24, "{}", std::mem::size_of::<ClassKey>());
        let flow = std::mem::size_of::<crate::capture::Flow>();
        assert!(flow <= 192, "Flow is {flow} bytes");
    }
}
