//! `xds.type.matcher.v3.Matcher` as used by `Listener.filter_chain_matcher`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{CidrRange, Scalar, Str};

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Matcher<'a> {
    #[serde(borrow, alias = "matcherList")]
    pub matcher_list: Option<MatcherList<'a>>,
    #[serde(borrow, alias = "matcherTree")]
    pub matcher_tree: Option<MatcherTree<'a>>,
    #[serde(borrow, alias = "onNoMatch")]
    pub on_no_match: Option<Box<OnMatch<'a>>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct MatcherList<'a> {
    #[serde(borrow, default, deserialize_with = "crate::envoy::raw::nullable")]
    pub matchers: Vec<FieldMatcher<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct FieldMatcher<'a> {
    #[serde(borrow)]
    pub predicate: Option<MatchPredicate<'a>>,
    #[serde(borrow, alias = "onMatch")]
    pub on_match: Option<OnMatch<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct MatchPredicate<'a> {
    #[serde(borrow, alias = "singlePredicate")]
    pub single_predicate: Option<SinglePredicate<'a>>,
    #[serde(borrow, alias = "orMatcher")]
    pub or_matcher: Option<PredicateList<'a>>,
    #[serde(borrow, alias = "andMatcher")]
    pub and_matcher: Option<PredicateList<'a>>,
    #[serde(borrow, alias = "notMatcher")]
    pub not_matcher: Option<Box<MatchPredicate<'a>>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PredicateList<'a> {
    #[serde(borrow, default, deserialize_with = "crate::envoy::raw::nullable")]
    pub predicate: Vec<MatchPredicate<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SinglePredicate<'a> {
    #[serde(borrow)]
    pub input: Option<TypedExtension<'a>>,
    #[serde(borrow, alias = "valueMatch")]
    pub value_match: Option<StringMatcher<'a>>,
    #[serde(borrow, alias = "customMatch")]
    pub custom_match: Option<TypedExtension<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct StringMatcher<'a> {
    #[serde(borrow)]
    pub exact: Option<Str<'a>>,
    #[serde(borrow)]
    pub prefix: Option<Str<'a>>,
    #[serde(borrow)]
    pub suffix: Option<Str<'a>>,
    #[serde(borrow)]
    pub contains: Option<Str<'a>>,
    #[serde(borrow, alias = "safeRegex")]
    pub safe_regex: Option<Regex<'a>>,
    #[serde(borrow, default, alias = "ignoreCase")]
    pub ignore_case: Scalar<'a>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Regex<'a> {
    #[serde(borrow)]
    pub regex: Option<Str<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct MatcherTree<'a> {
    #[serde(borrow)]
    pub input: Option<TypedExtension<'a>>,
    #[serde(borrow, alias = "exactMatchMap")]
    pub exact_match_map: Option<MatchMap<'a>>,
    #[serde(borrow, alias = "prefixMatchMap")]
    pub prefix_match_map: Option<MatchMap<'a>>,
    #[serde(borrow, alias = "customMatch")]
    pub custom_match: Option<TypedExtension<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct MatchMap<'a> {
    #[serde(borrow, default, deserialize_with = "crate::envoy::raw::nullable")]
    pub map: BTreeMap<String, OnMatch<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct OnMatch<'a> {
    #[serde(borrow)]
    pub matcher: Option<Box<Matcher<'a>>>,
    #[serde(borrow)]
    pub action: Option<TypedExtension<'a>>,
    #[serde(borrow, default, alias = "keepMatching")]
    pub keep_matching: Scalar<'a>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct TypedExtension<'a> {
    #[serde(borrow)]
    pub name: Option<Str<'a>>,
    #[serde(borrow, alias = "typedConfig")]
    pub typed_config: Option<MatcherTyped<'a>>,
}

/// Union of the typed configs found in matcher trees: inputs (type only), `StringValue`
/// actions (`value`), and `IPMatcher` (`range_matchers`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MatcherTyped<'a> {
    #[serde(rename = "@type", borrow)]
    pub type_url: Option<Str<'a>>,
    #[serde(borrow)]
    pub value: Option<Str<'a>>,
    #[serde(
        borrow,
        default,
        deserialize_with = "crate::envoy::raw::nullable",
        alias = "rangeMatchers"
    )]
    pub range_matchers: Vec<RangeMatcher<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RangeMatcher<'a> {
    #[serde(borrow, default, deserialize_with = "crate::envoy::raw::nullable")]
    pub ranges: Vec<CidrRange<'a>>,
    #[serde(borrow, alias = "onMatch")]
    pub on_match: Option<OnMatch<'a>>,
    #[serde(borrow, default)]
    pub exclusive: Scalar<'a>,
}
