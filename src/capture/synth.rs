//! Synthetic captures for benchmarks and examples: Ethernet/IPv4 TCP and UDP flows, some
//! opening with a TLS ClientHello (SNI + ALPN) or an HTTP/1.1 request, written as legacy pcap.
//! Deterministic: the same arguments give the same bytes.

use std::io::{self, Write};

use etherparse::PacketBuilder;

use super::linktype;
use super::writer::PcapWriter;

/// What [`write_synthetic`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SynthStats {
    pub packets: u64,
    pub flows: u64,
    pub tcp_flows: u64,
    pub tls_flows: u64,
    pub http_flows: u64,
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// How many flows are open at once (the capture interleaves their packets).
const CONCURRENT: usize = 1000;

/// Writes `packets` packets spread evenly over `flows` flows (80% TCP, 20% UDP; of the TCP
/// flows 10% open with a TLS ClientHello and 10% with an HTTP/1.1 GET).
pub fn write_synthetic<W: Write>(out: W, packets: u64, flows: u64) -> io::Result<SynthStats> {
    write_synthetic_from(out, packets, flows, None)
}

/// As [`write_synthetic`], with every flow's client at `client` when given (one pod's capture:
/// the pod is one end of every flow; client ports stay distinct for up to 40,000 flows).
pub fn write_synthetic_from<W: Write>(
    out: W,
    packets: u64,
    flows: u64,
    client: Option<[u8; 4]>,
) -> io::Result<SynthStats> {
    let mut w = PcapWriter::new(out, linktype::ETHERNET, 262_144, false)?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let per_flow = (packets / flows.max(1)).max(1);
    let mut stats = SynthStats::default();
    let mut frame = Vec::with_capacity(2048);
    let filler = vec![0xa5u8; 1500];
    let mut ts: u64 = 1_700_000_000_000_000_000;
    let mut first = 0u64;
    while first < flows {
        let group = (flows - first).min(CONCURRENT as u64);
        for k in 0..per_flow {
            for f in first..first + group {
                if stats.packets >= packets {
                    break;
                }
                ts += 1_000 + rng.below(1_000);
                frame.clear();
                let kind = f % 10; // 0-7 TCP, 8-9 UDP
                let client = client.unwrap_or([10, (f >> 16) as u8 | 0x40, (f >> 8) as u8, f as u8]);
                let server = [10, 96, (f % 200) as u8, 10];
                let cport = 20_000 + (f % 40_000) as u16;
                if kind < 8 {
                    let sport = if f.is_multiple_of(20) { 443 } else { 8080 };
                    tcp_packet(&mut frame, &mut rng, f, k, per_flow, client, cport, server, sport, &filler)?;
                } else {
                    let (dport, len) = (53 + (f % 2) as u16 * 5000, 40 + rng.below(400) as usize);
                    let (src, sp, dst, dp) = if k.is_multiple_of(2) {
                        (client, cport, server, dport)
                    } else {
                        (server, dport, client, cport)
                    };
                    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
                        .ipv4(src, dst, 64)
                        .udp(sp, dp)
                        .write(&mut frame, &filler[..len])
                        .map_err(io::Error::other)?;
                }
                w.write_packet(ts, &frame, frame.len() as u32)?;
                stats.packets += 1;
            }
        }
        for f in first..first + group {
            stats.flows += 1;
            if f % 10 < 8 {
                stats.tcp_flows += 1;
                stats.tls_flows += u64::from(f.is_multiple_of(20));
                stats.http_flows += u64::from(f % 20 == 10);
            }
        }
        first += group;
    }
    Ok(stats)
}

