//! The words for the library's data: a kernel event, a drop reason, a path's step and its
//! source, an ending. Every report (trace, explain, check, replay, netfilter trace) takes its
//! sentences from here, so one wording serves them all.

use std::fmt::Write as _;
use std::net::SocketAddr;

use crate::engine::evidence::IdOrigin;
use crate::engine::{
    Detail, DnsProxyAnswer, Ending, NdMessage, NeighbourProtocol, Path, Refusal, RuleStep, Sender, Step,
    Undetermined,
};
use crate::netfilter::eval::{
    Event, NatTarget, Reason, RouteStage, RuleDrop, StepKind, UnknownKind, Verdict,
};
use crate::netfilter::model::Protocol;
use crate::netns::{table, NeighbourState, RouteKind, L4};

pub fn verdict(v: Verdict) -> &'static str {
    match v {
        Verdict::Continue => "continue",
        Verdict::Jump => "jump",
        Verdict::Goto => "goto",
        Verdict::Return => "return",
        Verdict::Accept => "accept",
        Verdict::Drop => "drop",
    }
}

pub fn protocol(p: Protocol) -> String {
    match p {
        Protocol::Tcp => "tcp".into(),
        Protocol::Udp => "udp".into(),
        Protocol::Icmp => "icmp".into(),
        Protocol::Icmpv6 => "icmpv6".into(),
        Protocol::Sctp => "sctp".into(),
        Protocol::All => "ip".into(),
        Protocol::Number(n) => format!("proto {n}"),
    }
}

fn route_kind(k: RouteKind) -> &'static str {
    match k {
        RouteKind::Unicast => "unicast",
        RouteKind::Local => "local",
        RouteKind::Blackhole => "blackhole",
        RouteKind::Unreachable => "unreachable",
        RouteKind::Prohibit => "prohibit",
        RouteKind::Throw => "throw",
    }
}

fn nat_target(t: NatTarget) -> &'static str {
    match t {
        NatTarget::Redirect => "REDIRECT",
        NatTarget::Dnat => "DNAT",
        NatTarget::Snat => "SNAT",
        NatTarget::Masquerade => "MASQUERADE",
    }
}

/// What the kernel answers a connection nobody listens for.
fn no_socket_answer(proto: L4) -> &'static str {
    match proto {
        L4::Tcp => "the kernel answers RST (connection refused)",
        L4::Udp => "the kernel answers ICMP port unreachable",
        L4::Icmp | L4::Icmpv6 => "the kernel's ICMP handler takes it",
    }
}

/// A kernel event as one sentence (as `netfilter trace` lists it).
pub fn event(e: &Event) -> String {
    match e {
        Event::Route { stage: RouteStage::Output, .. } => format!("route: {}", event_in_layer(e)),
        Event::Socket { .. } => format!("socket: {}", event_in_layer(e)),
        _ => event_in_layer(e),
    }
}

