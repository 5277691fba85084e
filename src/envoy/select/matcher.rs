//! `filter_chain_matcher` evaluation (xds unified matcher; Envoy: source/common/listener_manager/filter_chain_manager_impl.cc). The most
//! specific `on_no_match` applies when a nested matcher does not match.

use super::super::model::{MatchInput, MatchPredicate, Matcher, MatcherKind, OnMatch, StringMatch};
use super::chain::MatchInputs;

/// The outcome of evaluating a matcher tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatcherResult {
    /// A filter chain name.
    Chain(String),
    NoMatch,
    /// The tree uses something meshpath does not evaluate.
    Unsupported(String),
}

/// The value of a network input, as Envoy's `envoy.matching.inputs.*` renders it.
pub fn input_value(input: &MatchInput, inp: &MatchInputs) -> Result<Option<String>, String> {
    Ok(match input {
        MatchInput::DestinationIp => Some(inp.local.ip().to_string()),
        MatchInput::DestinationPort => Some(inp.local.port().to_string()),
        MatchInput::SourceIp => Some(inp.source.ip().to_string()),
        MatchInput::SourcePort => Some(inp.source.port().to_string()),
        MatchInput::DirectSourceIp => Some(inp.direct_source.ip().to_string()),
        MatchInput::SourceType => {
            let local = inp.source.ip().is_loopback() || inp.source.ip() == inp.local.ip();
            Some(if local { "local" } else { "" }.to_string()).filter(|s| !s.is_empty())
        }
        MatchInput::ServerName => Some(inp.server_name.clone()).filter(|s| !s.is_empty()),
        MatchInput::TransportProtocol => Some(inp.transport_protocol.clone()).filter(|s| !s.is_empty()),
        // ApplicationProtocolInput: `'h2','http/1.1'` (each quoted, comma-joined).
        MatchInput::ApplicationProtocol => {
            Some(inp.application_protocols.iter().map(|a| format!("'{a}'")).collect::<Vec<_>>().join(","))
                .filter(|s| !s.is_empty())
        }
        MatchInput::Unsupported(u) => return Err(format!("input {u}")),
    })
}

pub fn evaluate(m: &Matcher, inp: &MatchInputs) -> MatcherResult {
    let r = match &m.kind {
        MatcherKind::Empty => MatcherResult::NoMatch,
        MatcherKind::Unsupported(u) => return MatcherResult::Unsupported(u.clone()),
        MatcherKind::Exact { input, map } => match input_value(input, inp) {
            Err(u) => return MatcherResult::Unsupported(u),
            Ok(None) => MatcherResult::NoMatch,
            Ok(Some(v)) => match map.iter().find(|(k, _)| *k == v) {
                Some((_, om)) => on_match(om, inp),
                None => MatcherResult::NoMatch,
            },
        },
        MatcherKind::Prefix { input, map } => match input_value(input, inp) {
            Err(u) => return MatcherResult::Unsupported(u),
            Ok(None) => MatcherResult::NoMatch,
            Ok(Some(v)) => {
                // Longest matching prefix first; a failing nested matcher tries shorter ones.
                let mut hits: Vec<&(String, OnMatch)> =
                    map.iter().filter(|(k, _)| v.starts_with(k.as_str())).collect();
                hits.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
                first_result(hits.into_iter().map(|(_, om)| om), inp)
            }
        },
        MatcherKind::Ip { input, ranges } => match input_value(input, inp) {
            Err(u) => return MatcherResult::Unsupported(u),
            Ok(None) => MatcherResult::NoMatch,
            Ok(Some(v)) => match v.parse::<std::net::IpAddr>() {
                Err(_) => MatcherResult::NoMatch,
                Ok(ip) => {
                    // Matching ranges from the most specific; `exclusive` stops the fall-back
                    // to less specific ranges (xds/type/matcher/v3/ip.proto).
                    let mut hits: Vec<(u8, &super::super::model::IpRangeMatcher)> = ranges
                        .iter()
                        .filter_map(|r| {
                            r.ranges
                                .iter()
                                .filter(|n| n.contains(&ip))
                                .map(|n| n.prefix_len())
                                .max()
                                .map(|l| (l, r))
                        })
                        .collect();
                    hits.sort_by_key(|(l, _)| std::cmp::Reverse(*l));
                    let mut out = MatcherResult::NoMatch;
                    for (_, r) in hits {
                        let res = on_match(&r.on_match, inp);
                        if res != MatcherResult::NoMatch || r.exclusive {
                            out = res;
                            break;
                        }
                    }
                    out
                }
            },
        },
        MatcherKind::List(list) => {
            let mut out = MatcherResult::NoMatch;
            for (pred, om) in list {
                match predicate(pred, inp) {
                    Err(u) => return MatcherResult::Unsupported(u),
                    Ok(false) => continue,
                    Ok(true) => {
                        let r = on_match(om, inp);
                        if r != MatcherResult::NoMatch {
                            out = r;
                            break;
                        }
                    }
                }
            }
            out
        }
    };
    match (r, &m.on_no_match) {
        (MatcherResult::NoMatch, Some(om)) => on_match(om, inp),
        (r, _) => r,
    }
}

fn first_result<'a>(oms: impl Iterator<Item = &'a OnMatch>, inp: &MatchInputs) -> MatcherResult {
    for om in oms {
        let r = on_match(om, inp);
        if r != MatcherResult::NoMatch {
            return r;
        }
    }
    MatcherResult::NoMatch
}

fn on_match(om: &OnMatch, inp: &MatchInputs) -> MatcherResult {
    match om {
        OnMatch::Action(name) => MatcherResult::Chain(name.clone()),
        OnMatch::Matcher(m) => evaluate(m, inp),
        OnMatch::Unsupported(u) => MatcherResult::Unsupported(u.clone()),
    }
}

fn predicate(p: &MatchPredicate, inp: &MatchInputs) -> Result<bool, String> {
    Ok(match p {
        MatchPredicate::Single { input, matcher } => match input_value(input, inp)? {
            None => false,
            Some(v) => match matcher {
                StringMatch::Exact(x) => v == *x,
                StringMatch::Prefix(x) => v.starts_with(x.as_str()),
                StringMatch::Suffix(x) => v.ends_with(x.as_str()),
                StringMatch::Contains(x) => v.contains(x.as_str()),
                StringMatch::Regex(r) => regex::Regex::new(&format!("^(?:{r})$"))
                    .map_err(|e| format!("regex {r:?}: {e}"))?
                    .is_match(&v),
            },
        },
        MatchPredicate::Or(v) => {
            let mut any = false;
            for x in v {
                any |= predicate(x, inp)?;
            }
            any
        }
        MatchPredicate::And(v) => {
            let mut all = true;
            for x in v {
                all &= predicate(x, inp)?;
            }
            all
        }
        MatchPredicate::Not(x) => !predicate(x, inp)?,
        MatchPredicate::Unsupported(u) => return Err(u.clone()),
    })
}
