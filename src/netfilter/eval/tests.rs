use super::*;
use crate::netfilter::parse::{parse, ParseOptions};
use crate::netns::{parse_ip_route, parse_ip_rule, parse_listen};

const REDIRECT_MODE: &str = "*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:ISTIO_INBOUND - [0:0]
:ISTIO_IN_REDIRECT - [0:0]
:ISTIO_OUTPUT - [0:0]
:ISTIO_REDIRECT - [0:0]
-A PREROUTING -p tcp -j ISTIO_INBOUND
-A OUTPUT -p tcp -j ISTIO_OUTPUT
-A ISTIO_INBOUND -p tcp -m tcp --dport 15008 -j RETURN
-A ISTIO_INBOUND -p tcp -m tcp --dport 15090 -j RETURN
-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT
-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN
-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m tcp ! --dport 15008 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN
-A ISTIO_OUTPUT -j ISTIO_REDIRECT
-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001
COMMIT
";

fn program(text: &str) -> Program {
    Program::new(parse("rules", text, ParseOptions::default()).unwrap().ruleset).unwrap()
}

fn pod() -> Netns {
    Netns::pod(&["10.244.0.5/24".parse().unwrap()])
}

fn out(src: &str, dst: &str, dport: u16, uid: u32) -> Probe {
    let mut p =
        Probe::new(Entry::Output, Protocol::Tcp, src.parse().unwrap(), 40000, dst.parse().unwrap(), dport);
    p.uid = uid;
    p.gid = uid;
    p
}

fn inbound(dst: &str, dport: u16) -> Probe {
    Probe::new(
        Entry::Prerouting,
        Protocol::Tcp,
        "10.244.0.1".parse().unwrap(),
        40000,
        dst.parse().unwrap(),
        dport,
    )
}

fn one(prog: &Program, ns: &Netns, probe: &Probe) -> Branch {
    let mut t = trace(prog, ns, probe).unwrap();
    assert_eq!(t.branches.len(), 1);
    t.branches.remove(0)
}

/// `table chain #rule verdict` or `table chain policy verdict`, compactly.
fn path(b: &Branch) -> Vec<String> {
    b.steps
        .iter()
        .map(|s| {
            let what = match s.kind {
                StepKind::Rule => format!("#{}", s.rule.unwrap()),
                StepKind::Return => "end".into(),
                StepKind::Policy => "policy".into(),
            };
            format!("{} {}:{} {what} {:?}", s.hook.as_str(), s.table, s.chain, s.verdict).to_lowercase()
        })
        .collect()
}

#[test]
fn app_to_a_service_is_redirected_to_15001() {
    let prog = program(REDIRECT_MODE);
    let b = one(&prog, &pod(), &out("10.244.0.5", "10.96.0.10", 80, 1000));
    assert_eq!(
        path(&b),
        [
            "output nat:output #1 jump",
            "output nat:istio_output #6 jump",
            "output nat:istio_redirect #1 accept",
            "postrouting nat:postrouting policy accept",
        ]
    );
    assert_eq!(b.result.disposition, Disposition::Local);
    assert_eq!(b.result.dst.to_string(), "127.0.0.1:15001");
    assert_eq!(b.result.orig_dst.to_string(), "10.96.0.10:80");
    assert_eq!(b.result.in_iface.as_deref(), Some("lo"));
}

#[test]
fn app_to_its_own_pod_ip_bypasses_envoy() {
    let prog = program(REDIRECT_MODE);
    let b = one(&prog, &pod(), &out("10.244.0.5", "10.244.0.5", 8080, 1000));
    assert_eq!(path(&b)[1], "output nat:istio_output #3 return");
    assert_eq!(b.result.dst.to_string(), "10.244.0.5:8080");
    assert_eq!(b.result.disposition, Disposition::Local);
}

#[test]
fn envoy_to_its_own_pod_ip_goes_to_15006_and_re_entry_skips_nat() {
    let prog = program(REDIRECT_MODE);
    let b = one(&prog, &pod(), &out("10.244.0.5", "10.244.0.5", 8080, 1337));
    assert_eq!(b.result.dst.to_string(), "127.0.0.1:15006");
    // No nat PREROUTING/INPUT on loopback re-entry.
    assert!(!b.steps.iter().any(|s| s.hook == Hook::Prerouting || s.hook == Hook::Input), "{:?}", path(&b));
}

#[test]
fn envoy_from_127_0_0_6_is_exempt() {
    let prog = program(REDIRECT_MODE);
    let b = one(&prog, &pod(), &out("127.0.0.6", "10.244.0.5", 8080, 1337));
    assert_eq!(path(&b)[1], "output nat:istio_output #1 return");
    assert_eq!(b.result.dst.to_string(), "10.244.0.5:8080");
}

