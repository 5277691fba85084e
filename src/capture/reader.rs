//! The streaming capture reader: one reusable buffer, records framed by hand so that every
//! length is checked before it is trusted (a corrupt length becomes a fault, never a huge
//! allocation or a panic).

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read};

use super::decode::{decode, Decoded};
use super::pcapng::{self, NgBlock, NgState};
use super::{CaptureError, Fault, FaultKind, MAX_FAULTS_KEPT, MAX_RECORD_LEN};

/// A little over 1 MiB: a read into the free part asks for more than a 1 MiB `BufReader`
/// holds, so such a reader passes it through instead of copying twice, and the buffer still
/// fits a core's cache while its packets are decoded.
const INITIAL_BUFFER: usize = (1 << 20) + (256 << 10);

/// The container format, from the file's magic number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Legacy pcap (`a1b2c3d4` microseconds, `a1b23c4d` nanoseconds, either byte order).
    Pcap { big_endian: bool, nanosecond: bool, snaplen: u32, link_type: u32 },
    /// pcapng (byte order per section; link type, snap length and resolution per interface).
    PcapNg,
}

/// One packet record. `data` and the payload inside `decoded` borrow the reader's buffer and
/// are valid until the next call to [`Capture::next_packet`].
#[derive(Debug, Clone)]
pub struct Packet<'a> {
    /// 0-based index of the record among the file's packet records.
    pub index: u64,
    /// Time since the Unix epoch in nanoseconds (pcapng: resolution and offset applied).
    pub ts_nanos: u64,
    /// pcapng interface id (0 for legacy pcap).
    pub interface: u32,
    /// `LINKTYPE_*` of the record (see [`super::linktype`]).
    pub link_type: u32,
    /// Bytes captured (the length of `data`).
    pub caplen: u32,
    /// Bytes on the wire.
    pub origlen: u32,
    /// The captured bytes, link header included.
    pub data: &'a [u8],
    /// The IP/transport view, when the record holds an IPv4 or IPv6 packet.
    pub decoded: Option<Decoded<'a>>,
}

/// Faults, kept up to [`MAX_FAULTS_KEPT`] and all counted.
#[derive(Debug, Default)]
pub(crate) struct FaultLog {
    kept: Vec<Fault>,
    counts: BTreeMap<FaultKind, u64>,
}

impl FaultLog {
    pub(crate) fn push(&mut self, index: u64, kind: FaultKind, detail: String) {
        *self.counts.entry(kind).or_insert(0) += 1;
        if self.kept.len() < MAX_FAULTS_KEPT {
            self.kept.push(Fault { index, kind, detail });
        }
    }
}

/// A streaming pcap/pcapng reader. Memory stays constant (one buffer that grows only to the
/// largest record, at most [`MAX_RECORD_LEN`]).
///
/// ```no_run
/// # fn main() -> Result<(), meshpath::capture::CaptureError> {
/// let file = std::fs::File::open("capture.pcap")?;
/// let mut cap = meshpath::capture::Capture::open(file)?;
/// while let Some(pkt) = cap.next_packet() {
///     let _ = (pkt.index, pkt.decoded.as_ref().map(|d| d.dst_port));
/// }
/// for fault in cap.faults() { eprintln!("{fault}"); }
/// # Ok(()) }
/// ```
pub struct Capture<R> {
    src: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    /// File offset of `buf[start]`.
    offset: u64,
    format: Format,
    ng: NgState,
    next_index: u64,
    pending: usize,
    finished: bool,
    faults: FaultLog,
}

impl<R: Read> Capture<R> {
    /// Reads the file header and detects the format from its magic number.
    pub fn open(src: R) -> Result<Capture<R>, CaptureError> {
        let mut cap = Capture {
            src,
            buf: vec![0; INITIAL_BUFFER],
            start: 0,
            end: 0,
            eof: false,
            offset: 0,
            format: Format::PcapNg,
            ng: NgState::default(),
            next_index: 0,
            pending: 0,
            finished: false,
            faults: FaultLog::default(),
        };
        if !cap.fill(4)? {
            return Err(CaptureError::TooShort { len: cap.available() });
        }
        let head = cap.window(4);
        let magic_le = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let magic_be = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let legacy = match (magic_le, magic_be) {
            (0xa1b2_c3d4, _) => Some((false, false)),
            (0xa1b2_3c4d, _) => Some((false, true)),
            (_, 0xa1b2_c3d4) => Some((true, false)),
            (_, 0xa1b2_3c4d) => Some((true, true)),
            _ => None,
        };
        if let Some((big_endian, nanosecond)) = legacy {
            if !cap.fill(24)? {
                return Err(CaptureError::TooShort { len: cap.available() });
            }
            let h = cap.window(24);
            let rd = |o: usize| read_u32(h, o, big_endian);
            let snaplen = rd(16);
            // The upper bits of the link-type field carry FCS information, not the type.
            let link_type = rd(20) & 0xffff;
            cap.format = Format::Pcap { big_endian, nanosecond, snaplen, link_type };
            cap.advance(24);
            Ok(cap)
        } else if magic_le == pcapng::SHB_TYPE {
            cap.format = Format::PcapNg;
            Ok(cap)
        } else {
            Err(CaptureError::UnknownFormat { magic: magic_be })
        }
    }