#[allow(clippy::too_many_arguments)]
fn tcp_packet(
    frame: &mut Vec<u8>,
    rng: &mut Rng,
    f: u64,
    k: u64,
    per_flow: u64,
    client: [u8; 4],
    cport: u16,
    server: [u8; 4],
    sport: u16,
    filler: &[u8],
) -> io::Result<()> {
    // SYN, SYN+ACK, ACK, then client and server segments alternate (the client's first one
    // carries the ClientHello or request), then a FIN from each side. Sequence numbers advance
    // by a fixed stride per segment, as if every segment carried that many bytes.
    let (ciss, siss) = (1_000_000u32, 5_000_000u32);
    let last = k + 2 >= per_flow;
    let from_client = if last { k + 2 == per_flow } else { k == 0 || k == 2 || (k >= 3 && k % 2 == 1) };
    let hello;
    let payload: &[u8] = match k {
        0..=2 => &[],
        _ if last => &[],
        3 if f.is_multiple_of(20) => {
            hello = client_hello(&format!("svc-{f}.example.com"));
            &hello
        }
        3 if f % 20 == 10 => {
            hello = format!(
                "GET /items/{f} HTTP/1.1\r\nHost: web-{f}.default.svc:8080\r\nUser-Agent: synth\r\n\r\n"
            )
            .into_bytes();
            &hello
        }
        _ => &filler[..rng.below(400) as usize],
    };
    let step = (k.saturating_sub(3) / 2) as u32 * 1000;
    let (src, sp, dst, dp, seq, ack) = if from_client {
        (client, cport, server, sport, ciss + 1 + step, siss + 1)
    } else {
        (server, sport, client, cport, siss + 1 + step, ciss + 1)
    };
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]).ipv4(src, dst, 64);
    let b = match k {
        0 => b.tcp(sp, dp, ciss, 65_535).syn(),
        1 => b.tcp(sp, dp, siss, 65_535).syn().ack(ciss + 1),
        _ if last => b.tcp(sp, dp, seq, 65_535).fin().ack(ack),
        _ => b.tcp(sp, dp, seq, 65_535).ack(ack),
    };
    b.write(frame, payload).map_err(io::Error::other)
}

/// A ClientHello record with the given SNI and ALPN h2/http1.1 (shape of a browser's).
fn client_hello(sni: &str) -> Vec<u8> {
    let mut exts = Vec::new();
    let name = sni.as_bytes();
    let n = name.len() as u16;
    exts.extend_from_slice(&[0, 0]);
    exts.extend_from_slice(&(n + 5).to_be_bytes());
    exts.extend_from_slice(&(n + 3).to_be_bytes());
    exts.push(0);
    exts.extend_from_slice(&n.to_be_bytes());
    exts.extend_from_slice(name);
    exts.extend_from_slice(&[0, 16, 0, 14, 0, 12, 2, b'h', b'2', 8]);
    exts.extend_from_slice(b"http/1.1");
    exts.extend_from_slice(&[0, 43, 0, 3, 2, 3, 4]); // supported_versions: TLS 1.3
    let mut body = vec![3, 3];
    body.extend_from_slice(&[0x42; 32]);
    body.push(32);
    body.extend_from_slice(&[0x17; 32]);
    body.extend_from_slice(&[0, 6, 0x13, 0x01, 0x13, 0x02, 0x13, 0x03, 1, 0]);
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);
    let mut rec = vec![22, 3, 1];
    rec.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
    rec.extend_from_slice(&[1, 0]);
    rec.extend_from_slice(&(body.len() as u16).to_be_bytes());
    rec.extend_from_slice(&body);
    rec
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{Capture, FlowTable};

    #[test]
    fn synthetic_capture_reads_back_as_written() {
        let mut file = Vec::new();
        let st = write_synthetic(&mut file, 5_000, 100).unwrap();
        assert_eq!((st.packets, st.flows, st.tls_flows, st.http_flows), (5_000, 100, 5, 5));
        let mut cap = Capture::open(&file[..]).unwrap();
        let mut t = FlowTable::new();
        while let Some(p) = cap.next_packet() {
            t.add(&p);
        }
        assert!(cap.faults().is_empty());
        assert_eq!(t.flows().len(), 100);
        let tls = t.flows().iter().filter(|f| f.sniffed.tls.is_some()).count();
        let http = t.flows().iter().filter(|f| f.sniffed.http.is_some()).count();
        assert_eq!((tls, http), (5, 5));
        assert!(t
            .flows()
            .iter()
            .filter(|f| f.transport == crate::capture::Transport::Tcp)
            .all(|f| !f.start_missing && f.fin_both));
        assert_eq!(t.flows()[0].sniffed.tls.as_ref().unwrap().sni.as_deref(), Some("svc-0.example.com"));
    }
}
