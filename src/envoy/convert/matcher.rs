//! `filter_chain_matcher` conversion.

use super::super::model::{
    IpRangeMatcher, MatchInput, MatchPredicate, Matcher, MatcherKind, OnMatch, StringMatch,
};
use super::super::raw::matcher as raw;
use super::{owned, Ctx};

pub fn matcher(m: &raw::Matcher<'_>, path: &str, ctx: &mut Ctx<'_>) -> Matcher {
    let on_no_match = m
        .on_no_match
        .as_ref()
        .map(|o| Box::new(on_match(o, &format!("{path}.on_no_match"), ctx)));
    let kind = if let Some(t) = &m.matcher_tree {
        tree(t, &format!("{path}.matcher_tree"), ctx)
    } else if let Some(l) = &m.matcher_list {
        let p = format!("{path}.matcher_list");
        MatcherKind::List(
            l.matchers
                .iter()
                .enumerate()
                .map(|(i, fm)| {
                    let pp = format!("{p}.matchers[{i}]");
                    let pred = match &fm.predicate {
                        Some(pr) => predicate(pr, &format!("{pp}.predicate"), ctx),
                        None => MatchPredicate::Unsupported("missing predicate".into()),
                    };
                    let om = match &fm.on_match {
                        Some(o) => on_match(o, &format!("{pp}.on_match"), ctx),
                        None => OnMatch::Unsupported("missing on_match".into()),
                    };
                    (pred, om)
                })
                .collect(),
        )
    } else {
        MatcherKind::Empty
    };
    Matcher { kind, on_no_match }
}

fn input(t: Option<&raw::TypedExtension<'_>>) -> MatchInput {
    let url = t
        .and_then(|t| t.typed_config.as_ref())
        .and_then(|c| c.type_url.as_ref())
        .map(|u| u.as_str())
        .unwrap_or("");
    MatchInput::from_type_url(url)
}

fn tree(t: &raw::MatcherTree<'_>, path: &str, ctx: &mut Ctx<'_>) -> MatcherKind {
    let inp = input(t.input.as_ref());
    if let MatchInput::Unsupported(u) = &inp {
        ctx.note(
            format!("{path}.input"),
            None,
            format!("matcher input {u:?} is not modelled"),
        );
    }
    let map = |m: &raw::MatchMap<'_>, f: &str, ctx: &mut Ctx<'_>| {
        m.map
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    on_match(v, &format!("{path}.{f}.map[{k:?}]"), ctx),
                )
            })
            .collect::<Vec<_>>()
    };
    if let Some(m) = &t.exact_match_map {
        return MatcherKind::Exact {
            input: inp,
            map: map(m, "exact_match_map", ctx),
        };
    }
    if let Some(m) = &t.prefix_match_map {
        return MatcherKind::Prefix {
            input: inp,
            map: map(m, "prefix_match_map", ctx),
        };
    }
    if let Some(c) = &t.custom_match {
        let cfg = c.typed_config.as_ref();
        let url = cfg.and_then(|c| owned(&c.type_url)).unwrap_or_default();
        if url.ends_with("xds.type.matcher.v3.IPMatcher") {
            let p = format!("{path}.custom_match.typed_config");
            let ranges = cfg
                .map(|c| c.range_matchers.as_slice())
                .unwrap_or_default()
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let pp = format!("{p}.range_matchers[{i}]");
                    IpRangeMatcher {
                        ranges: r
                            .ranges
                            .iter()
                            .enumerate()
                            .filter_map(|(j, c)| ctx.cidr(c, &format!("{pp}.ranges[{j}]")))
                            .collect(),
                        on_match: match &r.on_match {
                            Some(o) => on_match(o, &format!("{pp}.on_match"), ctx),
                            None => OnMatch::Unsupported("missing on_match".into()),
                        },
                        exclusive: ctx.bool(&r.exclusive, &pp, "exclusive", false),
                    }
                })
                .collect();
            return MatcherKind::Ip { input: inp, ranges };
        }
        ctx.note(
            format!("{path}.custom_match"),
            None,
            format!("custom matcher {url:?} is not modelled"),
        );
        return MatcherKind::Unsupported(url);
    }
    ctx.note(path, None, "matcher_tree without a match map");
    MatcherKind::Unsupported("empty matcher_tree".into())
}

fn on_match(o: &raw::OnMatch<'_>, path: &str, ctx: &mut Ctx<'_>) -> OnMatch {
    if let Some(m) = &o.matcher {
        return OnMatch::Matcher(Box::new(matcher(m, &format!("{path}.matcher"), ctx)));
    }
    if let Some(a) = &o.action {
        let cfg = a.typed_config.as_ref();
        let url = cfg.and_then(|c| owned(&c.type_url)).unwrap_or_default();
        if let Some(v) = cfg.and_then(|c| owned(&c.value)) {
            if url.is_empty() || url.ends_with("google.protobuf.StringValue") {
                return OnMatch::Action(v);
            }
        }
        ctx.note(
            format!("{path}.action"),
            None,
            format!("matcher action {url:?} is not a filter chain name"),
        );
        return OnMatch::Unsupported(url);
    }
    OnMatch::Unsupported("on_match without matcher or action".into())
}

fn predicate(p: &raw::MatchPredicate<'_>, path: &str, ctx: &mut Ctx<'_>) -> MatchPredicate {
    if let Some(s) = &p.single_predicate {
        let inp = input(s.input.as_ref());
        let Some(v) = &s.value_match else {
            ctx.note(path, None, "single_predicate custom_match is not modelled");
            return MatchPredicate::Unsupported("custom_match".into());
        };
        let m = if let Some(x) = &v.exact {
            StringMatch::Exact(x.as_str().into())
        } else if let Some(x) = &v.prefix {
            StringMatch::Prefix(x.as_str().into())
        } else if let Some(x) = &v.suffix {
            StringMatch::Suffix(x.as_str().into())
        } else if let Some(x) = &v.contains {
            StringMatch::Contains(x.as_str().into())
        } else if let Some(r) = v.safe_regex.as_ref().and_then(|r| owned(&r.regex)) {
            StringMatch::Regex(r)
        } else {
            ctx.note(path, None, "empty value_match");
            return MatchPredicate::Unsupported("empty value_match".into());
        };
        return MatchPredicate::Single {
            input: inp,
            matcher: m,
        };
    }
    if let Some(l) = &p.or_matcher {
        return MatchPredicate::Or(
            l.predicate
                .iter()
                .map(|x| predicate(x, path, ctx))
                .collect(),
        );
    }
    if let Some(l) = &p.and_matcher {
        return MatchPredicate::And(
            l.predicate
                .iter()
                .map(|x| predicate(x, path, ctx))
                .collect(),
        );
    }
    if let Some(n) = &p.not_matcher {
        return MatchPredicate::Not(Box::new(predicate(n, path, ctx)));
    }
    MatchPredicate::Unsupported("empty predicate".into())
}
