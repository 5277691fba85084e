//! A conntrack-like flow table: a TCP connection or a UDP exchange is one flow, keyed by its
//! 5-tuple in both directions. The client is the side that sent the SYN; when the start of a
//! TCP connection was not captured, the flow says so and the side with the higher port is
//! taken as the client (ephemeral ports are high). Flows are kept in first-seen order.

use std::net::{IpAddr, SocketAddr};

use super::decode::{Decoded, Protocol};
use super::reader::Packet;
use super::sniff::{dns_datagram, is_dns_port, Sniffed, Sniffer};
use super::stitch::Stitch;
use crate::util::fasthash::FastMap;

/// Index of a flow in first-seen order (0-based).
pub type FlowId = usize;

/// The transport of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    Tcp,
    Udp,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

/// Which end of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    Client,
    Server,
}

/// Counters for one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirStats {
    pub packets: u64,
    /// Bytes at the IP layer, as the IP headers state them (like conntrack's counters).
    pub bytes: u64,
    /// Transport payload bytes, as the headers state them.
    pub payload_bytes: u64,
}

/// One TCP connection or UDP exchange.
#[derive(Debug)]
pub struct Flow {
    pub id: FlowId,
    pub transport: Transport,
    pub client: SocketAddr,
    pub server: SocketAddr,
    /// Record index of the first packet; time of the first and the last.
    pub first_index: u64,
    pub first_nanos: u64,
    pub last_nanos: u64,
    /// The capture interface of the first packet (pcapng interface id; 0 for legacy pcap).
    pub interface: u32,
    /// TCP: the client's SYN was not captured (the capture started mid-connection).
    pub start_missing: bool,
    /// TCP: the server answered the SYN (SYN+ACK seen).
    pub syn_ack_seen: bool,
    pub to_server: DirStats,
    pub to_client: DirStats,
    /// The side that sent the first FIN / RST, if any.
    pub fin_from: Option<Side>,
    pub rst_from: Option<Side>,
    /// FIN seen from both sides.
    pub fin_both: bool,
    /// The side whose packet carried the flow's first payload byte (a server-first protocol
    /// when it is the server's).
    pub first_payload_from: Option<Side>,
    pub sniffed: Sniffed,
    /// Set by [`super::stitch_redirects`]: this flow is one leg of a redirected connection
    /// (boxed: few flows are).
    pub stitch: Option<Box<Stitch>>,
    sniff: SniffState,
    fin_client: bool,
    fin_server: bool,
}

impl Flow {
    /// Total packets in both directions.
    pub fn packets(&self) -> u64 {
        self.to_server.packets + self.to_client.packets
    }

    /// Total IP bytes in both directions.
    pub fn bytes(&self) -> u64 {
        self.to_server.bytes + self.to_client.bytes
    }

    /// Whether the connection was closed (RST, or FIN from both sides).
    pub fn closed(&self) -> bool {
        self.rst_from.is_some() || self.fin_both
    }
}

/// Where reading a flow's payload stands. A flow holds no sniffing buffers until its first
/// payload byte: most flows of a large capture never carry one (SYN scans, captures cut
/// short), and a flow's state is kept small (docs/reliability.md, "Memory per flow").
#[derive(Debug)]
enum SniffState {
    /// No payload yet: whether the flow is read as DNS, and the sequence numbers of the
    /// client's and the server's SYN (the reassembly starts after them), when `seen[side]`.
    Waiting {
        dns: bool,
        seen: [bool; 2],
        syn: [u32; 2],
    },
    Reading(Box<Sniffer>),
    Done,
}

/// Table-wide counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowTableStats {
    /// Packets that became part of a flow.
    pub flow_packets: u64,
    /// IP packets of other protocols (ICMP, fragments without ports, ...).
    pub other_ip_packets: u64,
    /// Records without an IP packet (ARP, unsupported link types, damaged headers).
    pub non_ip_packets: u64,
}

/// Key of a flow, with the two endpoints in canonical order so both directions find it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    /// IPv4 (every packet of a capture looks its flow up, so these are kept small): both
    /// addresses, lower endpoint first, then both ports and the transport.
    V4(u64, u64),
    Other {
        transport: Transport,
        lo: SocketAddr,
        hi: SocketAddr,
    },
}