#[test]
fn inbound_is_redirected_to_the_primary_address() {
    let prog = program(REDIRECT_MODE);
    let ns = Netns::pod(&["10.244.0.5/24".parse().unwrap(), "10.244.0.6/24".parse().unwrap()]);
    let b = one(&prog, &ns, &inbound("10.244.0.6", 8080));
    assert_eq!(b.result.dst.to_string(), "10.244.0.5:15006");
    assert_eq!(
        path(&b),
        [
            "prerouting nat:prerouting #1 jump",
            "prerouting nat:istio_inbound #3 jump",
            "prerouting nat:istio_in_redirect #1 accept",
            "input nat:input policy accept",
        ]
    );
    let b = one(&prog, &ns, &inbound("10.244.0.5", 15090));
    assert_eq!(path(&b)[1], "prerouting nat:istio_inbound #2 return");
    assert_eq!(b.steps[2].kind, StepKind::Policy, "RETURN from a user chain resumes the base chain");
}

#[test]
fn martian_loopback_destination_from_eth0_is_dropped() {
    let prog = program(REDIRECT_MODE);
    // Port 15090 is excluded from the inbound redirect, so the destination stays 127.0.0.1.
    let b = one(&prog, &pod(), &inbound("127.0.0.1", 15090));
    assert_eq!(b.result.disposition, Disposition::Dropped);
    assert!(
        matches!(b.result.reason, Some(Reason::Martian { ref dev, .. }) if dev == "eth0"),
        "{:?}",
        b.result.reason
    );
}

const TPROXY: &str = "*mangle
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:ISTIO_DIVERT - [0:0]
:ISTIO_INBOUND - [0:0]
:ISTIO_TPROXY - [0:0]
-A PREROUTING -p tcp -j ISTIO_INBOUND
-A PREROUTING -p tcp -m mark --mark 0x539 -j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff
-A ISTIO_DIVERT -j MARK --set-xmark 0x539/0xffffffff
-A ISTIO_DIVERT -j ACCEPT
-A ISTIO_INBOUND -p tcp -m conntrack --ctstate RELATED,ESTABLISHED -j ISTIO_DIVERT
-A ISTIO_INBOUND -p tcp -j ISTIO_TPROXY
-A ISTIO_TPROXY ! -d 127.0.0.1/32 -p tcp -j TPROXY --on-port 15006 --on-ip 0.0.0.0 --tproxy-mark 0x539/0xffffffff
COMMIT
";

fn tproxy_pod(transparent: bool) -> Netns {
    let mut ns = pod();
    ns.rules.push(parse_ip_rule("fwmark 0x539 lookup 133", false).unwrap().unwrap());
    ns.routes.push(parse_ip_route("local default dev lo table 133", false).unwrap().unwrap());
    let l = if transparent { "tcp:0.0.0.0:15006:transparent" } else { "tcp:0.0.0.0:15006" };
    ns.sockets.push(parse_listen(l).unwrap());
    ns
}

#[test]
fn tproxy_hands_the_connection_to_the_transparent_listener() {
    let prog = program(TPROXY);
    let b = one(&prog, &tproxy_pod(true), &inbound("10.96.0.10", 8080));
    assert_eq!(b.result.disposition, Disposition::Local);
    assert_eq!(b.result.socket.as_ref().map(|s| s.endpoint()).as_deref(), Some("0.0.0.0:15006"));
    assert_eq!(b.result.dst.to_string(), "10.96.0.10:8080", "TPROXY does not rewrite the destination");
    assert_eq!(b.result.mark, 0x539);
    // The ACCEPT ends mangle PREROUTING: the CONNMARK rule is never reached.
    assert!(!b.steps.iter().any(|s| &*s.chain == "PREROUTING" && s.rule == Some(2)));
}

#[test]
fn tproxy_without_a_transparent_socket_drops() {
    let prog = program(TPROXY);
    let b = one(&prog, &tproxy_pod(false), &inbound("10.244.0.5", 8080));
    assert_eq!(b.result.disposition, Disposition::Dropped);
    assert!(
        matches!(b.result.reason, Some(Reason::Rule { drop: RuleDrop::TproxyNotTransparent { .. }, .. })),
        "{:?}",
        b.result.reason
    );
}

#[test]
fn statistic_rules_split_into_weighted_branches() {
    let prog = program(
        "*nat
:OUTPUT ACCEPT [0:0]
:SVC - [0:0]
-A OUTPUT -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -j SVC
-A SVC -m statistic --mode random --probability 0.33333333349 -j DNAT --to-destination 10.244.1.1:8080
-A SVC -m statistic --mode random --probability 0.50000000000 -j DNAT --to-destination 10.244.1.2:8080
-A SVC -j DNAT --to-destination 10.244.1.3:8080
COMMIT
",
    );
    let t = trace(&prog, &pod(), &out("10.244.0.5", "10.96.0.10", 80, 1000)).unwrap();
    let got: Vec<(String, f64)> =
        t.branches.iter().map(|b| (b.result.dst.to_string(), b.probability)).collect();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].0, "10.244.1.1:8080");
    assert_eq!(got[2].0, "10.244.1.3:8080");
    for (_, p) in &got {
        assert!((p - 1.0 / 3.0).abs() < 1e-6, "{got:?}");
    }
    assert!((got.iter().map(|g| g.1).sum::<f64>() - 1.0).abs() < 1e-9);
}