/// A kernel event where the layer column already says "route" or "socket": the output route
/// and the socket found are said without that word.
fn event_in_layer(e: &Event) -> String {
    match e {
        Event::Route { stage, dst, found } => {
            let what = match stage {
                RouteStage::Output => "",
                RouteStage::RerouteAfterMangle => "re-route after mangle OUTPUT: ",
                RouteStage::RerouteAfterNat => "re-route after nat OUTPUT: ",
                RouteStage::Input => "input route: ",
            };
            match found {
                Some(r) => format!(
                    "{what}{dst} via {} ({} route {} in table {}, ip rule {})",
                    r.dev,
                    route_kind(r.kind),
                    r.prefix.map(|d| d.to_string()).unwrap_or_default(),
                    table::name(r.table),
                    r.rule_pref
                ),
                None => format!("{what}no route to {dst}"),
            }
        }
        Event::ConntrackNew { proto, src, dst, zone } => {
            let zone = if *zone != 0 { format!(" in zone {zone}") } else { String::new() };
            format!("conntrack: new {} connection {src} -> {dst}{zone}", protocol(*proto))
        }
        Event::Untracked => {
            "conntrack: not tracked (CT --notrack, or ICMPv6 neighbour discovery/MLD); nat chains are skipped"
                .into()
        }
        Event::Mark { old, new } => format!("mark {old:#x} -> {new:#x}"),
        Event::Nat { target, from, to } => {
            let side = match target {
                NatTarget::Redirect | NatTarget::Dnat => "destination",
                NatTarget::Snat | NatTarget::Masquerade => "source",
            };
            format!("{}: {side} {from} -> {to}", nat_target(*target))
        }
        Event::Loopback { src, dst } => format!("loopback: re-enters the stack on lo as {src} -> {dst}"),
        Event::Socket { proto, socket, owner } => format!("{} {socket} ({})", proto.as_str(), owner.as_str()),
        Event::NoSocket { proto, dst } => no_socket(*proto, *dst),
        Event::Tproxy { socket, owner, mark } => {
            format!("TPROXY: handed to transparent socket {socket} ({}), mark {mark:#x}", owner.as_str())
        }
        Event::Unknown { what: UnknownKind::Match, name, line } => {
            format!("match module {name} on line {line} is not modelled: assumed to match")
        }
        Event::Unknown { what: UnknownKind::Target, name, line } => {
            format!("target {name} on line {line} is not modelled: assumed to continue")
        }
    }
}

fn no_socket(proto: L4, dst: SocketAddr) -> String {
    format!("no known socket listens on {} {dst}; without one {}", proto.as_str(), no_socket_answer(proto))
}

/// Why the kernel dropped a packet (or what a delivery without a socket gets).
pub fn reason(r: &Reason) -> String {
    match r {
        Reason::Rule { at, drop } => {
            let here = format!("{} {} rule {} (line {})", at.table, at.chain, at.rule, at.line);
            match drop {
                RuleDrop::Drop => format!("DROP by {here}"),
                RuleDrop::Reject { with } => format!("REJECT (--reject-with {with}) by {here}"),
                RuleDrop::RedirectNoAddress { dev } => {
                    format!("REDIRECT by {here}: {dev} has no usable address")
                }
                RuleDrop::TproxyProtocol => format!("TPROXY by {here} handles only TCP and UDP"),
                RuleDrop::TproxyNotTransparent { socket } => {
                    format!("TPROXY by {here}: socket {socket} is not transparent; the packet is dropped silently")
                }
                RuleDrop::TproxyNoSocket { addr } => {
                    format!("TPROXY by {here}: no socket listens on {addr}; the packet is dropped silently")
                }
            }
        }
        Reason::Policy { table, chain } => format!("policy DROP of {table} {chain}"),
        Reason::NoRoute { dst, local: true } => format!("no route to {dst} (the socket call fails)"),
        Reason::NoRoute { dst, local: false } => format!("no route to {dst}"),
        Reason::Martian { dst, dev } => {
            format!("martian destination {dst} arriving on {dev} (route_localnet is off)")
        }
        Reason::NotLocal { dst } => format!("{dst} is not local and forwarding is off in this namespace"),
        Reason::KernelHandler => "delivered to the kernel's own protocol handler".into(),
        Reason::NoSocket { proto, dst } => no_socket(*proto, *dst),
        Reason::NoNeighbour { next_hop, dev } => {
            format!(
                "next hop {next_hop} on {dev} does not answer address resolution (neighbour entry FAILED)"
            )
        }
    }
}

/// A netfilter rule or policy step of a path, in a few words.
fn rule_step(r: &RuleStep) -> String {
    let s = &r.step;
    match s.kind {
        StepKind::Policy => {
            format!("{} {} {} policy {}", s.hook.as_str(), s.table, s.chain, verdict(s.verdict))
                .to_lowercase()
        }
        _ => {
            let mut out = format!(
                "{} {} {} #{} {}",
                s.hook.as_str(),
                s.table,
                s.chain,
                s.rule.unwrap_or(0),
                verdict(s.verdict)
            );
            if let Some(t) = &s.target {
                let _ = write!(out, " {t}");
            }
            out
        }
    }
}