impl Key {
    fn new(transport: Transport, a: SocketAddr, b: SocketAddr) -> Key {
        let (lo, hi) = if (a.ip(), a.port()) <= (b.ip(), b.port()) { (a, b) } else { (b, a) };
        match (lo.ip(), hi.ip()) {
            (IpAddr::V4(l), IpAddr::V4(h)) => Key::V4(
                u64::from(l.to_bits()) << 32 | u64::from(h.to_bits()),
                u64::from(lo.port()) << 16
                    | u64::from(hi.port())
                    | u64::from(transport == Transport::Udp) << 32,
            ),
            _ => Key::Other { transport, lo, hi },
        }
    }
}

/// Flow ids by key: IPv4 flows in a map of small entries, the others apart.
#[derive(Debug, Default)]
struct Index {
    v4: FastMap<(u64, u64), FlowId>,
    other: FastMap<Key, FlowId>,
}

impl Index {
    fn get(&self, key: &Key) -> Option<&FlowId> {
        match *key {
            Key::V4(a, b) => self.v4.get(&(a, b)),
            _ => self.other.get(key),
        }
    }

    fn insert(&mut self, key: Key, id: FlowId) {
        match key {
            Key::V4(a, b) => self.v4.insert((a, b), id),
            _ => self.other.insert(key, id),
        };
    }
}

/// The flow table. Feed it every packet in capture order with [`FlowTable::add`].
#[derive(Debug, Default)]
pub struct FlowTable {
    flows: Vec<Flow>,
    /// Lookup only; never iterated (flows are listed from `flows`, in first-seen order).
    index: Index,
    stats: FlowTableStats,
}

impl FlowTable {
    pub fn new() -> FlowTable {
        FlowTable::default()
    }

    /// Accounts one packet; returns the flow it belongs to (None for non-TCP/UDP packets).
    pub fn add(&mut self, pkt: &Packet<'_>) -> Option<FlowId> {
        let Some(d) = pkt.decoded.as_ref() else {
            self.stats.non_ip_packets += 1;
            return None;
        };
        let transport = match d.protocol {
            Protocol::Tcp => Transport::Tcp,
            Protocol::Udp => Transport::Udp,
            _ => {
                self.stats.other_ip_packets += 1;
                return None;
            }
        };
        self.stats.flow_packets += 1;
        let src = SocketAddr::new(d.src, d.src_port);
        let dst = SocketAddr::new(d.dst, d.dst_port);
        let key = Key::new(transport, src, dst);
        let id = match self.index.get(&key) {
            // A new SYN on a closed connection's tuple starts a new connection (port reuse).
            Some(&id) if !(self.flows[id].closed() && is_fresh_syn(d)) => id,
            _ => {
                let id = self.flows.len();
                self.flows.push(new_flow(id, transport, pkt, d, src, dst));
                self.index.insert(key, id);
                id
            }
        };
        let flow = &mut self.flows[id];
        update(flow, pkt, d, src);
        Some(id)
    }

    /// The flows in first-seen order.
    pub fn flows(&self) -> &[Flow] {
        &self.flows
    }

    /// Mutable access (e.g. for [`super::stitch_redirects`]).
    pub fn flows_mut(&mut self) -> &mut [Flow] {
        &mut self.flows
    }

    pub fn get(&self, id: FlowId) -> Option<&Flow> {
        self.flows.get(id)
    }

    pub fn stats(&self) -> FlowTableStats {
        self.stats
    }

    /// Every (name, address) pair from the DNS answers of all flows, in flow order (for a
    /// name table: later flows to those addresses can then be named).
    pub fn dns_addresses(&self) -> Vec<(String, IpAddr)> {
        let mut out: Vec<(String, IpAddr)> = Vec::new();
        for f in &self.flows {
            for (n, ip) in f.sniffed.dns_addresses() {
                if !out.iter().any(|(m, a)| m == n && *a == ip) {
                    out.push((n.to_string(), ip));
                }
            }
        }
        out
    }

    /// Consumes the table, returning the flows in first-seen order; the lookup index and the
    /// buffers of flows still being sniffed are dropped.
    pub fn into_flows(self) -> Vec<Flow> {
        let mut flows = self.flows;
        for f in &mut flows {
            if matches!(f.sniff, SniffState::Reading(_)) {
                f.sniff = SniffState::Done;
            }
        }
        flows
    }
}

