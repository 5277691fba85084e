//! Reading `nft -a monitor trace` (nft 1.0.6) into per-probe step lists.
//!
//! Semantics doc §11: one event line per rule that decided something (with `# handle N`), one per
//! base-chain policy, a `packet:` line at the start of every base chain; nothing for falling off
//! the end of a user chain; a new trace id on loopback re-entry. Events are grouped by trace id,
//! each id's events are attributed to the probe whose source port the latest `packet:` line of
//! that id shows.

use std::collections::{BTreeMap, BTreeSet};

/// One kernel (or meshpath) step in comparable form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub hook: String,
    pub table: String,
    pub chain: String,
    /// `Some(position)` for a rule (1-based), `None` for the chain policy.
    pub rule: Option<usize>,
    /// accept, drop, continue, jump, goto, return.
    pub verdict: String,
    /// Jump/goto target chain.
    pub target: Option<String>,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.rule {
            Some(n) => format!("rule {n}"),
            None => "policy".to_string(),
        };
        write!(f, "{:<11} {:<8} {:<20} {:<8} {}", self.hook, self.table, self.chain, what, self.verdict)?;
        if let Some(t) = &self.target {
            write!(f, " {t}")?;
        }
        Ok(())
    }
}

/// A kernel event before rule handles are resolved to positions.
#[derive(Debug, Clone)]
pub struct RawStep {
    pub family: String,
    pub hook: String,
    pub table: String,
    pub chain: String,
    pub handle: Option<u64>,
    pub verdict: String,
    pub target: Option<String>,
}

/// Where the packet was last seen by our own late chains (input/forward/postrouting).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoint {
    /// "local" (reached input), "forwarded", "out" (postrouting on a non-loopback device).
    pub disposition: Option<String>,
    pub iif: Option<String>,
    pub oif: Option<String>,
    pub dst: Option<String>,
    pub mark: u32,
}

#[derive(Debug, Clone, Default)]
pub struct KernelTrace {
    pub steps: Vec<RawStep>,
    pub end: Endpoint,
    /// Number of trace segments (base-chain passes of our own table) seen, for diagnostics.
    pub segments: usize,
    /// Lines attributed to this probe, verbatim, for the mismatch report.
    pub lines: Vec<String>,
}

#[derive(Debug, Clone, Default)]
struct PacketInfo {
    sport: Option<u16>,
    iif: Option<String>,
    oif: Option<String>,
    daddr: Option<String>,
    dport: Option<u16>,
    mark: u32,
}

fn word_after<'a>(words: &[&'a str], key: &[&str]) -> Option<&'a str> {
    let n = key.len();
    (0..words.len().saturating_sub(n))
        .find_map(|i| (words[i..i + n] == *key).then(|| words.get(i + n).copied()).flatten())
}

fn parse_packet(rest: &str) -> PacketInfo {
    let words: Vec<&str> = rest.split_whitespace().collect();
    let unq = |s: &str| s.trim_matches('"').to_string();
    let sport = word_after(&words, &["tcp", "sport"])
        .or_else(|| word_after(&words, &["udp", "sport"]))
        .and_then(|p| p.parse().ok());
    let dport = word_after(&words, &["tcp", "dport"])
        .or_else(|| word_after(&words, &["udp", "dport"]))
        .and_then(|p| p.parse().ok());
    let daddr = word_after(&words, &["ip", "daddr"])
        .or_else(|| word_after(&words, &["ip6", "daddr"]))
        .map(str::to_string);
    let mark = word_after(&words, &["meta", "mark"])
        .and_then(|m| u32::from_str_radix(m.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0);
    PacketInfo {
        sport,
        iif: word_after(&words, &["iif"]).map(unq),
        oif: word_after(&words, &["oif"]).map(unq),
        daddr,
        dport,
        mark,
    }
}

const BUILTIN: [&str; 5] = ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];

fn own_chain_hook(chain: &str) -> &'static str {
    match chain {
        "probe_pre" => "PREROUTING",
        "probe_out" => "OUTPUT",
        "end_in" => "INPUT",
        "end_fwd" => "FORWARD",
        _ => "POSTROUTING",
    }
}