/// A step of a path in a few words (the layer and the pod are said apart).
pub fn step(pods: &[String], s: &Step) -> String {
    match &s.detail {
        Detail::Send { sender, proto, src, dst } => {
            let who = match sender {
                Sender::Process { uid, .. } => format!("uid {uid} sends"),
                Sender::Arrives => "arrives on eth0:".to_string(),
            };
            if proto.is_icmp() {
                // ICMP has no ports.
                format!("{who} {} {} -> {}", proto.as_str(), src.ip(), dst.ip())
            } else {
                format!("{who} {} {src} -> {dst}", proto.as_str())
            }
        }
        Detail::Rule(r) => rule_step(r),
        Detail::Kernel { event: e } => event_in_layer(e),
        Detail::NeighbourResolution { next_hop, dev, protocol, entry } => {
            neighbour_resolution(*next_hop, dev, *protocol, *entry)
        }
        Detail::NeighbourMessage { message: NdMessage::Solicitation, src, dst } => {
            format!("neighbour solicitation {src} -> {dst} leaves (ICMPv6 135, untracked)")
        }
        Detail::NeighbourMessage { message: NdMessage::Advertisement, src, dst } => {
            format!("neighbour advertisement {src} -> {dst} arrives (ICMPv6 136, untracked)")
        }
        Detail::Reply { src, dst } => {
            format!("the first reply (SYN-ACK) {src} -> {dst} goes back (conntrack ESTABLISHED, reply direction)")
        }
        Detail::ToPod { to, dst } => {
            format!("leaves eth0 towards pod {} ({dst})", pods.get(*to).map_or("?", String::as_str))
        }
        Detail::Resolve { name, addr: Some(ip) } => format!("{name} resolves to {ip}"),
        Detail::Resolve { name, addr: None } => format!("{name} is not in the name table"),
        Detail::DnsProxy { name, answer } => {
            let n = name.as_deref().unwrap_or("the query");
            match answer {
                DnsProxyAnswer::Addresses { addrs } => {
                    let list: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
                    format!("pilot-agent's DNS proxy answers {n} with {}", list.join(", "))
                }
                DnsProxyAnswer::Forwards { to } => format!(
                    "pilot-agent's DNS proxy does not know {n}: forwards it to {to} (no resolv.conf given: \
                     assumed to be its nameserver, the query's original destination)"
                ),
                DnsProxyAnswer::Nameserver { to, .. } => format!(
                    "pilot-agent's DNS proxy does not know {n}: forwards it to {to}, the first nameserver \
                     of resolv.conf"
                ),
            }
        }
        Detail::ListenerAccepts { listener, orig_dst } => {
            format!("listener {} accepts the connection (original destination {orig_dst})", listener.name)
        }
        Detail::Handoff { target, matched: Some(_), .. } => {
            format!("use_original_dst hands it to listener {}", target.name)
        }
        Detail::Handoff { target, matched: None, restored } => {
            format!("no listener for {restored}: stays on {}", target.name)
        }
        Detail::FilterChain { chain, index, via } => {
            if chain.name.is_empty() {
                format!("filter chain #{} (by {via})", index.unwrap_or(0))
            } else {
                format!("filter chain {} (by {via})", chain.name)
            }
        }
        Detail::HttpRoute(h) => {
            let mut what =
                format!("{} {}{} on route config {}", h.method, h.authority, h.path, h.route_config.name);
            if let Some(vh) = &h.virtual_host {
                let _ = write!(what, ", virtual host {}", vh.name);
            }
            if let Some(r) = &h.route {
                let _ = write!(what, ", route {}", if r.name.is_empty() { &r.path } else { &r.name });
            }
            let _ = write!(what, ": {}", h.decision);
            what
        }
        Detail::Endpoint { cluster, endpoint, source, via } => {
            let from = source.map(|s| format!(" from {s}")).unwrap_or_default();
            format!("cluster {cluster} picks endpoint {endpoint}{from} ({via})")
        }
        Detail::TlsOrigination(t) => {
            let by = match &t.socket_match {
                Some(m) => format!("transport_socket_matches {m}"),
                None => "transport_socket".to_string(),
            };
            let sni = match (&t.sni, t.sni_from) {
                (Some(s), "auto_sni") => format!("SNI {s} (auto_sni)"),
                (Some(s), _) => format!("SNI {s}"),
                (None, _) => "no SNI".to_string(),
            };
            let cert = if t.client_certificate { ", client certificate" } else { "" };
            let alpn = if t.alpn.is_empty() {
                "no ALPN".to_string()
            } else {
                format!("ALPN [{}]", t.alpn.join(","))
            };
            format!("Envoy starts TLS to {} ({by}: {}): {sni}, {alpn}{cert}", t.endpoint, t.socket)
        }
        Detail::TlsTermination { chain, socket, require_client_certificate } => {
            let name = if chain.name.is_empty() { "the filter chain" } else { chain.name.as_str() };
            let cert = if *require_client_certificate { ", client certificate required" } else { "" };
            format!("{name} terminates TLS ({socket}{cert}); its filters read the plaintext")
        }
        Detail::UpstreamFailure { status, flag, details } => {
            let flag = flag.as_deref().map(|f| format!(" {f}")).unwrap_or_default();
            match status {
                Some(s) => format!(
                    "back at this Envoy: its upstream connection failed ({details}); it answers {s}{flag}"
                ),
                None => format!(
                    "back at this Envoy: its upstream connection failed; it closes the downstream{flag}"
                ),
            }
        }
        Detail::ProxyIdentity { identity: id } => match (&id.uid_from, &id.gid_from) {
            (IdOrigin::Rules { .. }, IdOrigin::Rules { .. }) => format!(
                "uid {} / gid {} are the proxy's: the rules exempt them from capture (--uid-owner, --gid-owner)",
                id.uid, id.gid
            ),
            (u, g) => format!(
                "uid {} / gid {} are the proxy's (uid: {}; gid: {})",
                id.uid,
                id.gid,
                id_origin(u),
                id_origin(g)
            ),
        },
        Detail::DnsForwarder { listen, upstream, uid } => {
            format!("the DNS forwarder on {listen} asks its upstream {upstream} (as uid {uid})")
        }
        Detail::ListenerFiltersTimeout { listener, filter, timeout } => format!(
            "listener {listener}: {filter} waits for client bytes; after listener_filters_timeout {timeout} \
             the connection goes on (continue_on_listener_filters_timeout), {timeout} late"
        ),
    }
}

