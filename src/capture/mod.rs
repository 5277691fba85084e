//! Reading packet captures (pcap and pcapng) and grouping their packets into flows.
//!
//! * [`Capture`]: a streaming reader (constant memory) over legacy pcap (both byte orders,
//!   micro- and nanosecond timestamps) and pcapng (several sections and interfaces, per-interface
//!   link type, snap length and timestamp resolution). The format is detected by its magic number.
//!   Every record yields a [`Packet`] whose [`Decoded`] view gives addresses, ports, TCP flags and
//!   the transport payload. Damaged records never stop reading: they become [`Fault`]s that carry
//!   the record index.
//! * [`FlowTable`]: a conntrack-like table of TCP connections and UDP exchanges, with what each
//!   flow says about itself (TLS SNI/ALPN, HTTP/1 method/Host/path, HTTP/2 preface, DNS names).
//! * [`stitch_redirects`]: pairs the `127.0.0.1:15001` leg of a redirected connection with the
//!   flow it belongs to.
//!
//! See docs/capture.md for formats, faults and the flow model.

mod decode;
mod dns;
mod flow;
mod http;
mod pcapng;
mod reader;
mod sniff;
mod stitch;
pub mod synth;
#[cfg(test)]
mod tests;
mod tls;
pub mod writer;

pub use decode::{Decoded, Protocol, TcpFlags, TcpInfo};
pub use dns::{parse_dns_message, DnsAnswer, DnsMessage, DnsQuestion, DnsRecord};
pub use flow::{DirStats, Flow, FlowId, FlowTable, FlowTableStats, Side, Transport};
pub use http::{parse_http_request, HttpParse, HttpRequest, H2_PREFACE};
pub use reader::{Capture, Format, Packet};
pub use sniff::{Sniffed, SniffedFields};
pub use stitch::{stitch_redirects, Stitch, REDIRECT_PORTS};
pub use tls::{parse_client_hello, ClientHello, TlsParse};

/// Link-layer header types (the `LINKTYPE_*` numbers of pcap and pcapng) this reader decodes.
pub mod linktype {
    /// BSD loopback: a 4-byte address family in the capturing host's byte order.
    pub const NULL: u32 = 0;
    /// Ethernet II, with 802.1Q / 802.1ad (QinQ) tags.
    pub const ETHERNET: u32 = 1;
    /// Raw IPv4 or IPv6 (version nibble decides).
    pub const RAW: u32 = 101;
    /// OpenBSD loopback: like NULL but the family is in network byte order.
    pub const LOOP: u32 = 108;
    /// Linux cooked capture v1 (`tcpdump -i any` before libpcap 1.10).
    pub const LINUX_SLL: u32 = 113;
    /// Raw IPv4.
    pub const IPV4: u32 = 228;
    /// Raw IPv6.
    pub const IPV6: u32 = 229;
    /// Linux cooked capture v2 (`tcpdump -i any` since libpcap 1.10).
    pub const LINUX_SLL2: u32 = 276;
}

/// A record that could not be read or decoded in full. Reading goes on after every fault except
/// the ones that leave no way to find the next record (noted per kind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The 0-based index of the packet record concerned (for a damaged non-packet pcapng block:
    /// the index the next packet record would have).
    pub index: u64,
    pub kind: FaultKind,
    /// Human-readable detail, with the byte offset in the file where it helps.
    pub detail: String,
}

/// What went wrong with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// The file ends inside a record (header or data): the last partial record. Reading stops.
    TruncatedRecord,
    /// The capture kept fewer bytes than were on the wire (caplen < original length).
    SnaplenCut,
    /// The record claims more captured bytes than the file's or interface's snap length.
    CaplenBeyondSnaplen,
    /// The record length is beyond what a capture can hold (a corrupt header). Reading stops.
    OversizedRecord,
    /// A pcapng block that is not well formed (bad length, bad trailer, unknown interface).
    BadBlock,
    /// The link type of the record's interface is not one this reader decodes.
    UnsupportedLinkType,
    /// The link, IP or transport headers are cut short or invalid; whatever could be decoded
    /// is still returned.
    MalformedPacket,
}

impl FaultKind {
    /// A stable lower-case name (used in reports and JSON).
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::TruncatedRecord => "truncated-record",
            FaultKind::SnaplenCut => "snaplen-cut",
            FaultKind::CaplenBeyondSnaplen => "caplen-beyond-snaplen",
            FaultKind::OversizedRecord => "oversized-record",
            FaultKind::BadBlock => "bad-block",
            FaultKind::UnsupportedLinkType => "unsupported-link-type",
            FaultKind::MalformedPacket => "malformed-packet",
        }
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "record {}: {}: {}", self.index, self.kind.name(), self.detail)
    }
}

/// Why a capture cannot be read at all (damage inside a readable file is a [`Fault`] instead).
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("cannot read the capture: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a pcap or pcapng file (magic number {magic:#010x})")]
    UnknownFormat { magic: u32 },
    #[error("the capture is too short to hold a file header ({len} bytes)")]
    TooShort { len: usize },
    #[error("unsupported {format} version {major}.{minor}")]
    UnsupportedVersion { format: &'static str, major: u16, minor: u16 },
}

/// The largest record accepted (bytes). Bigger lengths are corrupt headers: real captures,
/// even with TSO/GRO offload, stay far below this.
pub const MAX_RECORD_LEN: usize = 16 * 1024 * 1024;

/// At most this many faults are kept in the list (all are counted).
pub const MAX_FAULTS_KEPT: usize = 10_000;
