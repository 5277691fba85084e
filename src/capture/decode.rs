//! From a record's bytes to addresses, ports and payload: the link layer by link type
//! (pcap-parser's `data` module for Linux cooked v1/v2, etherparse for Ethernet/VLAN and raw IP,
//! BSD loopback by hand), then etherparse's lax slicer, which keeps whatever precedes a cut.

use std::net::{IpAddr, Ipv4Addr};

use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket, TransportSlice};
use pcap_parser::data::{get_packetdata_linux_sll, get_packetdata_linux_sll2, PacketData};

use super::linktype;

/// The transport protocol of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
    /// Any other IP protocol number (or a fragment whose transport header is elsewhere).
    Other(u8),
}

impl Protocol {
    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Icmp => 1,
            Protocol::Icmpv6 => 58,
            Protocol::Other(n) => n,
        }
    }
}

/// TCP header flags (byte 13 of the header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    pub fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    pub fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    pub fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
}

/// The TCP fields flow tracking needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpInfo {
    pub flags: TcpFlags,
    pub seq: u32,
    pub ack: u32,
}

/// The IP and transport view of one packet. Ports are 0 when the protocol has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub protocol: Protocol,
    pub src_port: u16,
    pub dst_port: u16,
    pub tcp: Option<TcpInfo>,
    /// ICMP/ICMPv6 type and code.
    pub icmp: Option<(u8, u8)>,
    /// Number of 802.1Q/802.1ad tags in front of the IP header.
    pub vlan_tags: u8,
    /// Bytes at the IP layer as the IP header states them (conntrack counts these).
    pub ip_len: u32,
    /// The transport payload that was captured (shorter than `payload_len` when cut).
    pub payload: &'a [u8],
    /// The transport payload length the headers state.
    pub payload_len: u32,
    /// A fragment of a larger IP packet.
    pub fragmented: bool,
}

/// Decodes a record's bytes by link type. Returns the decoded view (when an IP header was
/// found) and a description of what was cut or malformed, if anything.
pub(crate) fn decode(link_type: u32, data: &[u8]) -> (Option<Decoded<'_>>, Option<String>) {
    if link_type == linktype::ETHERNET {
        if let Some(d) = ethernet_ipv4_tcp_udp(data) {
            return (Some(d), None);
        }
    }
    sliced(link_type, data)
}

/// The common case read directly: an Ethernet II frame without VLAN tags holding a whole,
/// unfragmented IPv4 packet without options that carries a whole TCP header, or a UDP header
/// whose length is the IP payload's. This gives exactly what the general path gives for such
/// a packet (a test compares them); anything else (`None`) takes the general path.
fn ethernet_ipv4_tcp_udp(data: &[u8]) -> Option<Decoded<'_>> {
    let ip = data.get(14..)?;
    if data[12..14] != [0x08, 0x00] || ip.len() < 20 || ip[0] != 0x45 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    // Complete, and neither more fragments nor a fragment offset.
    if total < 20 || total > ip.len() || u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0 {
        return None;
    }
    let payload = &ip[20..total];
    let stated = payload.len() as u32;
    let mut d = Decoded {
        src: IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15])),
        dst: IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19])),
        protocol: Protocol::Tcp,
        src_port: 0,
        dst_port: 0,
        tcp: None,
        icmp: None,
        vlan_tags: 0,
        ip_len: total as u32,
        payload: &[],
        payload_len: 0,
        fragmented: false,
    };
    let port = |at: usize| u16::from_be_bytes([payload[at], payload[at + 1]]);
    let word =
        |at: usize| u32::from_be_bytes([payload[at], payload[at + 1], payload[at + 2], payload[at + 3]]);
    match ip[9] {
        6 if payload.len() >= 20 => {
            let header = usize::from(payload[12] >> 4) * 4;
            if header < 20 || header > payload.len() {
                return None;
            }
            d.src_port = port(0);
            d.dst_port = port(2);
            d.tcp = Some(TcpInfo { flags: TcpFlags(payload[13]), seq: word(4), ack: word(8) });
            d.payload = &payload[header..];
            d.payload_len = stated - header as u32;
        }
        17 if payload.len() >= 8 && usize::from(port(4)) == payload.len() => {
            d.protocol = Protocol::Udp;
            d.src_port = port(0);
            d.dst_port = port(2);
            d.payload = &payload[8..];
            d.payload_len = stated - 8;
        }
        _ => return None,
    }
    Some(d)
}

