//! What a pod was assumed to have ([`crate::engine::evidence::Assumption`]), one line each.

use std::fmt::Write as _;

use crate::engine::evidence::Assumption;
use crate::netns::Socket;

fn socket(s: &Socket) -> String {
    let transparent = if s.transparent { ", transparent" } else { "" };
    let uid = s.uid.map(|u| format!(", uid {u}")).unwrap_or_default();
    format!("{} {} ({}{uid}{transparent})", s.proto.as_str(), s.endpoint(), s.owner.as_str())
}

/// `assumed: ...` lines (nothing when nothing was assumed).
pub fn assumptions(list: &[Assumption]) -> String {
    let mut out = String::new();
    for a in list {
        let _ = match a {
            Assumption::TproxyRouting { v6, marks, table } => {
                let marks: Vec<String> = marks.iter().map(|m| format!("{:#x}/{:#x}", m.value, m.mask)).collect();
                writeln!(
                    out,
                    "assumed: Istio's TPROXY routing{}: fwmark {} lookup {table}, local default dev lo table {table} (give --ip-rule/--ip-rules to replace it)",
                    if *v6 { " (IPv6)" } else { "" },
                    marks.join(", ")
                )
            }
            Assumption::DnsProxy { socket: s } => {
                writeln!(out, "assumed: pilot-agent's DNS proxy listens on {} (the rules redirect DNS to it)", socket(s))
            }
            Assumption::EnvoyListener { socket: s } => writeln!(
                out,
                "assumed: Envoy listens on {} for the TPROXY rule (give --envoy, --listen or --sockets to replace it)",
                socket(s)
            ),
        };
    }
    out
}
