//! Routes and policy rules: the kernel's FIB lookup, and reading `ip route` / `ip rule` text.

use std::net::IpAddr;

use ipnet::IpNet;

use super::{table, Netns};
use crate::util::mark::MarkMask;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteKind {
    Unicast,
    Local,
    Blackhole,
    Unreachable,
    Prohibit,
    Throw,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub table: u32,
    pub kind: RouteKind,
    pub dst: IpNet,
    pub dev: String,
    pub via: Option<IpAddr>,
    pub src: Option<IpAddr>,
}

/// One `ip rule`: selectors, then the table to look up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpRule {
    pub pref: u32,
    pub fwmark: Option<MarkMask>,
    pub from: Option<IpNet>,
    pub to: Option<IpNet>,
    pub iif: Option<String>,
    pub not: bool,
    pub table: u32,
    /// `None`: applies to both families (as the defaults are listed per family by `ip`).
    pub v6: Option<bool>,
}

impl IpRule {
    /// `0: lookup local`, `32766: lookup main`, `32767: lookup default`.
    pub fn defaults() -> Vec<IpRule> {
        [(0, table::LOCAL), (32766, table::MAIN), (32767, table::DEFAULT)]
            .into_iter()
            .map(|(pref, t)| IpRule {
                pref,
                fwmark: None,
                from: None,
                to: None,
                iif: None,
                not: false,
                table: t,
                v6: None,
            })
            .collect()
    }

    fn selects(&self, dst: IpAddr, src: Option<IpAddr>, mark: u32, iif: Option<&str>) -> bool {
        if self.v6.is_some_and(|v6| v6 != dst.is_ipv6()) {
            return false;
        }
        let m = self.fwmark.is_none_or(|f| mark & f.mask == f.value)
            && self.to.is_none_or(|t| t.contains(&dst))
            && self.from.is_none_or(|f| src.is_some_and(|s| f.contains(&s)) || f.prefix_len() == 0)
            && self.iif.as_deref().is_none_or(|i| iif == Some(i));
        m != self.not
    }
}

/// The outcome of a FIB lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteLookup {
    /// `None`: no route (ENETUNREACH).
    pub kind: Option<RouteKind>,
    /// Output device: `lo` for local routes.
    pub dev: String,
    pub table: u32,
    pub rule_pref: u32,
    pub dst: Option<IpNet>,
    pub src: Option<IpAddr>,
    /// The gateway (`via`), when the route has one.
    pub via: Option<IpAddr>,
}