/// The general path: etherparse's lax slicer by link type.
fn sliced(link_type: u32, data: &[u8]) -> (Option<Decoded<'_>>, Option<String>) {
    let sliced = match link_type {
        linktype::ETHERNET => match LaxSlicedPacket::from_ethernet(data) {
            Ok(p) => p,
            Err(e) => return (None, Some(format!("ethernet header: {e}"))),
        },
        linktype::RAW | linktype::IPV4 | linktype::IPV6 => match LaxSlicedPacket::from_ip(data) {
            Ok(p) => p,
            Err(e) => return (None, Some(format!("ip header: {e}"))),
        },
        linktype::NULL | linktype::LOOP => {
            let Some(af) = data.get(..4) else {
                return (None, Some(format!("loopback header: {} of 4 bytes", data.len())));
            };
            let af_le = u32::from_le_bytes([af[0], af[1], af[2], af[3]]);
            let af_be = u32::from_be_bytes([af[0], af[1], af[2], af[3]]);
            // The family is in the capturing host's byte order (LOOP: network order); a valid
            // value is small, so whichever order gives one under 256 is the right one.
            let af = if af_le < 256 { af_le } else { af_be };
            let ether_type = match af {
                2 => EtherType::IPV4,
                10 | 24 | 28 | 30 => EtherType::IPV6,
                _ => return (None, None),
            };
            LaxSlicedPacket::from_ether_type(ether_type, data.get(4..).unwrap_or(&[]))
        }
        linktype::LINUX_SLL | linktype::LINUX_SLL2 => {
            let got = if link_type == linktype::LINUX_SLL {
                get_packetdata_linux_sll(data, data.len())
            } else {
                get_packetdata_linux_sll2(data, data.len())
            };
            match got {
                Some(PacketData::L3(ether_type, rest)) => {
                    LaxSlicedPacket::from_ether_type(EtherType(ether_type), rest)
                }
                Some(_) => return (None, None),
                None => return (None, Some(format!("linux cooked header cut ({} bytes)", data.len()))),
            }
        }
        other => return (None, Some(format!("link type {other} is not supported"))),
    };
    let problem = sliced.stop_err.as_ref().map(|(err, layer)| format!("{layer}: {err}"));
    (view(&sliced), problem)
}