/// Where a proxy uid or gid comes from, in words.
fn id_origin(o: &IdOrigin) -> String {
    match o {
        IdOrigin::Given => "given".into(),
        IdOrigin::Socket { socket } => format!("owner of {socket}"),
        IdOrigin::Rules { line, .. } => format!("exempted by the rule at line {line}"),
        IdOrigin::Default => "assumed, Istio's default".into(),
    }
}

/// The next-hop resolution before a packet leaves.
fn neighbour_resolution(
    next_hop: std::net::IpAddr,
    dev: &str,
    protocol: NeighbourProtocol,
    entry: Option<NeighbourState>,
) -> String {
    let how = match protocol {
        NeighbourProtocol::Arp => "ARP (not an IP packet: iptables does not see it)",
        NeighbourProtocol::Nd => "neighbour discovery (ICMPv6 through ip6tables)",
    };
    match entry {
        Some(s) if s.is_valid() => {
            format!("next hop {next_hop} on {dev}: neighbour entry {}, no resolution", s.as_str())
        }
        Some(s) => format!(
            "next hop {next_hop} on {dev}: neighbour entry {}, the kernel resolves it by {how}",
            s.as_str()
        ),
        None => {
            format!("next hop {next_hop} on {dev}: no neighbour entry given, the kernel resolves it by {how}")
        }
    }
}

