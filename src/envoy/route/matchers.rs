//! Request matchers shared by routes and virtual clusters: string, header, query-parameter,
//! runtime-fraction and dynamic-metadata matchers (Envoy: source/common/router/config_impl.cc, route selection;
//! E:source/common/http/header_utility.h, E:source/common/common/matchers.cc).

use serde::de::{self, Deserializer};
use serde::Deserialize;

use super::de::{bool_lenient, enum_index, i64_lenient, u32_lenient};
pub(crate) use super::header_map::HeaderMap;
pub(crate) use super::metadata::{Metadata, MetadataMatcher, StructValue};
use super::re2::Re2;

/// `envoy.type.matcher.v3.RegexMatcher` (`google_re2` engine, RE2 full match).
#[derive(Debug, Clone)]
pub struct RegexMatcher(pub Re2);

impl<'de> Deserialize<'de> for RegexMatcher {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            regex: String,
        }
        let raw = Raw::deserialize(d)?;
        Re2::new(&raw.regex).map(RegexMatcher).map_err(de::Error::custom)
    }
}

/// `envoy.type.matcher.v3.StringMatcher`.
#[derive(Debug, Clone)]
pub struct StringMatcher {
    pub pattern: StringPattern,
    /// Applies to exact/prefix/suffix/contains, not to regex.
    pub ignore_case: bool,
}

/// The one-of of a [`StringMatcher`].
#[derive(Debug, Clone)]
pub enum StringPattern {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    SafeRegex(Re2),
}

impl StringMatcher {
    /// Whether `value` satisfies the matcher.
    pub fn matches(&self, value: &str) -> bool {
        let fold = |s: &str| {
            if self.ignore_case {
                s.to_ascii_lowercase()
            } else {
                s.to_string()
            }
        };
        match &self.pattern {
            StringPattern::Exact(e) => fold(value) == fold(e),
            StringPattern::Prefix(p) => fold(value).starts_with(&fold(p)),
            StringPattern::Suffix(s) => fold(value).ends_with(&fold(s)),
            StringPattern::Contains(c) => fold(value).contains(&fold(c)),
            StringPattern::SafeRegex(r) => r.full_match(value),
        }
    }

    /// The proto field name of the pattern (`exact`, `prefix`, ...), as router_check_tool prints.
    pub fn kind(&self) -> &'static str {
        match self.pattern {
            StringPattern::Exact(_) => "exact",
            StringPattern::Prefix(_) => "prefix",
            StringPattern::Suffix(_) => "suffix",
            StringPattern::Contains(_) => "contains",
            StringPattern::SafeRegex(_) => "safe_regex",
        }
    }
}

impl<'de> Deserialize<'de> for StringMatcher {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            exact: Option<String>,
            prefix: Option<String>,
            suffix: Option<String>,
            contains: Option<String>,
            #[serde(alias = "safeRegex")]
            safe_regex: Option<RegexMatcher>,
            #[serde(default, alias = "ignoreCase", deserialize_with = "bool_lenient")]
            ignore_case: bool,
        }
        let r = Raw::deserialize(d)?;
        let pattern = if let Some(v) = r.exact {
            StringPattern::Exact(v)
        } else if let Some(v) = r.prefix {
            StringPattern::Prefix(v)
        } else if let Some(v) = r.suffix {
            StringPattern::Suffix(v)
        } else if let Some(v) = r.contains {
            StringPattern::Contains(v)
        } else if let Some(v) = r.safe_regex {
            StringPattern::SafeRegex(v.0)
        } else {
            return Err(de::Error::custom(
                "string matcher needs one of exact, prefix, suffix, contains, safe_regex",
            ));
        };
        Ok(StringMatcher { pattern, ignore_case: r.ignore_case })
    }
}

/// `envoy.config.route.v3.HeaderMatcher`.
#[derive(Debug, Clone)]
pub struct HeaderMatcher {
    /// Header name as configured (looked up case-insensitively).
    pub name: String,
    pub rule: HeaderRule,
    pub invert_match: bool,
    pub treat_missing_header_as_empty: bool,
}