fn view<'a>(p: &LaxSlicedPacket<'a>) -> Option<Decoded<'a>> {
    let (src, dst, ip_len, stated_ip_payload) = match p.net.as_ref()? {
        LaxNetSlice::Ipv4(v4) => {
            let h = v4.header();
            let total = u32::from(h.total_len());
            let hl = u32::from(h.ihl()) * 4;
            (IpAddr::V4(h.source_addr()), IpAddr::V4(h.destination_addr()), total, total.saturating_sub(hl))
        }
        LaxNetSlice::Ipv6(v6) => {
            let h = v6.header();
            let plen = u32::from(h.payload_length());
            let ext = v6.extensions().slice().len() as u32;
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                plen + 40,
                plen.saturating_sub(ext),
            )
        }
        LaxNetSlice::Arp(_) => return None,
    };
    let ip_payload = p.ip_payload()?;
    let stated = if ip_payload.incomplete { stated_ip_payload } else { ip_payload.payload.len() as u32 };
    let vlan_tags = p.link_exts.len().min(usize::from(u8::MAX)) as u8;
    let mut d = Decoded {
        src,
        dst,
        protocol: Protocol::Other(ip_payload.ip_number.0),
        src_port: 0,
        dst_port: 0,
        tcp: None,
        icmp: None,
        vlan_tags,
        ip_len,
        payload: &[],
        payload_len: 0,
        fragmented: ip_payload.fragmented,
    };
    match &p.transport {
        Some(TransportSlice::Tcp(t)) => {
            let flags = t.header_slice().get(13).copied().unwrap_or(0);
            d.protocol = Protocol::Tcp;
            d.src_port = t.source_port();
            d.dst_port = t.destination_port();
            d.tcp = Some(TcpInfo {
                flags: TcpFlags(flags),
                seq: t.sequence_number(),
                ack: t.acknowledgment_number(),
            });
            d.payload = t.payload();
            d.payload_len = stated.saturating_sub(t.header_slice().len() as u32);
        }
        Some(TransportSlice::Udp(u)) => {
            d.protocol = Protocol::Udp;
            d.src_port = u.source_port();
            d.dst_port = u.destination_port();
            d.payload = u.payload();
            d.payload_len = stated.saturating_sub(8);
        }
        Some(TransportSlice::Icmpv4(i)) => {
            d.protocol = Protocol::Icmp;
            d.icmp = Some((i.type_u8(), i.code_u8()));
            d.payload = i.payload();
            d.payload_len = stated.saturating_sub(i.header_len() as u32);
        }
        Some(TransportSlice::Icmpv6(i)) => {
            d.protocol = Protocol::Icmpv6;
            d.icmp = Some((i.type_u8(), i.code_u8()));
            d.payload = i.payload();
            d.payload_len = stated.saturating_sub(i.header_len() as u32);
        }
        _ => match ip_payload.payload {
            // A TCP header cut inside its options (snaplen): ports, sequence and flags are in
            // its first 14 bytes.
            [sp0, sp1, dp0, dp1, s0, s1, s2, s3, a0, a1, a2, a3, _, flags, ..]
                if ip_payload.ip_number.0 == 6 && !ip_payload.fragmented =>
            {
                d.protocol = Protocol::Tcp;
                d.src_port = u16::from_be_bytes([*sp0, *sp1]);
                d.dst_port = u16::from_be_bytes([*dp0, *dp1]);
                d.tcp = Some(TcpInfo {
                    flags: TcpFlags(*flags),
                    seq: u32::from_be_bytes([*s0, *s1, *s2, *s3]),
                    ack: u32::from_be_bytes([*a0, *a1, *a2, *a3]),
                });
                let header_len = u32::from(ip_payload.payload[12] >> 4) * 4;
                d.payload_len = stated.saturating_sub(header_len);
            }
            _ => {
                d.payload = ip_payload.payload;
                d.payload_len = stated;
            }
        },
    }
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{PacketBuilder, TcpOptionElement};

    /// Packets built whole and then with header bytes changed at random: wherever the direct
    /// path reads one, it reads what the general path reads.
    #[test]
    fn direct_path_reads_like_the_general_path() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut direct = 0;
        for i in 0..20_000u32 {
            let payload: Vec<u8> = (0..(next() % 300) as usize).map(|k| k as u8).collect();
            let b = PacketBuilder::ethernet2([1; 6], [2; 6]).ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64);
            let mut pkt = Vec::new();
            match i % 3 {
                0 => b.udp(5353, 53).write(&mut pkt, &payload).unwrap(),
                1 => b.tcp(40000, 443, next() as u32, 1024).syn().write(&mut pkt, &payload).unwrap(),
                _ => b
                    .tcp(8080, 40001, 7, 512)
                    .ack(next() as u32)
                    .fin()
                    .options(&[TcpOptionElement::MaximumSegmentSize(1460), TcpOptionElement::Noop])
                    .unwrap()
                    .write(&mut pkt, &payload)
                    .unwrap(),
            }
            // Ethernet padding, then a few header bytes changed (none for a quarter of them).
            pkt.extend(std::iter::repeat_n(0u8, (next() % 8) as usize));
            if i % 4 != 0 {
                for _ in 0..(next() % 3 + 1) {
                    let at = (next() % 60) as usize % pkt.len();
                    pkt[at] = next() as u8;
                }
            }
            let cut = if i % 7 == 0 { (next() as usize) % (pkt.len() + 1) } else { pkt.len() };
            let data = &pkt[..cut];
            if let Some(d) = ethernet_ipv4_tcp_udp(data) {
                direct += 1;
                assert_eq!((Some(d), None), sliced(linktype::ETHERNET, data), "packet {i}: {data:02x?}");
            }
        }
        assert!(direct > 8_000, "the direct path read only {direct} packets");
    }
}
