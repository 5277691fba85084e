//! Netfilter: the `iptables-save` parser, the rule model, and the evaluator that walks a packet
//! through the kernel's hooks exactly as Linux does (see `docs/netfilter.md`).

pub mod eval;
pub mod model;
pub mod parse;

pub use model::*;