/// Where the step's decision is written: a rule's `file:line`, an Envoy object's JSON path,
/// the name table, the cluster; empty when nothing in the evidence decided it.
pub fn source(s: &Step) -> String {
    match &s.detail {
        Detail::Rule(r) => r.step.line.map(|l| format!("{}:{l}", r.file)).unwrap_or_default(),
        Detail::DnsProxy { answer: DnsProxyAnswer::Nameserver { resolv_conf, .. }, .. } => {
            resolv_conf.clone()
        }
        Detail::Resolve { .. } | Detail::DnsProxy { .. } => "name table".into(),
        Detail::ListenerAccepts { listener: o, .. }
        | Detail::Handoff { target: o, .. }
        | Detail::FilterChain { chain: o, .. } => o.path.clone(),
        Detail::HttpRoute(h) => h.route_config.path.clone(),
        Detail::Endpoint { cluster, .. } => cluster.clone(),
        Detail::ProxyIdentity { identity } => match (&identity.uid_from, &identity.gid_from) {
            (IdOrigin::Rules { file, line }, _) | (_, IdOrigin::Rules { file, line }) => {
                format!("{file}:{line}")
            }
            _ => String::new(),
        },
        Detail::DnsForwarder { .. } => "--forwarder".into(),
        Detail::NeighbourResolution { entry: Some(_), .. } => "neighbour table".into(),
        Detail::Send { .. }
        | Detail::Kernel { .. }
        | Detail::ToPod { .. }
        | Detail::NeighbourResolution { .. }
        | Detail::NeighbourMessage { .. }
        | Detail::Reply { .. } => String::new(),
        Detail::TlsOrigination(t) => t.cluster.clone(),
        Detail::TlsTermination { chain, .. } => chain.path.clone(),
        Detail::UpstreamFailure { .. } => String::new(),
        Detail::ListenerFiltersTimeout { listener, .. } => format!("listener {listener}"),
    }
}

/// A step with its source, as a loop's `closed by` list and explain's cycle show it.
pub fn step_with_source(pods: &[String], s: &Step) -> String {
    let src = source(s);
    if src.is_empty() {
        step(pods, s)
    } else {
        format!("{} ({src})", step(pods, s))
    }
}

/// Why a refused, dropped or undetermined path ended, in words (`None` for other endings).
pub fn ending_reason(e: &Ending) -> Option<String> {
    Some(match e {
        Ending::Refused { dst, by: Refusal::NoSocket { proto }, .. } => {
            let what = match proto {
                L4::Tcp => "connection refused (RST)",
                L4::Udp => "ICMP port unreachable",
                L4::Icmp | L4::Icmpv6 => "no ICMP handler",
            };
            format!("no socket listens on {dst}: {what}")
        }
        Ending::Refused { dst, by: Refusal::NoEnvoyListener, .. } => {
            format!("no Envoy listener accepts {dst}")
        }
        Ending::Dropped { reason: r, .. } => reason(r),
        Ending::Undetermined { why, .. } => match why {
            Undetermined::NoConfigDump => {
                "the connection reached Envoy, but the pod has no config dump".into()
            }
            Undetermined::Envoy { reason } => reason.clone(),
            Undetermined::EndpointNotAnAddress { endpoint } => {
                format!("endpoint {endpoint} is not an IP address")
            }
            Undetermined::EndpointsNotInDump { cluster, service_name } => format!(
                "cluster {cluster}: the dump has no endpoints for {service_name} (take it with ?include_eds)"
            ),
        },
        Ending::RejectedConfig(r) => {
            let why = if r.reason.is_empty() { String::new() } else { format!(": {}", r.reason) };
            format!(
                "Envoy refuses {} {}{why}; it serves instead {}",
                r.object.as_str(),
                r.name,
                crate::envoy::summary::instead_words(&r.instead)
            )
        }
        Ending::Stalled { listener, filter, .. } => format!(
            "listener {listener}: {filter} waits for the client's first bytes, the client waits for the server, \
             and listener_filters_timeout is 0s (no time-out)"
        ),
        _ => return None,
    })
}