/// The `header_match_specifier` one-of.
#[derive(Debug, Clone)]
pub enum HeaderRule {
    /// Deprecated `exact_match`; an empty expected value matches any value.
    ExactMatch(String),
    SafeRegexMatch(Re2),
    /// `[start, end)` on the value parsed as a signed 64-bit integer.
    Range {
        start: i64,
        end: i64,
    },
    /// `present_match` (or no specifier at all, which means "present").
    Present(bool),
    PrefixMatch(String),
    SuffixMatch(String),
    ContainsMatch(String),
    StringMatch(StringMatcher),
}

impl HeaderMatcher {
    /// A presence matcher for `name`.
    pub fn present(name: &str) -> HeaderMatcher {
        HeaderMatcher {
            name: name.to_string(),
            rule: HeaderRule::Present(true),
            invert_match: false,
            treat_missing_header_as_empty: false,
        }
    }

    /// Envoy's `HeaderUtility::matchHeaders` for one matcher: all values of the header are
    /// joined with `,` before matching.
    pub fn matches(&self, headers: &HeaderMap) -> bool {
        let value = headers.get_joined(&self.name);
        if let HeaderRule::Present(present) = self.rule {
            if value.is_none() && !self.treat_missing_header_as_empty {
                return self.invert_match == present;
            }
            return present != self.invert_match;
        }
        let value = match value {
            Some(v) => v,
            None if self.treat_missing_header_as_empty => String::new(),
            None => return false,
        };
        self.specific_match(&value) != self.invert_match
    }

    fn specific_match(&self, value: &str) -> bool {
        match &self.rule {
            HeaderRule::ExactMatch(e) => e.is_empty() || value == e,
            HeaderRule::SafeRegexMatch(r) => r.full_match(value),
            HeaderRule::Range { start, end } => {
                value.trim().parse::<i64>().is_ok_and(|v| *start <= v && v < *end)
            }
            HeaderRule::Present(p) => *p,
            HeaderRule::PrefixMatch(p) => value.starts_with(p.as_str()),
            HeaderRule::SuffixMatch(s) => value.ends_with(s.as_str()),
            HeaderRule::ContainsMatch(c) => value.contains(c.as_str()),
            HeaderRule::StringMatch(m) => m.matches(value),
        }
    }

    /// The name router_check_tool uses for the specifier (`string_match.exact`, ...).
    pub fn kind(&self) -> String {
        match &self.rule {
            HeaderRule::ExactMatch(_) => "exact_match".into(),
            HeaderRule::SafeRegexMatch(_) => "safe_regex_match".into(),
            HeaderRule::Range { .. } => "range_match".into(),
            HeaderRule::Present(_) => "present_match".into(),
            HeaderRule::PrefixMatch(_) => "prefix_match".into(),
            HeaderRule::SuffixMatch(_) => "suffix_match".into(),
            HeaderRule::ContainsMatch(_) => "contains_match".into(),
            HeaderRule::StringMatch(m) => format!("string_match.{}", m.kind()),
        }
    }
}

#[derive(Deserialize)]
struct RawRange {
    #[serde(default, deserialize_with = "i64_lenient")]
    start: i64,
    #[serde(default, deserialize_with = "i64_lenient")]
    end: i64,
}