fn is_fresh_syn(d: &Decoded<'_>) -> bool {
    d.tcp.is_some_and(|t| t.flags.syn() && !t.flags.ack())
}

fn new_flow(
    id: FlowId,
    transport: Transport,
    pkt: &Packet<'_>,
    d: &Decoded<'_>,
    src: SocketAddr,
    dst: SocketAddr,
) -> Flow {
    let (client, server, start_missing) = match d.tcp {
        Some(t) if t.flags.syn() && !t.flags.ack() => (src, dst, false),
        Some(t) if t.flags.syn() => (dst, src, true),
        Some(_) if src.port() < dst.port() => (dst, src, true),
        Some(_) => (src, dst, true),
        // UDP: the sender of the first datagram, unless it comes from a DNS port to another port.
        None if is_dns_port(src.port()) && !is_dns_port(dst.port()) => (dst, src, false),
        None => (src, dst, false),
    };
    let dns = is_dns_port(server.port()) || is_dns_port(client.port());
    Flow {
        id,
        transport,
        client,
        server,
        first_index: pkt.index,
        first_nanos: pkt.ts_nanos,
        last_nanos: pkt.ts_nanos,
        interface: pkt.interface,
        start_missing,
        syn_ack_seen: false,
        to_server: DirStats::default(),
        to_client: DirStats::default(),
        fin_from: None,
        rst_from: None,
        fin_both: false,
        sniffed: Sniffed::default(),
        stitch: None,
        sniff: SniffState::Waiting { dns, seen: [false; 2], syn: [0; 2] },
        fin_client: false,
        fin_server: false,
        first_payload_from: None,
    }
}

fn update(flow: &mut Flow, pkt: &Packet<'_>, d: &Decoded<'_>, src: SocketAddr) {
    let from_client = src == flow.client;
    let side = if from_client { Side::Client } else { Side::Server };
    flow.last_nanos = flow.last_nanos.max(pkt.ts_nanos);
    let dir = if from_client { &mut flow.to_server } else { &mut flow.to_client };
    dir.packets += 1;
    dir.bytes += u64::from(d.ip_len);
    dir.payload_bytes += u64::from(d.payload_len);
    if d.payload_len > 0 && flow.first_payload_from.is_none() {
        flow.first_payload_from = Some(side);
    }
    if let Some(t) = d.tcp {
        if t.flags.syn() && !t.flags.ack() && from_client {
            // The SYN arrived after the SYN+ACK (capture reordering across interfaces).
            flow.start_missing = false;
        }
        if t.flags.syn() && t.flags.ack() && !from_client {
            flow.syn_ack_seen = true;
        }
        if t.flags.rst() && flow.rst_from.is_none() {
            flow.rst_from = Some(side);
        }
        if t.flags.fin() {
            flow.fin_from.get_or_insert(side);
            if from_client {
                flow.fin_client = true;
            } else {
                flow.fin_server = true;
            }
            flow.fin_both = flow.fin_client && flow.fin_server;
        }
    }
    match (d.tcp, &mut flow.sniff) {
        (_, SniffState::Done) => {}
        // Only DNS is read from UDP payloads.
        (None, SniffState::Waiting { dns: true, .. }) => dns_datagram(&mut flow.sniffed, d.payload),
        (None, _) => flow.sniff = SniffState::Done,
        (Some(t), SniffState::Waiting { seen, syn, .. }) if d.payload_len == 0 => {
            if t.flags.syn() {
                let side = usize::from(!from_client);
                (seen[side], syn[side]) = (true, t.seq);
            }
        }
        (Some(t), state) => {
            if let SniffState::Waiting { dns, seen, syn } = *state {
                // The first payload: the sniffer starts, told of the SYNs seen before it.
                let mut s = if dns { Sniffer::new_dns() } else { Sniffer::default() };
                for side in (0..2).filter(|&i| seen[i]) {
                    s.tcp(&mut flow.sniffed, side == 0, syn[side], true, &[], 0);
                }
                *state = SniffState::Reading(Box::new(s));
            }
            if let SniffState::Reading(s) = state {
                s.tcp(&mut flow.sniffed, from_client, t.seq, t.flags.syn(), d.payload, d.payload_len);
                if s.done() {
                    *state = SniffState::Done;
                }
            }
        }
    }
}