#[test]
fn goto_returns_to_the_caller_of_the_calling_chain() {
    let prog = program(
        "*filter
:OUTPUT DROP [0:0]
:A - [0:0]
:B - [0:0]
-A OUTPUT -j A
-A OUTPUT -j ACCEPT
-A A -g B
-A A -j DROP
-A B -m comment --comment nothing
COMMIT
",
    );
    let b = one(&prog, &pod(), &out("10.244.0.5", "10.1.1.1", 80, 0));
    assert_eq!(
        path(&b),
        [
            "output filter:output #1 jump",
            "output filter:a #1 goto",
            "output filter:b #1 continue",
            "output filter:b end return",
            "output filter:output #2 accept",
        ]
    );
    assert_eq!(b.result.disposition, Disposition::Out);
}

#[test]
fn policy_drop_and_reject_say_where() {
    let prog = program("*filter\n:INPUT DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -p tcp -m tcp --dport 25 -j REJECT --reject-with icmp-port-unreachable\nCOMMIT\n");
    let b = one(&prog, &pod(), &out("10.244.0.5", "10.1.1.1", 25, 0));
    assert_eq!(b.result.disposition, Disposition::Dropped);
    let Some(Reason::Rule { at, drop: RuleDrop::Reject { with } }) = &b.result.reason else {
        panic!("{:?}", b.result.reason)
    };
    assert_eq!((&*at.chain, at.rule, at.line, with.as_str()), ("OUTPUT", 1, 4, "icmp-port-unreachable"));
    let b = one(&prog, &pod(), &inbound("10.244.0.5", 80));
    let Some(Reason::Policy { table, chain }) = &b.result.reason else { panic!("{:?}", b.result.reason) };
    assert_eq!((*table, &**chain), (crate::netfilter::model::TableName::Filter, "INPUT"));
}

#[test]
fn owner_without_a_socket_matches_only_negated_criteria() {
    let prog = program("*mangle\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -m owner ! --uid-owner 1337 -j MARK --set-xmark 0x1/0xffffffff\n-A POSTROUTING -m owner --socket-exists -j MARK --set-xmark 0x2/0xffffffff\nCOMMIT\n");
    let mut ns = pod();
    ns.forwarding = true;
    ns.interfaces.push(crate::netns::Interface { name: "eth1".into(), addrs: vec![] });
    let b = one(&prog, &ns, &inbound("10.1.1.1", 80));
    assert_eq!(b.result.disposition, Disposition::Forwarded);
    assert_eq!(b.result.mark, 0x1);
}

#[test]
fn jump_loops_are_refused() {
    let ruleset = parse(
        "r",
        "*filter\n:A - [0:0]\n:B - [0:0]\n-A A -j B\n-A B -j A\nCOMMIT\n",
        ParseOptions::default(),
    )
    .unwrap()
    .ruleset;
    let e = Program::new(ruleset).unwrap_err();
    assert!(e.to_string().contains("loop"), "{e}");
}

#[test]
fn family_mismatch_is_an_error() {
    let prog = program(REDIRECT_MODE);
    let p = Probe::new(
        Entry::Output,
        Protocol::Tcp,
        "fd00::5".parse().unwrap(),
        1,
        "fd00::1".parse().unwrap(),
        80,
    );
    assert!(trace(&prog, &pod(), &p).is_err());
}

#[test]
fn socket_match_ignores_wildcard_listeners_unless_nowildcard() {
    let rules = |opt: &str| {
        program(&format!(
            "*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp -m socket{opt} -j MARK --set-xmark 0x1/0xffffffff\nCOMMIT\n"
        ))
    };
    let mut ns = pod();
    ns.sockets.push(parse_listen("tcp:0.0.0.0:8080").unwrap());
    let b = one(&rules(""), &ns, &inbound("10.244.0.5", 8080));
    assert_eq!(b.result.mark, 0x0, "a wildcard listener is ignored by default");
    let b = one(&rules(" --nowildcard"), &ns, &inbound("10.244.0.5", 8080));
    assert_eq!(b.result.mark, 0x1);
    ns.sockets.push(parse_listen("tcp:10.244.0.5:8080").unwrap());
    let b = one(&rules(""), &ns, &inbound("10.244.0.5", 8080));
    assert_eq!(b.result.mark, 0x1, "a listener bound to the address counts");
}

