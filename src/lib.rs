//! meshpath: where does this packet really go inside a Kubernetes pod with an Istio sidecar, and why?
//!
//! Data flows one way: parse, model, simulate, render.
//!
//! * [`netfilter`]: `iptables-save` parser, rule model and the kernel-faithful evaluator.
//! * [`netns`]: a pod's interfaces, addresses, routes, ip rules and sockets.
//! * [`envoy`]: Envoy `/config_dump` parser, listener/route/cluster model and Envoy's matching.
//! * [`capture`]: pcap/pcapng reading, packet decode, flows and what they say about themselves.
//! * [`scenario`]: scenario files (a snapshot plus probes with expectations) for `check`.
//! * [`util`]: the mark/mask pair, number parsing, a fast hasher and reading big files, shared
//!   by the layers above.

pub mod capture;
pub mod engine;
pub mod envoy;
pub mod explain;
pub mod netfilter;
pub mod netns;
pub mod render;
pub mod scenario;
pub mod util;