    /// The container format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Faults seen so far (at most [`MAX_FAULTS_KEPT`] are kept), in file order.
    pub fn faults(&self) -> &[Fault] {
        &self.faults.kept
    }

    /// How many faults of each kind were seen so far (all of them, kept or not).
    pub fn fault_counts(&self) -> &BTreeMap<FaultKind, u64> {
        &self.faults.counts
    }

    /// Packet records returned so far.
    pub fn packets_read(&self) -> u64 {
        self.next_index
    }

    /// Bytes of the file consumed so far (for progress reporting).
    pub fn bytes_read(&self) -> u64 {
        self.offset + self.pending as u64
    }

    /// The next packet record, or `None` at the end of the file (or after a fault that leaves
    /// no way to find the next record). Never panics, whatever the input.
    pub fn next_packet(&mut self) -> Option<Packet<'_>> {
        let pending = std::mem::take(&mut self.pending);
        self.advance(pending);
        if self.finished {
            return None;
        }
        match self.frame_next() {
            Ok(Some(rec)) => Some(self.build(rec)),
            Ok(None) => {
                self.finished = true;
                None
            }
            Err(e) => {
                self.faults.push(
                    self.next_index,
                    FaultKind::TruncatedRecord,
                    format!("read error at byte {}: {e}", self.offset),
                );
                self.finished = true;
                None
            }
        }
    }

    /// Reads to the end and returns the number of packet records (a convenience for callers
    /// that only want the faults).
    pub fn drain(&mut self) -> u64 {
        while self.next_packet().is_some() {}
        self.next_index
    }

    fn build(&mut self, rec: Record) -> Packet<'_> {
        let index = self.next_index;
        self.next_index += 1;
        self.pending = rec.len;
        let Capture { buf, start, faults, .. } = self;
        let data = buf.get(*start + rec.data_at..*start + rec.data_at + rec.caplen).unwrap_or(&[]);
        let caplen = data.len() as u32;
        let (decoded, problem) = decode(rec.link_type, data);
        let cut = caplen < rec.origlen;
        if cut {
            let mut detail = format!("captured {caplen} of {} bytes", rec.origlen);
            if let Some(p) = &problem {
                detail.push_str("; ");
                detail.push_str(p);
            }
            faults.push(index, FaultKind::SnaplenCut, detail);
        } else if let Some(p) = problem {
            let kind = if p.starts_with("link type") {
                FaultKind::UnsupportedLinkType
            } else {
                FaultKind::MalformedPacket
            };
            faults.push(index, kind, p);
        }
        Packet {
            index,
            ts_nanos: rec.ts_nanos,
            interface: rec.interface,
            link_type: rec.link_type,
            caplen,
            origlen: rec.origlen,
            data,
            decoded,
        }
    }

    /// Frames the next packet record; `Ok(None)` at the end.
    fn frame_next(&mut self) -> std::io::Result<Option<Record>> {
        match self.format {
            Format::Pcap { big_endian, nanosecond, snaplen, link_type } => {
                self.frame_legacy(big_endian, nanosecond, snaplen, link_type)
            }
            Format::PcapNg => self.frame_ng(),
        }
    }

    fn frame_legacy(
        &mut self,
        big_endian: bool,
        nanosecond: bool,
        snaplen: u32,
        link_type: u32,
    ) -> std::io::Result<Option<Record>> {
        let index = self.next_index;
        if !self.fill(16)? {
            let left = self.available();
            if left > 0 {
                self.faults.push(
                    index,
                    FaultKind::TruncatedRecord,
                    format!("file ends inside a record header ({left} of 16 bytes) at byte {}", self.offset),
                );
            }
            return Ok(None);
        }
        let h = self.window(16);
        let rd = |o: usize| read_u32(h, o, big_endian);
        let (sec, frac, caplen, origlen) = (rd(0), rd(4), rd(8) as usize, rd(12));
        if caplen > MAX_RECORD_LEN {
            self.faults.push(
                index,
                FaultKind::OversizedRecord,
                format!("record at byte {} claims {caplen} captured bytes; reading stops", self.offset),
            );
            return Ok(None);
        }
        if snaplen > 0 && caplen > snaplen as usize {
            self.faults.push(
                index,
                FaultKind::CaplenBeyondSnaplen,
                format!("captured length {caplen} exceeds the file's snap length {snaplen}"),
            );
        }
        if !self.fill(16 + caplen)? {
            let have = self.available().saturating_sub(16);
            self.faults.push(
                index,
                FaultKind::TruncatedRecord,
                format!(
                    "file ends inside the record at byte {}: {have} of {caplen} captured bytes present",
                    self.offset
                ),
            );
            return Ok(None);
        }
        let frac_nanos = if nanosecond { u64::from(frac) } else { u64::from(frac) * 1000 };
        let ts_nanos = u64::from(sec).saturating_mul(1_000_000_000).saturating_add(frac_nanos);
        Ok(Some(Record { len: 16 + caplen, data_at: 16, caplen, origlen, ts_nanos, interface: 0, link_type }))
    }

    fn frame_ng(&mut self) -> std::io::Result<Option<Record>> {
        loop {
            let index = self.next_index;
            if !self.fill(12)? {
                let left = self.available();
                // 8 bytes can be a whole block header only for a malformed block; anything left
                // over is a partial block.
                if left > 0 {
                    self.faults.push(
                        index,
                        FaultKind::TruncatedRecord,
                        format!("file ends inside a block header ({left} bytes) at byte {}", self.offset),
                    );
                }
                return Ok(None);
            }
            let head = self.buf.get(self.start..self.start + 12).unwrap_or(&[]);
            let len = match pcapng::block_len(head, &mut self.ng) {
                Ok(len) => len,
                Err(detail) => {
                    self.faults.push(
                        index,
                        FaultKind::BadBlock,
                        format!("block at byte {}: {detail}; reading stops", self.offset),
                    );
                    return Ok(None);
                }
            };
            if !self.fill(len)? {
                let have = self.available();
                self.faults.push(
                    index,
                    FaultKind::TruncatedRecord,
                    format!(
                        "file ends inside the block at byte {}: {have} of {len} bytes present",
                        self.offset
                    ),
                );
                return Ok(None);
            }
            let block = self.buf.get(self.start..self.start + len).unwrap_or(&[]);
            match pcapng::parse_block(block, &mut self.ng) {
                NgBlock::Packet(p) => {
                    if p.snaplen > 0 && p.caplen > p.snaplen as usize {
                        self.faults.push(
                            index,
                            FaultKind::CaplenBeyondSnaplen,
                            format!(
                                "captured length {} exceeds interface {}'s snap length {}",
                                p.caplen, p.interface, p.snaplen
                            ),
                        );
                    }
                    return Ok(Some(Record {
                        len,
                        data_at: p.data_at,
                        caplen: p.caplen,
                        origlen: p.origlen,
                        ts_nanos: p.ts_nanos,
                        interface: p.interface,
                        link_type: p.link_type,
                    }));
                }
                NgBlock::Other => {}
                NgBlock::Fault { kind, detail, packet } => {
                    let at = self.offset;
                    self.faults.push(index, kind, format!("block at byte {at}: {detail}"));
                    if packet {
                        // A packet block that cannot be read still takes a record index, so the
                        // indexes match what other tools number.
                        self.next_index += 1;
                    }
                }
            }
            self.advance(len);
        }
    }

    fn available(&self) -> usize {
        self.end - self.start
    }

    /// `n` bytes from the current position; callers made sure they are present.
    fn window(&self, n: usize) -> &[u8] {
        self.buf.get(self.start..self.start + n).unwrap_or(&[])
    }

    fn advance(&mut self, n: usize) {
        let n = n.min(self.available());
        self.start += n;
        self.offset += n as u64;
    }

    /// Makes sure `n` bytes are buffered; `Ok(false)` when the input ends first.
    fn fill(&mut self, n: usize) -> std::io::Result<bool> {
        if self.available() >= n {
            return Ok(true);
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() < n {
            self.buf.resize(n.max(self.buf.len() * 2).min(MAX_RECORD_LEN + 64).max(n), 0);
        }
        while self.end < n && !self.eof {
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(k) => self.end += k,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.end >= n)
    }
}

/// A framed packet record, by offsets into the current buffer window.
struct Record {
    len: usize,
    data_at: usize,
    caplen: usize,
    origlen: u32,
    ts_nanos: u64,
    interface: u32,
    link_type: u32,
}

#[inline]
pub(crate) fn read_u32(b: &[u8], at: usize, big_endian: bool) -> u32 {
    let mut w = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        w.copy_from_slice(s);
    }
    if big_endian {
        u32::from_be_bytes(w)
    } else {
        u32::from_le_bytes(w)
    }
}

pub(crate) fn read_u16(b: &[u8], at: usize, big_endian: bool) -> u16 {
    let mut w = [0u8; 2];
    if let Some(s) = b.get(at..at + 2) {
        w.copy_from_slice(s);
    }
    if big_endian {
        u16::from_be_bytes(w)
    } else {
        u16::from_le_bytes(w)
    }
}