#[test]
fn tproxy_with_a_zero_mask_marks_nothing_and_adds_no_policy_route() {
    let p = program("*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp -j TPROXY --on-port 15008 --on-ip 127.0.0.1 --tproxy-mark 0x0/0x0\nCOMMIT\n");
    assert!(p.tproxy_marks.is_empty());
    assert_eq!(p.tproxy_ports.len(), 1);
}

/// Neighbour discovery is never tracked (`nf_conntrack_icmpv6_error` in
/// net/netfilter/nf_conntrack_proto_icmpv6.c sets `IP_CT_UNTRACKED` for the types of its
/// `noct_valid_new`): `--ctstate INVALID` does not match an advertisement, `ESTABLISHED` does not
/// accept it, and a REJECT after them takes it (istio-iptables.sh's IPv6 INPUT rules).
#[test]
fn neighbour_advertisements_are_untracked() {
    let rules = "*filter\n:INPUT ACCEPT [0:0]\n\
        -A INPUT -m state --state INVALID -j DROP\n\
        -A INPUT -m state --state ESTABLISHED -j ACCEPT\n\
        -A INPUT -m conntrack --ctstate UNTRACKED -j LOG\n\
        -A INPUT -j REJECT --reject-with icmp6-port-unreachable\nCOMMIT\n";
    let opts = ParseOptions { family: Some(crate::netfilter::model::Family::V6), ..ParseOptions::default() };
    let prog = Program::new(parse("rules", rules, opts).unwrap().ruleset).unwrap();
    let ns = Netns::pod(&["fd01:0:0:2::514/64".parse().unwrap()]);
    let mut na = Probe::new(
        Entry::Prerouting,
        Protocol::Icmpv6,
        "fe80::1".parse().unwrap(),
        0,
        "fd01:0:0:2::514".parse().unwrap(),
        0,
    );
    na.icmp_type = 136;
    let b = one(&prog, &ns, &na);
    assert_eq!(
        path(&b),
        ["input filter:input #3 continue", "input filter:input #4 drop"],
        "UNTRACKED matched, INVALID and ESTABLISHED did not"
    );
    assert_eq!(b.result.disposition, Disposition::Dropped);
    // An echo request is tracked (NEW): not UNTRACKED.
    na.icmp_type = 128;
    let b = one(&prog, &ns, &na);
    assert_eq!(path(&b), ["input filter:input #4 drop"]);
}

/// A reply of a REDIRECTed local connection (`nf_nat_packet` in net/netfilter/nf_nat_core.c
/// undoes the REDIRECT on the reply at POSTROUTING): it leaves 127.0.0.1:15001, is
/// ESTABLISHED, runs no nat chain, and loops back with the source the app connected to.
#[test]
fn a_reply_is_established_and_its_nat_is_undone() {
    let rules = "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n\
        -A OUTPUT -p tcp -j REDIRECT --to-ports 15001\nCOMMIT\n\
        *filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
        -A INPUT -s 127.0.0.1/32 -j DROP\n\
        -A INPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT\nCOMMIT\n";
    let prog = program(rules);
    let mut p = out("127.0.0.1", "10.244.0.5", 50000, 1337);
    p.sport = 15001;
    p.reply = Some(ReplyNat { src_to: Some("10.96.0.10:80".parse().unwrap()), dst_to: None, ctmark: 0 });
    let b = one(&prog, &pod(), &p);
    // The source is restored at POSTROUTING, before the looped-back INPUT sees it.
    assert_eq!(path(&b), ["output filter:output policy accept", "input filter:input #2 accept"]);
    assert_eq!(b.result.disposition, Disposition::Local);
    assert_eq!(b.result.src.to_string(), "10.96.0.10:80");
    assert_eq!(b.result.dst.to_string(), "10.244.0.5:50000");
}

/// A packet the kernel sends itself (a neighbour solicitation from the ND socket, which has no
/// file) is socketless for owner matches: net/netfilter/xt_owner.c `owner_mt` returns
/// `(info->match ^ info->invert) == 0`, so only a negated test matches.
#[test]
fn kernel_sent_packets_have_no_owner() {
    let prog = program(
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
         -A OUTPUT -m owner --uid-owner 0 -j DROP\n\
         -A OUTPUT -m owner ! --uid-owner 1337 -j ACCEPT\nCOMMIT\n",
    );
    let mut p = out("10.244.0.5", "10.244.0.1", 0, 0);
    p.proto = Protocol::Icmp;
    p.kernel_sent = true;
    let b = one(&prog, &pod(), &p);
    assert_eq!(path(&b), ["output filter:output #2 accept"]);
    p.kernel_sent = false;
    assert_eq!(path(&one(&prog, &pod(), &p)), ["output filter:output #1 drop"]);
}
