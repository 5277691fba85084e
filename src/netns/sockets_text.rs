//! Listening sockets from what people collect in a pod: `ss -ltnup` (any mix of `-t`, `-u`,
//! `-n`, `-p`, `-e`) or `netstat -lntup` output. Only listening TCP and bound, unconnected UDP
//! sockets are kept; connected ones say nothing about where a new connection goes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::socket::Owner;
use super::socket::{Socket, L4};

/// A line that could not be read, with what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct SocketsError {
    pub line: u32,
    pub message: String,
}

/// Reads `ss` or `netstat` output (detected per line). Header lines are skipped.
pub fn parse_sockets(text: &str) -> Result<Vec<Socket>, SocketsError> {
    let mut out = Vec::new();
    // `ss` without `-u`/`-t` prints no Netid column; then every row is of the one protocol.
    let mut default_proto = L4::Tcp;
    for (i, line) in text.lines().enumerate() {
        let line_no = (i + 1) as u32;
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(&first) = words.first() else { continue };
        let err = |m: String| SocketsError { line: line_no, message: m };
        match first {
            "Netid" | "State" | "Active" | "Proto" => continue,
            "tcp" | "tcp6" | "udp" | "udp6" if words.len() >= 4 && words[1].parse::<u64>().is_ok() => {
                // netstat: Proto Recv-Q Send-Q Local Foreign [State] [PID/Program]
                let proto = if first.starts_with("tcp") { L4::Tcp } else { L4::Udp };
                let state = words.get(5).copied().unwrap_or("");
                if proto == L4::Tcp && state != "LISTEN" {
                    continue;
                }
                if proto == L4::Udp && words.len() > 5 && !words[5].contains('/') && words[5] != "-" {
                    continue; // a connected UDP socket shows a state
                }
                let (addr, port) = endpoint(words[3]).map_err(err)?;
                let owner = words.last().and_then(|w| w.split_once('/')).map(|(_, p)| p.to_string());
                out.push(socket(proto, addr, port, owner, None));
            }
            _ => {
                // ss: [Netid] State Recv-Q Send-Q Local Peer [Process...]
                let (proto, rest) = match first {
                    "tcp" => (L4::Tcp, &words[1..]),
                    "udp" => (L4::Udp, &words[1..]),
                    "raw" | "u_str" | "u_dgr" | "u_seq" | "nl" | "p_raw" | "p_dgr" | "sctp" | "mptcp" => {
                        continue
                    }
                    _ => (default_proto, &words[..]),
                };
                let Some(&state) = rest.first() else { continue };
                match (proto, state) {
                    (L4::Tcp, "LISTEN") => {}
                    (L4::Udp, "UNCONN") => {}
                    (_, "LISTEN" | "UNCONN") => {}
                    (_, s) if s.chars().all(|c| c.is_ascii_uppercase() || c == '-') => continue,
                    _ => return Err(err(format!("cannot read `{line}` as ss or netstat output"))),
                }
                let proto = if state == "UNCONN" { L4::Udp } else { proto };
                if first != "tcp" && first != "udp" && state == "UNCONN" {
                    default_proto = L4::Udp;
                }
                let local = rest.get(3).ok_or_else(|| err("missing the local address column".into()))?;
                let (addr, port) = endpoint(local).map_err(err)?;
                let tail = rest.get(5..).map(|w| w.join(" ")).unwrap_or_default();
                out.push(socket(proto, addr, port, process_name(&tail), uid(&tail)));
            }
        }
    }
    Ok(out)
}

fn socket(proto: L4, addr: IpAddr, port: u16, owner: Option<String>, uid: Option<u32>) -> Socket {
    let owner = Owner::named(owner.as_deref().unwrap_or("unknown"));
    Socket { proto, addr, port, transparent: false, owner, uid }
}

/// `0.0.0.0:80`, `[::]:80`, `*:80` (any address, both families), `:::80` (netstat v6),
/// `127.0.0.1%lo:53`, `[::ffff:10.0.0.1]:80`.
fn endpoint(s: &str) -> Result<(IpAddr, u16), String> {
    let (host, port) = s.rsplit_once(':').ok_or_else(|| format!("`{s}` is not address:port"))?;
    let port: u16 = port.parse().map_err(|_| format!("`{port}` in `{s}` is not a port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = host.split('%').next().unwrap_or(host);
    let addr = match host {
        "*" => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        "" | "::" => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        "0.0.0.0" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        h => h.parse().map_err(|_| format!("`{h}` in `{s}` is not an IP address"))?,
    };
    Ok((addr, port))
}

/// `users:(("envoy",pid=22,fd=38))` → `envoy`.
fn process_name(tail: &str) -> Option<String> {
    let start = tail.find("((\"")? + 3;
    let end = tail[start..].find('"')? + start;
    Some(tail[start..end].to_string())
}

/// `uid:1337` from `ss -e`.
fn uid(tail: &str) -> Option<u32> {
    let start = tail.find("uid:")? + 4;
    tail[start..].split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ss_ltnup() {
        let text = "Netid State  Recv-Q Send-Q Local Address:Port  Peer Address:Port Process
tcp   LISTEN 0      4096       0.0.0.0:15021      0.0.0.0:*     users:((\"envoy\",pid=22,fd=38))
tcp   LISTEN 0      128           [::]:8080          [::]:*     users:((\"python\",pid=1,fd=3))
tcp   LISTEN 0      4096             *:15020            *:*     users:((\"pilot-agent\",pid=1,fd=7))
udp   UNCONN 0      0        127.0.0.1:15053      0.0.0.0:*     users:((\"pilot-agent\",pid=1,fd=9)) uid:1337
tcp   ESTAB  0      0       10.244.0.5:8080    10.244.0.1:5000
";
        let s = parse_sockets(text).unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!((s[0].endpoint(), s[0].owner.as_str()), ("0.0.0.0:15021".to_string(), "envoy"));
        assert_eq!(s[1].endpoint(), "[::]:8080");
        assert_eq!(s[2].endpoint(), "[::]:15020");
        assert_eq!((s[3].proto, s[3].uid), (L4::Udp, Some(1337)));
    }

    #[test]
    fn reads_ss_without_netid_or_process() {
        let text = "State  Recv-Q Send-Q Local Address:Port Peer Address:Port
LISTEN 0      128      10.244.0.5:9080      0.0.0.0:*
";
        let s = parse_sockets(text).unwrap();
        assert_eq!(
            (s[0].proto, s[0].endpoint().as_str(), s[0].owner.as_str()),
            (L4::Tcp, "10.244.0.5:9080", "unknown")
        );
    }

    #[test]
    fn reads_netstat() {
        let text = "Active Internet connections (only servers)
Proto Recv-Q Send-Q Local Address           Foreign Address         State       PID/Program name
tcp        0      0 0.0.0.0:15001           0.0.0.0:*               LISTEN      22/envoy
tcp6       0      0 :::8080                 :::*                    LISTEN      1/python
udp        0      0 127.0.0.1:15053         0.0.0.0:*                           1/pilot-agent
";
        let s = parse_sockets(text).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[1].endpoint(), "[::]:8080");
        assert_eq!((s[2].proto, s[2].owner.as_str()), (L4::Udp, "pilot-agent"));
    }

    #[test]
    fn bad_lines_say_where() {
        let e = parse_sockets("LISTEN 0 128 nonsense 0.0.0.0:*\n").unwrap_err();
        assert_eq!(e.line, 1);
    }
}