pub(super) fn lookup(
    ns: &Netns,
    dst: IpAddr,
    src: Option<IpAddr>,
    mark: u32,
    iif: Option<&str>,
) -> RouteLookup {
    let mut rules: Vec<&IpRule> = ns.rules.iter().filter(|r| r.selects(dst, src, mark, iif)).collect();
    rules.sort_by_key(|r| r.pref);
    for rule in rules {
        let best = ns
            .routes
            .iter()
            .filter(|r| {
                r.table == rule.table && r.dst.addr().is_ipv4() == dst.is_ipv4() && r.dst.contains(&dst)
            })
            .max_by_key(|r| r.dst.prefix_len());
        let Some(route) = best else { continue };
        if route.kind == RouteKind::Throw {
            continue;
        }
        let dev = if route.kind == RouteKind::Local { "lo".to_string() } else { route.dev.clone() };
        return RouteLookup {
            kind: Some(route.kind),
            dev,
            table: route.table,
            rule_pref: rule.pref,
            dst: Some(route.dst),
            src: route.src,
            via: route.via,
        };
    }
    RouteLookup { kind: None, dev: String::new(), table: 0, rule_pref: 0, dst: None, src: None, via: None }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RouteSyntaxError {
    pub message: String,
}

fn syntax(msg: impl Into<String>) -> RouteSyntaxError {
    RouteSyntaxError { message: msg.into() }
}

fn table_number(s: &str) -> Result<u32, RouteSyntaxError> {
    Ok(match s {
        "local" => table::LOCAL,
        "main" => table::MAIN,
        "default" => table::DEFAULT,
        n => n.parse().map_err(|_| syntax(format!("unknown routing table `{n}`")))?,
    })
}

fn prefix(s: &str, v6_hint: bool) -> Result<IpNet, RouteSyntaxError> {
    if s == "default" || s == "all" {
        return Ok(if v6_hint { "::/0" } else { "0.0.0.0/0" }.parse().expect("literal"));
    }
    if let Ok(n) = s.parse::<IpNet>() {
        return Ok(n.trunc());
    }
    s.parse::<IpAddr>().map(IpNet::from).map_err(|_| syntax(format!("`{s}` is not an address or prefix")))
}

/// One line of `ip route show table all` (or an `ip route add` argument list).
/// `v6` decides what `default` means when the line does not say.
pub fn parse_ip_route(line: &str, v6: bool) -> Result<Option<Route>, RouteSyntaxError> {
    let mut words: Vec<&str> = line.split_whitespace().collect();
    if words.first() == Some(&"ip") {
        words.drain(..words.iter().position(|w| *w == "add" || *w == "replace").map_or(0, |p| p + 1));
    }
    if words.is_empty() {
        return Ok(None);
    }
    let mut kind = RouteKind::Unicast;
    let mut i = 0;
    let kinds = [
        ("local", RouteKind::Local),
        ("unicast", RouteKind::Unicast),
        ("blackhole", RouteKind::Blackhole),
        ("unreachable", RouteKind::Unreachable),
        ("prohibit", RouteKind::Prohibit),
        ("throw", RouteKind::Throw),
    ];
    if let Some((_, k)) = kinds.iter().find(|(n, _)| *n == words[0]) {
        kind = *k;
        i = 1;
    } else if matches!(words[0], "broadcast" | "multicast" | "anycast" | "nat") {
        return Ok(None); // not used for unicast forwarding decisions here
    }
    let dst_word = words.get(i).ok_or_else(|| syntax("route without a destination"))?;
    let v6 = v6 || dst_word.contains(':');
    let dst = prefix(dst_word, v6)?;
    let mut r = Route { table: table::MAIN, kind, dst, dev: String::new(), via: None, src: None };
    if kind == RouteKind::Local {
        r.table = table::LOCAL;
    }
    let mut it = words[i + 1..].iter();
    while let Some(w) = it.next() {
        let mut val = || it.next().copied().ok_or_else(|| syntax(format!("`{w}` needs a value")));
        match *w {
            "dev" | "oif" => r.dev = val()?.to_string(),
            "via" => r.via = Some(val()?.parse().map_err(|_| syntax("bad `via` address"))?),
            "src" => r.src = Some(val()?.parse().map_err(|_| syntax("bad `src` address"))?),
            "table" => r.table = table_number(val()?)?,
            "proto" | "scope" | "metric" | "pref" | "mtu" | "advmss" | "weight" | "realm" | "expires"
            | "initcwnd" => {
                val()?;
            }
            "linkdown" | "onlink" | "dead" => {}
            other => return Err(syntax(format!("unsupported route attribute `{other}`"))),
        }
    }
    if r.dev.is_empty() && matches!(r.kind, RouteKind::Unicast | RouteKind::Local) {
        return Err(syntax("route without `dev`"));
    }
    Ok(Some(r))
}

/// One line of `ip rule show` (`32765: from all fwmark 0x539 lookup 133`) or an
/// `ip rule add` argument list.
pub fn parse_ip_rule(line: &str, v6: bool) -> Result<Option<IpRule>, RouteSyntaxError> {
    let mut words: Vec<&str> = line.split_whitespace().collect();
    if words.first() == Some(&"ip") {
        words.drain(..words.iter().position(|w| *w == "add").map_or(0, |p| p + 1));
    }
    if words.is_empty() {
        return Ok(None);
    }
    let mut rule = IpRule {
        pref: 32765,
        fwmark: None,
        from: None,
        to: None,
        iif: None,
        not: false,
        table: table::MAIN,
        v6: Some(v6),
    };
    if let Some(p) = words[0].strip_suffix(':') {
        rule.pref = p.parse().map_err(|_| syntax(format!("bad rule preference `{p}`")))?;
        words.remove(0);
    }
    let mut it = words.iter();
    let mut has_action = false;
    while let Some(w) = it.next() {
        let mut val = || it.next().copied().ok_or_else(|| syntax(format!("`{w}` needs a value")));
        match *w {
            "not" => rule.not = true,
            "from" => {
                let v = val()?;
                rule.from = if v == "all" { None } else { Some(prefix(v, v6)?) };
            }
            "to" => {
                let v = val()?;
                rule.to = if v == "all" { None } else { Some(prefix(v, v6)?) };
            }
            "fwmark" => {
                let v = val()?;
                let (value, mask) = match v.split_once('/') {
                    Some((a, b)) => (a, b),
                    None => (v, "0xffffffff"),
                };
                let num = |s: &str| crate::util::num::parse_u32(s).map_err(syntax);
                rule.fwmark = Some(MarkMask { value: num(value)?, mask: num(mask)? });
            }
            "iif" => rule.iif = Some(val()?.to_string()),
            "lookup" | "table" => {
                rule.table = table_number(val()?)?;
                has_action = true;
            }
            "pref" | "priority" | "preference" => {
                rule.pref = val()?.parse().map_err(|_| syntax("bad preference"))?
            }
            "oif"
            | "uidrange"
            | "ipproto"
            | "sport"
            | "dport"
            | "tos"
            | "dsfield"
            | "realms"
            | "suppress_prefixlength"
            | "suppress_ifgroup"
            | "protocol" => {
                return Err(syntax(format!("ip rule selector `{w}` is not supported")));
            }
            other => return Err(syntax(format!("unknown ip rule word `{other}`"))),
        }
    }
    if !has_action {
        return Err(syntax("ip rule without `lookup TABLE`"));
    }
    Ok(Some(rule))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ip_rule_show() {
        let r = parse_ip_rule("32765:\tfrom all fwmark 0x539 lookup 133", false).unwrap().unwrap();
        assert_eq!(
            (r.pref, r.table, r.fwmark),
            (32765, 133, Some(MarkMask { value: 0x539, mask: u32::MAX }))
        );
        let r = parse_ip_rule("0:\tfrom all lookup local", false).unwrap().unwrap();
        assert_eq!(r.table, table::LOCAL);
    }

    #[test]
    fn reads_ip_route_show() {
        let r = parse_ip_route("local default dev lo table 133 scope host", false).unwrap().unwrap();
        assert_eq!((r.kind, r.table, r.dst.to_string()), (RouteKind::Local, 133, "0.0.0.0/0".to_string()));
        let r = parse_ip_route("default via 10.244.0.1 dev eth0", false).unwrap().unwrap();
        assert_eq!(r.via, Some("10.244.0.1".parse().unwrap()));
        let r = parse_ip_route("local ::/0 dev lo table 133", true).unwrap().unwrap();
        assert!(r.dst.addr().is_ipv6());
        assert!(parse_ip_route("10.0.0.0/8 dev eth0 frobnicate 1", false).is_err());
    }

    #[test]
    fn tproxy_mark_makes_everything_local() {
        let mut ns = Netns::pod(&["10.244.0.5/24".parse().unwrap()]);
        ns.rules.push(parse_ip_rule("fwmark 0x539 lookup 133", false).unwrap().unwrap());
        ns.routes.push(parse_ip_route("local default dev lo table 133", false).unwrap().unwrap());
        let r = ns.route("10.96.0.10".parse().unwrap(), None, 0x539, Some("eth0"));
        assert_eq!((r.kind, r.table), (Some(RouteKind::Local), 133));
        let r = ns.route("10.96.0.10".parse().unwrap(), None, 0, Some("eth0"));
        assert_eq!((r.kind, r.table), (Some(RouteKind::Unicast), table::MAIN));
    }
}
