//! A minimal legacy pcap writer (24-byte file header, 16-byte record headers), for generated
//! captures in tests, benchmarks and examples.

use std::io::{self, Write};

/// Writes legacy pcap records.
pub struct PcapWriter<W: Write> {
    out: W,
    nanosecond: bool,
    big_endian: bool,
}

impl<W: Write> PcapWriter<W> {
    /// A little-endian writer; `nanosecond` selects the `a1b23c4d` magic.
    pub fn new(out: W, link_type: u32, snaplen: u32, nanosecond: bool) -> io::Result<Self> {
        Self::with_byte_order(out, link_type, snaplen, nanosecond, false)
    }

    /// A writer with an explicit byte order.
    pub fn with_byte_order(
        mut out: W,
        link_type: u32,
        snaplen: u32,
        nanosecond: bool,
        big_endian: bool,
    ) -> io::Result<Self> {
        let magic: u32 = if nanosecond { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
        let mut h = Vec::with_capacity(24);
        let put32 = |h: &mut Vec<u8>, v: u32| {
            h.extend_from_slice(&if big_endian { v.to_be_bytes() } else { v.to_le_bytes() })
        };
        put32(&mut h, magic);
        let (major, minor) = (2u16, 4u16);
        for v in [major, minor] {
            h.extend_from_slice(&if big_endian { v.to_be_bytes() } else { v.to_le_bytes() });
        }
        put32(&mut h, 0); // thiszone
        put32(&mut h, 0); // sigfigs
        put32(&mut h, snaplen);
        put32(&mut h, link_type);
        out.write_all(&h)?;
        Ok(PcapWriter { out, nanosecond, big_endian })
    }

    /// Writes one record: `data` is what was captured, `origlen` the length on the wire.
    pub fn write_packet(&mut self, ts_nanos: u64, data: &[u8], origlen: u32) -> io::Result<()> {
        let sec = (ts_nanos / 1_000_000_000) as u32;
        let frac = (ts_nanos % 1_000_000_000) as u32;
        let frac = if self.nanosecond { frac } else { frac / 1000 };
        let mut h = [0u8; 16];
        for (i, v) in [sec, frac, data.len() as u32, origlen].into_iter().enumerate() {
            let b = if self.big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
            h[i * 4..i * 4 + 4].copy_from_slice(&b);
        }
        self.out.write_all(&h)?;
        self.out.write_all(data)
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}
