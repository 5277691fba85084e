//! meshpath: where does this packet really go inside a Kubernetes pod with an Istio sidecar, and why?
//!
//! Data flows one way: parse, model, simulate, render.
//!
//! * [`netfilter`]: `iptables-save` parser, rule model and the kernel-faithful evaluator.
//! * [`netns`]: a pod's interfaces, addresses, routes, ip rules and sockets.
//! * [`envoy`]: Envoy `/config_dump` parser, listener/route/cluster model and Envoy's matching.
//! * [`istio`]: Istio's conventions (ports, proxy uid, addresses, table, marks, cluster names) as
//!   defaults a pod's evidence can override.
//! * [`engine`]: a mesh snapshot built from evidence ([`engine::PodEvidence`]) and the walk.
//! * [`diagnostic`]: errors located in a file (`file:line:col`, the line, a label).
//! * [`capture`]: pcap/pcapng reading, packet decode, flows and what they say about themselves.
//! * [`replay`]: a capture's flows walked through a pod, one row per flow plus a summary.
//! * [`routecheck`]: a drop-in for Envoy's `router_check_tool` (test files against a route table).
//! * [`scenario`]: scenario files (a snapshot plus probes with expectations) for `check`.
//! * [`util`]: the mark/mask pair, number parsing, a fast hasher and reading big files, shared
//!   by the layers above.

#![forbid(unsafe_code)]

pub mod capture;
pub mod diagnostic;
pub mod engine;
pub mod envoy;
pub mod explain;
pub mod istio;
pub mod netfilter;
pub mod netns;
pub mod render;
pub mod replay;
pub mod routecheck;
pub mod scenario;
pub mod util;