/// Envoy's reason for its answer: its own details, or the upstream connection's failure.
pub fn envoy_details(details: &str, upstream: Option<&Ending>) -> String {
    if let Some(Ending::EnvoyResponse { pod, flag, details: d, upstream: u, .. }) = upstream {
        let flag = flag.as_deref().map(|f| format!(" {f}")).unwrap_or_default();
        let why = envoy_details(d, u.as_deref());
        return format!("{details}: Envoy in pod {pod} closes the upstream connection{flag} ({why})");
    }
    match upstream.and_then(ending_reason) {
        Some(r) => format!("upstream connection failure: {r}"),
        None => details.to_string(),
    }
}

/// The closing steps of a loop, each with its source.
pub fn closed_by(pods: &[String], p: &Path) -> Vec<String> {
    match &p.ending {
        Ending::Loop { budget: Some(b), .. } => vec![format!("hop budget of {b} exhausted")],
        Ending::Loop { closed_by, .. } => {
            closed_by.iter().filter_map(|&i| p.steps.get(i)).map(|s| step_with_source(pods, s)).collect()
        }
        _ => Vec::new(),
    }
}

/// One sentence for how a path ends.
pub fn ending(pods: &[String], p: &Path) -> String {
    match &p.ending {
        Ending::Delivered { pod, socket, process } => {
            format!("delivered in pod {pod} to {process} on {socket}")
        }
        Ending::Refused { pod, .. } => {
            format!("refused in pod {pod}: {}", ending_reason(&p.ending).unwrap_or_default())
        }
        Ending::Dropped { pod, reason: r } => format!("dropped in pod {pod}: {}", reason(r)),
        Ending::EnvoyResponse { pod, status, flag, details, upstream } => {
            let flag = flag.as_deref().map(|f| format!(" {f}")).unwrap_or_default();
            let details = envoy_details(details, upstream.as_deref());
            match status {
                Some(s) => format!("Envoy in pod {pod} answers {s}{flag} ({details})"),
                None => format!("Envoy in pod {pod} accepts, then closes the connection{flag} ({details})"),
            }
        }
        Ending::Blackhole { pod, cluster, status, flag } => {
            let answer = match (status, flag) {
                (Some(s), Some(f)) => format!(" (Envoy answers {s} {f})"),
                (None, Some(f)) => format!(" (Envoy closes it, {f})"),
                _ => String::new(),
            };
            format!("Envoy in pod {pod} sends it to {cluster}: the connection is dropped{answer}")
        }
        Ending::Left { pod, dst, cluster } => match cluster {
            Some(c) => format!("leaves pod {pod} for {dst} through cluster {c}"),
            None => format!("leaves pod {pod} for {dst}"),
        },
        Ending::Unresolved { pod, host } => format!("{host} cannot be resolved in pod {pod}"),
        Ending::Loop { cycle, .. } => {
            let by = closed_by(pods, p);
            let by = if by.is_empty() { String::new() } else { format!("; closed by {}", by.join(", ")) };
            format!("loops: steps {} to {} repeat{by}", cycle[0] + 1, cycle[1] + 1)
        }
        Ending::Undetermined { pod, .. } => {
            format!("undetermined in pod {pod}: {}", ending_reason(&p.ending).unwrap_or_default())
        }
        Ending::RejectedConfig(r) => {
            format!("rejected config in pod {}: {}", r.pod, ending_reason(&p.ending).unwrap_or_default())
        }
        Ending::Stalled { pod, .. } => {
            format!("stalled in pod {pod}: {}", ending_reason(&p.ending).unwrap_or_default())
        }
    }
}
