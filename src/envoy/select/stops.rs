//! Where a connection stops before filter-chain matching: a listener Envoy refuses, or a
//! listener filter that waits for client bytes a server-first client never sends.

use super::super::model::{EnvoyConfig, Listener};
use super::listener;
use super::{FilterTimeout, ObjectRef, Outcome, Trace};
use crate::envoy::validate::ObjectKind;

/// The outcome for a connection that listener `i` would take, when Envoy refuses that listener.
pub(super) fn rejected_outcome(cfg: &EnvoyConfig, i: usize) -> Option<Outcome> {
    let f = crate::envoy::validate::rejection(cfg, i)?;
    let l = cfg.listeners.get(i)?;
    let mut listener = ObjectRef::of(&l.origin, &l.name);
    listener.path = f.path.clone();
    listener.line = f.line.or(listener.line);
    Some(Outcome::Rejected {
        object: ObjectKind::Listener,
        resource: listener,
        reason: f.reason.clone(),
        instead: f.instead.clone(),
    })
}

/// A listener filter of `l` that waits for client bytes (the last step says `waiting`): with
/// no `listener_filters_timeout` (`0s`) the connection stalls; when it fires, Envoy goes on to
/// filter-chain matching with what was detected so far if
/// `continue_on_listener_filters_timeout` is set, and closes the socket otherwise (envoy
/// source/common/listener_manager/active_tcp_socket.cc, `ActiveTcpSocket::startFilterChain`
/// arms the timer only for a non-zero timeout, `ActiveTcpSocket::onTimeout`; the default of
/// 15s is api/envoy/config/listener/v3/listener.proto `listener_filters_timeout`).
pub(super) fn filters_waited(l: &Listener, t: &mut Trace) -> Option<Outcome> {
    let w = t.listener_filters.last().filter(|s| s.status == listener::WAITING)?;
    let timeout = l.listener_filters_timeout.clone().unwrap_or_else(|| "15s".into());
    if listener::duration_is_zero(&timeout) {
        return Some(Outcome::Stalled {
            listener: ObjectRef::of(&l.origin, &l.name),
            filter: w.filter.clone(),
        });
    }
    if !l.continue_on_listener_filters_timeout {
        return Some(Outcome::Closed {
            flag: None,
            details: format!(
                "listener filter {} timed out after {timeout} (downstream_pre_cx_timeout)",
                w.filter
            ),
        });
    }
    t.listener_filters_timeout =
        Some(FilterTimeout { listener: l.name.clone(), filter: w.filter.clone(), timeout });
    None
}
