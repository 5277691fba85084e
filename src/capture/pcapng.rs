//! pcapng blocks: section headers (byte order), interface descriptions (link type, snap length,
//! timestamp resolution and offset) and the packet blocks (enhanced, simple, obsolete).
//! Block layouts follow draft-ietf-opsawg-pcapng §4.

use super::reader::{read_u16, read_u32};
use super::{FaultKind, MAX_RECORD_LEN};

pub(crate) const SHB_TYPE: u32 = 0x0a0d_0d0a;
const IDB_TYPE: u32 = 1;
const OBSOLETE_PB_TYPE: u32 = 2;
const SPB_TYPE: u32 = 3;
const EPB_TYPE: u32 = 6;
const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;

/// One interface of the current section.
#[derive(Debug, Clone, Copy)]
struct Interface {
    link_type: u32,
    snaplen: u32,
    /// Timestamp units per second (if_tsresol; default 10^6).
    units_per_sec: u64,
    /// Seconds added to every timestamp (if_tsoffset).
    offset_secs: i64,
}

#[derive(Debug, Default)]
pub(crate) struct NgState {
    big_endian: bool,
    interfaces: Vec<Interface>,
}

pub(crate) struct NgPacket {
    pub data_at: usize,
    pub caplen: usize,
    pub origlen: u32,
    pub ts_nanos: u64,
    pub interface: u32,
    pub link_type: u32,
    pub snaplen: u32,
}

pub(crate) enum NgBlock {
    Packet(NgPacket),
    Other,
    /// `packet` is true when the damaged block was a packet block.
    Fault {
        kind: FaultKind,
        detail: String,
        packet: bool,
    },
}

/// The total length of the block starting with these 12 bytes. A section header sets the byte
/// order first (its type reads the same in both orders).
pub(crate) fn block_len(head: &[u8], st: &mut NgState) -> Result<usize, String> {
    let ty = read_u32(head, 0, false);
    if ty == SHB_TYPE {
        match read_u32(head, 8, false) {
            BYTE_ORDER_MAGIC => st.big_endian = false,
            m if m.swap_bytes() == BYTE_ORDER_MAGIC => st.big_endian = true,
            m => return Err(format!("section header with unknown byte-order magic {m:#010x}")),
        }
    }
    let len = read_u32(head, 4, st.big_endian) as usize;
    if len < 12 || !len.is_multiple_of(4) {
        return Err(format!("block length {len} is not a multiple of 4 of at least 12"));
    }
    if len > MAX_RECORD_LEN {
        return Err(format!("block length {len} exceeds the {MAX_RECORD_LEN}-byte limit"));
    }
    Ok(len)
}

/// Interprets one whole block (`block.len()` is its total length).
pub(crate) fn parse_block(block: &[u8], st: &mut NgState) -> NgBlock {
    let be = st.big_endian;
    let ty = read_u32(block, 0, be);
    let len = block.len();
    if len < 12 {
        return NgBlock::Fault {
            kind: FaultKind::BadBlock,
            detail: format!("block of {len} bytes"),
            packet: false,
        };
    }
    let trailer = read_u32(block, len - 4, be) as usize;
    if trailer != len {
        let packet = matches!(ty, EPB_TYPE | SPB_TYPE | OBSOLETE_PB_TYPE);
        return NgBlock::Fault {
            kind: FaultKind::BadBlock,
            detail: format!("block type {ty:#x}: trailing length {trailer} differs from {len}"),
            packet,
        };
    }
    match ty {
        SHB_TYPE => {
            st.interfaces.clear();
            NgBlock::Other
        }
        IDB_TYPE => {
            st.interfaces.push(parse_idb(block, be));
            NgBlock::Other
        }
        EPB_TYPE | OBSOLETE_PB_TYPE => {
            if len < 32 {
                return bad_packet(format!("packet block of {len} bytes is too short"));
            }
            let interface =
                if ty == EPB_TYPE { read_u32(block, 8, be) } else { u32::from(read_u16(block, 8, be)) };
            let ts_high = read_u32(block, 12, be);
            let ts_low = read_u32(block, 16, be);
            let caplen = read_u32(block, 20, be) as usize;
            let origlen = read_u32(block, 24, be);
            if caplen > len - 32 {
                return bad_packet(format!("captured length {caplen} runs past the block ({len} bytes)"));
            }
            let Some(iface) = st.interfaces.get(interface as usize).copied() else {
                return bad_packet(format!("packet names interface {interface}, which is not described"));
            };
            let ts = (u64::from(ts_high) << 32) | u64::from(ts_low);
            let pkt = NgPacket {
                data_at: 28,
                caplen,
                origlen,
                ts_nanos: to_nanos(ts, &iface),
                interface,
                link_type: iface.link_type,
                snaplen: iface.snaplen,
            };
            NgBlock::Packet(pkt)
        }
        SPB_TYPE => {
            if len < 16 {
                return bad_packet(format!("simple packet block of {len} bytes is too short"));
            }
            let Some(iface) = st.interfaces.first().copied() else {
                return bad_packet("simple packet block before any interface description".into());
            };
            let origlen = read_u32(block, 8, be);
            let mut caplen = (origlen as usize).min(len - 16);
            if iface.snaplen > 0 {
                caplen = caplen.min(iface.snaplen as usize);
            }
            let pkt = NgPacket {
                data_at: 12,
                caplen,
                origlen,
                ts_nanos: 0,
                interface: 0,
                link_type: iface.link_type,
                snaplen: iface.snaplen,
            };
            NgBlock::Packet(pkt)
        }
        _ => NgBlock::Other,
    }
}

fn bad_packet(detail: String) -> NgBlock {
    NgBlock::Fault { kind: FaultKind::BadBlock, detail, packet: true }
}

/// Link type, snap length and the if_tsresol (9) / if_tsoffset (14) options.
fn parse_idb(block: &[u8], be: bool) -> Interface {
    let mut iface = Interface {
        link_type: u32::from(read_u16(block, 8, be)),
        snaplen: read_u32(block, 12, be),
        units_per_sec: 1_000_000,
        offset_secs: 0,
    };
    let end = block.len().saturating_sub(4);
    let mut at = 16;
    while at + 4 <= end {
        let code = read_u16(block, at, be);
        let olen = usize::from(read_u16(block, at + 2, be));
        let value = block.get(at + 4..(at + 4 + olen).min(end)).unwrap_or(&[]);
        match (code, value) {
            (0, _) => break,
            (9, [r, ..]) => {
                iface.units_per_sec = if r & 0x80 != 0 {
                    1u64.checked_shl(u32::from(r & 0x7f)).unwrap_or(0)
                } else {
                    10u64.checked_pow(u32::from(*r)).unwrap_or(0)
                };
                if iface.units_per_sec == 0 {
                    iface.units_per_sec = 1_000_000;
                }
            }
            (14, v) if v.len() >= 8 => {
                let mut w = [0u8; 8];
                w.copy_from_slice(&v[..8]);
                iface.offset_secs = if be { i64::from_be_bytes(w) } else { i64::from_le_bytes(w) };
            }
            _ => {}
        }
        at += 4 + olen.div_ceil(4) * 4;
    }
    iface
}

fn to_nanos(units: u64, iface: &Interface) -> u64 {
    let ns = u128::from(units) * 1_000_000_000 / u128::from(iface.units_per_sec.max(1));
    let ns = ns as i128 + i128::from(iface.offset_secs) * 1_000_000_000;
    ns.clamp(0, i128::from(u64::MAX)) as u64
}
