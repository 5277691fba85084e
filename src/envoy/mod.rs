//! Envoy `/config_dump` parser, model and matching.
//!
//! * [`parse_dump`] reads every dump shape meshpath knows (see `docs/envoy.md`) into the neutral
//!   [`model::EnvoyConfig`]: typed borrowed serde subsets ([`raw`]), then conversion with
//!   notes for anything malformed or not modelled.
//! * [`select`] reproduces Envoy's decisions for one connection: listener hand-off, listener
//!   filters, filter-chain selection, network filter, cluster and endpoint.
//! * [`route`] is the HTTP route layer (RouteConfiguration model and route matching).
//! * [`validate`] finds what Envoy would refuse (and what a dump says it refused).
//! * [`summary`] renders an `istioctl proxy-config all`-like text summary.

pub mod convert;
pub mod model;
pub mod parse;
pub mod raw;
pub mod route;
pub mod select;
pub mod summary;
pub mod validate;

pub use parse::{load, parse_dump, LoadError, ParseError};