/// Split the monitor output into one trace per probe source port. `origin_hook` says where each
/// probe starts (OUTPUT or PREROUTING); a second pass through our origin chain for the same
/// port is a retransmission and is ignored (only the first packet of a connection counts).
pub fn split(
    lines: &[String],
    own_table: &str,
    origin_hook: &BTreeMap<u16, &'static str>,
) -> BTreeMap<u16, KernelTrace> {
    #[derive(Default)]
    struct IdState {
        sport: Option<u16>,
        hook: String,
        ignore: bool,
    }
    let mut ids: BTreeMap<String, IdState> = BTreeMap::new();
    let mut out: BTreeMap<u16, KernelTrace> = BTreeMap::new();
    let mut started: BTreeSet<u16> = BTreeSet::new();
    let mut closed: BTreeSet<u16> = BTreeSet::new();
    for line in lines {
        let Some(rest) = line.strip_prefix("trace id ") else {
            continue;
        };
        let mut it = rest.splitn(5, ' ');
        let (Some(id), Some(family), Some(table), Some(chain), Some(rest)) =
            (it.next(), it.next(), it.next(), it.next(), it.next())
        else {
            continue;
        };
        let st = ids.entry(id.to_string()).or_default();
        let own = table == own_table;
        if let Some(pkt) = rest.strip_prefix("packet: ") {
            let info = parse_packet(pkt);
            st.sport = info.sport;
            st.hook = if own {
                own_chain_hook(chain).to_string()
            } else if BUILTIN.contains(&chain) {
                chain.to_string()
            } else {
                st.hook.clone()
            };
            let Some(sport) = info.sport else {
                st.ignore = true;
                continue;
            };
            let Some(origin) = origin_hook.get(&sport) else {
                st.ignore = true;
                continue;
            };
            let fresh =
                own && (chain == "probe_out" || chain == "probe_pre" && info.iif.as_deref() != Some("lo"));
            if fresh {
                // A fresh packet from the probe's socket (or the peer): the first one starts
                // the probe's trace, any later one is a retransmission, after which nothing
                // more (e.g. its loopback re-entry) belongs to the probe.
                if started.insert(sport) && own_chain_hook(chain) == *origin {
                    out.entry(sport).or_default();
                } else {
                    closed.insert(sport);
                }
            }
            st.ignore = closed.contains(&sport);
            if st.ignore {
                continue;
            }
            let Some(trace) = out.get_mut(&sport) else {
                st.ignore = true;
                continue;
            };
            trace.lines.push(line.clone());
            if own {
                trace.segments += 1;
                let end = &mut trace.end;
                let dst = match (&info.daddr, info.dport) {
                    (Some(a), Some(p)) if a.contains(':') => Some(format!("[{a}]:{p}")),
                    (Some(a), Some(p)) => Some(format!("{a}:{p}")),
                    _ => None,
                };
                match chain {
                    "end_in" => {
                        end.disposition = Some("local".into());
                        end.iif = info.iif.clone();
                        end.oif = None;
                        end.dst = dst;
                        end.mark = info.mark;
                    }
                    "end_fwd" => {
                        end.disposition = Some("forwarded".into());
                        end.iif = info.iif.clone();
                        end.oif = info.oif.clone();
                        end.dst = dst;
                        end.mark = info.mark;
                    }
                    "end_post" if info.oif.as_deref() != Some("lo") => {
                        end.disposition = Some("out".into());
                        end.oif = info.oif.clone();
                        end.dst = dst;
                        end.mark = info.mark;
                    }
                    _ => {}
                }
            }
            continue;
        }
        if st.ignore {
            continue;
        }
        let Some(trace) = st.sport.and_then(|s| out.get_mut(&s)) else {
            continue;
        };
        trace.lines.push(line.clone());
        if own {
            // The mark travels with each event (`... meta mark 0x00000539`, absent when 0); the
            // policy line of an end chain tells the mark the packet ended with.
            if rest.starts_with("policy ")
                && matches!(chain, "end_in" | "end_fwd" | "end_post")
                && trace.end.disposition.is_some()
            {
                let words: Vec<&str> = rest.split_whitespace().collect();
                trace.end.mark = word_after(&words, &["meta", "mark"])
                    .and_then(|m| u32::from_str_radix(m.trim_start_matches("0x"), 16).ok())
                    .unwrap_or(0);
            }
            continue;
        }
        if !BUILTIN.contains(&chain) && st.hook.is_empty() {
            continue;
        }
        let hook = if BUILTIN.contains(&chain) { chain.to_string() } else { st.hook.clone() };
        if let Some(p) = rest.strip_prefix("policy ") {
            trace.steps.push(RawStep {
                family: family.into(),
                hook,
                table: table.into(),
                chain: chain.into(),
                handle: None,
                verdict: p.split_whitespace().next().unwrap_or("").to_string(),
                target: None,
            });
        } else if rest.starts_with("rule ") || rest.starts_with("unknown rule handle ") {
            // `rule <text> # handle N (verdict X [target])`, or, for rules loaded after the
            // monitor started, `unknown rule handle N (verdict X [target])`.
            let handle = rest
                .rsplit_once("(verdict ")
                .and_then(|(before, _)| before.rsplit_once("handle "))
                .and_then(|(_, h)| h.split_whitespace().next())
                .and_then(|h| h.parse().ok());
            let verdict = rest
                .rsplit_once("(verdict ")
                .and_then(|(_, v)| v.split_once(')'))
                .map(|(v, _)| v)
                .unwrap_or("");
            let mut vw = verdict.split_whitespace();
            let word = vw.next().unwrap_or("").to_string();
            let target = vw.next().map(str::to_string);
            trace.steps.push(RawStep {
                family: family.into(),
                hook,
                table: table.into(),
                chain: chain.into(),
                handle,
                verdict: word,
                target,
            });
        }
    }
    out
}

