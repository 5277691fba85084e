//! Envoy `/config_dump` parser, model and matching.
pub mod route;
