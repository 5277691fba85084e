//! Envoy matching.