/// Rule handle -> 1-based position for each chain, from `nft -a list chain` output.
pub fn positions(listing: &str) -> BTreeMap<u64, usize> {
    let mut map = BTreeMap::new();
    let mut pos = 0;
    for line in listing.lines() {
        let t = line.trim();
        if t.starts_with("chain ") || t.starts_with("table ") || t.starts_with("type ") {
            continue;
        }
        if let Some((_, h)) = t.rsplit_once("# handle ") {
            if let Ok(h) = h.trim().parse::<u64>() {
                pos += 1;
                map.insert(h, pos);
            }
        }
    }
    map
}

/// Resolve handles to positions; `lookup(family, table, chain)` lists a chain.
pub fn resolve(
    raw: &[RawStep],
    lookup: &mut dyn FnMut(&str, &str, &str) -> BTreeMap<u64, usize>,
) -> Vec<Step> {
    raw.iter()
        .map(|r| Step {
            hook: r.hook.clone(),
            table: r.table.clone(),
            chain: r.chain.clone(),
            rule: r.handle.map(|h| lookup(&r.family, &r.table, &r.chain).get(&h).copied().unwrap_or(0)),
            verdict: r.verdict.clone(),
            target: r.target.clone(),
        })
        .collect()
}

/// Whether the kernel dropped the packet somewhere along the way.
pub fn dropped(steps: &[Step]) -> bool {
    steps.iter().any(|s| s.verdict == "drop")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real `nft -a monitor trace` lines (packet headers shortened): an app's SYN to its own
    /// pod address, redirected by nat OUTPUT, re-entering on lo with a new trace id; a later
    /// retransmission of the same SYN; a packet of no probe.
    const SAMPLE: &str = r#"trace id 82736cfe inet meshpath_trace probe_out packet: oif "lo" ip saddr 10.244.0.5 ip daddr 10.244.0.5 ip protocol tcp tcp sport 30002 tcp dport 80 tcp flags == syn
trace id 82736cfe inet meshpath_trace probe_out rule tcp sport 30000-39999 tcp flags syn / syn,ack meta nftrace set 1 # handle 2 (verdict continue)
trace id 82736cfe inet meshpath_trace probe_out policy accept 
trace id 82736cfe ip raw OUTPUT packet: oif "lo" ip saddr 10.244.0.5 ip daddr 10.244.0.5 tcp sport 30002 tcp dport 80 tcp flags == syn
trace id 82736cfe ip raw OUTPUT unknown rule handle 6 (verdict jump ISTIO_OUTPUT_DNS)
trace id 82736cfe ip raw OUTPUT policy accept 
trace id 82736cfe ip mangle OUTPUT packet: oif "lo" ip saddr 10.244.0.5 ip daddr 10.244.0.5 tcp sport 30002 tcp dport 80 tcp flags == syn
trace id 82736cfe ip mangle OUTPUT unknown rule handle 14 (verdict continue) meta mark 0x0000053a
trace id 82736cfe ip mangle OUTPUT policy accept meta mark 0x0000053a
trace id 82736cfe ip nat OUTPUT packet: oif "lo" ip saddr 10.244.0.5 ip daddr 10.244.0.5 tcp sport 30002 tcp dport 80 tcp flags == syn
trace id 82736cfe ip nat OUTPUT unknown rule handle 12 (verdict jump ISTIO_OUTPUT) meta mark 0x0000053a
trace id 82736cfe ip nat ISTIO_OUTPUT unknown rule handle 23 (verdict jump ISTIO_IN_REDIRECT) meta mark 0x0000053a
trace id 82736cfe ip nat ISTIO_IN_REDIRECT unknown rule handle 20 (verdict accept) meta mark 0x0000053a
trace id 82736cfe inet meshpath_trace end_post packet: oif "lo" ip saddr 10.244.0.5 ip daddr 127.0.0.1 tcp sport 30002 tcp dport 15006 tcp flags == syn
trace id 82736cfe inet meshpath_trace end_post rule ct state new counter packets 3 bytes 180 # handle 9 (verdict continue) meta mark 0x0000053a
trace id 82736cfe inet meshpath_trace end_post policy accept meta mark 0x0000053a
trace id 11111111 inet meshpath_trace probe_out packet: oif "eth0" ip saddr 10.244.0.5 ip daddr 10.244.0.1 udp sport 39990 udp dport 9
trace id 11111111 ip raw OUTPUT policy accept 
trace id 7092e08a inet meshpath_trace probe_pre packet: iif "lo" @ll,0,112 0x800 ip saddr 10.244.0.5 ip daddr 127.0.0.1 tcp sport 30002 tcp dport 15006 tcp flags == syn
trace id 7092e08a inet meshpath_trace probe_pre policy accept meta mark 0x0000053a
trace id 7092e08a ip mangle PREROUTING packet: iif "lo" @ll,0,112 0x800 ip saddr 10.244.0.5 ip daddr 127.0.0.1 tcp sport 30002 tcp dport 15006 tcp flags == syn
trace id 7092e08a ip mangle PREROUTING rule meta l4proto tcp counter packets 0 bytes 0 jump ISTIO_INBOUND # handle 10 (verdict jump ISTIO_INBOUND) meta mark 0x0000053a
trace id 7092e08a ip mangle PREROUTING policy accept meta mark 0x0000053a
trace id 7092e08a ip mangle INPUT packet: iif "lo" @ll,0,112 0x800 ip saddr 10.244.0.5 ip daddr 127.0.0.1 tcp sport 30002 tcp dport 15006 tcp flags == syn
trace id 7092e08a ip mangle INPUT policy accept meta mark 0x0000053a
trace id 7092e08a inet meshpath_trace end_in packet: iif "lo" @ll,0,112 0x800 ip saddr 10.244.0.5 ip daddr 127.0.0.1 tcp sport 30002 tcp dport 15006 tcp flags == syn
trace id 7092e08a inet meshpath_trace end_in policy accept meta mark 0x0000053a
trace id 82736cfe inet meshpath_trace probe_out packet: oif "lo" ip saddr 10.244.0.5 ip daddr 10.244.0.5 ip protocol tcp tcp sport 30002 tcp dport 80 tcp flags == syn
trace id 82736cfe ip raw OUTPUT policy drop 
"#;

    const LISTING: &str = "table ip nat {
\tchain ISTIO_OUTPUT { # handle 5
\t\tip saddr 127.0.0.6 oifname \"lo\" counter packets 0 bytes 0 return # handle 21
\t\toifname \"lo\" ip daddr != 127.0.0.1 skuid 1337 counter packets 0 bytes 0 jump ISTIO_IN_REDIRECT # handle 23
\t}
}
";

    #[test]
    fn reads_monitor_lines_into_steps() {
        let lines: Vec<String> = SAMPLE.lines().map(str::to_string).collect();
        let origin = BTreeMap::from([(30002u16, "OUTPUT")]);
        let traces = split(&lines, "meshpath_trace", &origin);
        assert_eq!(traces.keys().copied().collect::<Vec<_>>(), vec![30002]);
        let t = &traces[&30002];
        let mut lookup = |_: &str, _: &str, chain: &str| {
            if chain == "ISTIO_OUTPUT" {
                positions(LISTING)
            } else {
                BTreeMap::from([(6, 1), (12, 1), (14, 3), (20, 1), (10, 2)])
            }
        };
        let steps = resolve(&t.steps, &mut lookup);
        let shown: Vec<String> =
            steps.iter().map(|s| s.to_string().split_whitespace().collect::<Vec<_>>().join(" ")).collect();
        assert_eq!(
            shown,
            vec![
                "OUTPUT raw OUTPUT rule 1 jump ISTIO_OUTPUT_DNS",
                "OUTPUT raw OUTPUT policy accept",
                "OUTPUT mangle OUTPUT rule 3 continue",
                "OUTPUT mangle OUTPUT policy accept",
                "OUTPUT nat OUTPUT rule 1 jump ISTIO_OUTPUT",
                "OUTPUT nat ISTIO_OUTPUT rule 2 jump ISTIO_IN_REDIRECT",
                "OUTPUT nat ISTIO_IN_REDIRECT rule 1 accept",
                "PREROUTING mangle PREROUTING rule 2 jump ISTIO_INBOUND",
                "PREROUTING mangle PREROUTING policy accept",
                "INPUT mangle INPUT policy accept",
            ]
        );
        // The retransmission's `policy drop` is not part of the probe.
        assert!(!dropped(&steps));
        assert_eq!(t.end.disposition.as_deref(), Some("local"));
        assert_eq!(t.end.iif.as_deref(), Some("lo"));
        assert_eq!(t.end.dst.as_deref(), Some("127.0.0.1:15006"));
        assert_eq!(t.end.mark, 0x53a);
    }
}
