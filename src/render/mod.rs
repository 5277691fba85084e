//! Rendering: pure functions from what the library computed to text and JSON documents.
//! Nothing here decides anything about packets.

pub mod explain;
mod explain_graph;
pub mod netfilter;
pub mod trace;