impl<'de> Deserialize<'de> for HeaderMatcher {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            name: String,
            #[serde(alias = "exactMatch")]
            exact_match: Option<String>,
            #[serde(alias = "safeRegexMatch")]
            safe_regex_match: Option<RegexMatcher>,
            #[serde(alias = "rangeMatch")]
            range_match: Option<RawRange>,
            #[serde(default, alias = "presentMatch", deserialize_with = "opt_bool")]
            present_match: Option<bool>,
            #[serde(alias = "prefixMatch")]
            prefix_match: Option<String>,
            #[serde(alias = "suffixMatch")]
            suffix_match: Option<String>,
            #[serde(alias = "containsMatch")]
            contains_match: Option<String>,
            #[serde(alias = "stringMatch")]
            string_match: Option<StringMatcher>,
            #[serde(default, alias = "invertMatch", deserialize_with = "bool_lenient")]
            invert_match: bool,
            #[serde(default, alias = "treatMissingHeaderAsEmpty", deserialize_with = "bool_lenient")]
            treat_missing_header_as_empty: bool,
        }
        fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
            bool_lenient(d).map(Some)
        }
        let r = Raw::deserialize(d)?;
        let rule = if let Some(v) = r.exact_match {
            HeaderRule::ExactMatch(v)
        } else if let Some(v) = r.safe_regex_match {
            HeaderRule::SafeRegexMatch(v.0)
        } else if let Some(v) = r.range_match {
            HeaderRule::Range { start: v.start, end: v.end }
        } else if let Some(v) = r.present_match {
            HeaderRule::Present(v)
        } else if let Some(v) = r.prefix_match {
            HeaderRule::PrefixMatch(v)
        } else if let Some(v) = r.suffix_match {
            HeaderRule::SuffixMatch(v)
        } else if let Some(v) = r.contains_match {
            HeaderRule::ContainsMatch(v)
        } else if let Some(v) = r.string_match {
            HeaderRule::StringMatch(v)
        } else {
            HeaderRule::Present(true)
        };
        Ok(HeaderMatcher {
            name: r.name,
            rule,
            invert_match: r.invert_match,
            treat_missing_header_as_empty: r.treat_missing_header_as_empty,
        })
    }
}

/// `envoy.config.route.v3.QueryParameterMatcher`.
#[derive(Debug, Clone, Deserialize)]
pub struct QueryParameterMatcher {
    pub name: String,
    #[serde(default, alias = "stringMatch")]
    pub string_match: Option<StringMatcher>,
    #[serde(default, alias = "presentMatch", deserialize_with = "super::de::opt_bool_lenient")]
    pub present_match: Option<bool>,
}

impl QueryParameterMatcher {
    /// Envoy looks at the first value of the parameter only (not URL-decoded); with
    /// `present_match` it compares presence with the expected value
    /// (E:source/common/router/config_utility.cc `QueryParameterMatcher::matches`).
    pub fn matches(&self, path: &str) -> bool {
        let value = first_query_value(path, &self.name);
        if let Some(p) = self.present_match {
            return value.is_some() == p;
        }
        let Some(value) = value else {
            return false;
        };
        match &self.string_match {
            Some(m) => m.matches(&value),
            None => true,
        }
    }
}

fn first_query_value(path: &str, name: &str) -> Option<String> {
    let (_, query) = path.split_once('?')?;
    let query = query.split('#').next().unwrap_or("");
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| v.to_string())
    })
}

/// `envoy.type.v3.FractionalPercent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FractionalPercent {
    pub numerator: u32,
    /// 100, 10 000 or 1 000 000.
    pub denominator: u32,
}

impl FractionalPercent {
    /// `ProtobufPercentHelper::evaluateFractionalPercent`: `random % denominator < numerator`.
    pub fn evaluate(&self, random_value: u64) -> bool {
        random_value % u64::from(self.denominator.max(1)) < u64::from(self.numerator)
    }
}

impl<'de> Deserialize<'de> for FractionalPercent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        fn denom<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
            const NAMES: &[&str] = &["HUNDRED", "TEN_THOUSAND", "MILLION"];
            Ok(Some([100, 10_000, 1_000_000][enum_index(d, "denominator", NAMES)?]))
        }
        #[derive(Deserialize)]
        struct Raw {
            #[serde(default, deserialize_with = "u32_lenient")]
            numerator: u32,
            #[serde(default, deserialize_with = "denom")]
            denominator: Option<u32>,
        }
        let r = Raw::deserialize(d)?;
        Ok(FractionalPercent { numerator: r.numerator, denominator: r.denominator.unwrap_or(100) })
    }
}

/// `envoy.config.core.v3.RuntimeFractionalPercent` (route `runtime_fraction`).
#[derive(Debug, Clone, Deserialize)]
pub struct RuntimeFraction {
    #[serde(alias = "defaultValue")]
    pub default_value: FractionalPercent,
    #[serde(default, alias = "runtimeKey")]
    pub runtime_key: String,
}
