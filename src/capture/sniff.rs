//! What a flow says about itself, read from its first payload bytes: TLS ClientHello (SNI,
//! ALPN), HTTP/1 request head, the HTTP/2 preface, DNS questions and answers. TCP bytes are
//! reassembled in sequence order per direction, up to a limit, so that a ClientHello spread over
//! several segments is still read.

use std::net::IpAddr;

use super::dns::{parse_dns_message, DnsAnswer, DnsMessage, DnsQuestion, DnsRecord};
use super::http::{h2_preface, parse_http_request, HttpParse, HttpRequest};
use super::tls::{parse_client_hello, ClientHello, TlsParse};

/// Client bytes kept while waiting for a complete ClientHello or request head.
pub(crate) const SNIFF_LIMIT: usize = 16 * 1024;
/// Bytes kept per direction of a DNS-over-TCP stream while a message is incomplete.
const DNS_STREAM_LIMIT: usize = 64 * 1024 + 2;
/// Questions and answers kept per flow.
const DNS_KEEP: usize = 64;

/// Ports whose payload is read as DNS (53; 5353 mDNS; 15053 Istio's DNS proxy).
pub(crate) fn is_dns_port(port: u16) -> bool {
    matches!(port, 53 | 5353 | 15053)
}

/// What was read from a flow's payload: the fields of [`SniffedFields`], read through `Deref`.
/// Most flows of a large capture say nothing (a SYN, opaque bytes): for them this is one
/// pointer-sized `None` and no allocation; the fields are allocated on the first write.
#[derive(Debug, Clone, Default)]
pub struct Sniffed(Option<Box<SniffedFields>>);

/// The fields of a [`Sniffed`] that holds nothing.
static NOTHING: SniffedFields = SniffedFields {
    tls: None,
    http: None,
    h2_preface: false,
    dns_questions: Vec::new(),
    dns_answers: Vec::new(),
    note: None,
};

impl std::ops::Deref for Sniffed {
    type Target = SniffedFields;
    fn deref(&self) -> &SniffedFields {
        self.0.as_deref().unwrap_or(&NOTHING)
    }
}

impl std::ops::DerefMut for Sniffed {
    fn deref_mut(&mut self) -> &mut SniffedFields {
        self.0.get_or_insert_with(Box::default)
    }
}

impl PartialEq for Sniffed {
    fn eq(&self, other: &Sniffed) -> bool {
        **self == **other
    }
}

impl Eq for Sniffed {}

/// What was read from a flow's payload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SniffedFields {
    pub tls: Option<ClientHello>,
    pub http: Option<HttpRequest>,
    /// The client sent the HTTP/2 connection preface (cleartext HTTP/2, prior knowledge).
    pub h2_preface: bool,
    /// DNS questions seen (both directions, de-duplicated, in order).
    pub dns_questions: Vec<DnsQuestion>,
    /// DNS answers seen (de-duplicated, in order).
    pub dns_answers: Vec<DnsAnswer>,
    /// Why sniffing stopped without a result, when it did (`"tls-malformed"`, `"gap"`,
    /// `"cut"`, `"limit"`).
    pub note: Option<&'static str>,
}

impl SniffedFields {
    /// The (name, address) pairs of the A/AAAA answers, for a name table.
    pub fn dns_addresses(&self) -> impl Iterator<Item = (&str, IpAddr)> + '_ {
        self.dns_answers.iter().filter_map(|a| match a.record {
            DnsRecord::Addr(ip) => Some((a.name.as_str(), ip)),
            DnsRecord::Cname(_) => None,
        })
    }

    /// The name the flow asks for: SNI, else the HTTP Host, else the first DNS question.
    pub fn name(&self) -> Option<&str> {
        self.tls
            .as_ref()
            .and_then(|t| t.sni.as_deref())
            .or_else(|| self.http.as_ref().and_then(|h| h.host.as_deref()))
            .or_else(|| self.dns_questions.first().map(|q| q.name.as_str()))
    }
}

impl Sniffed {
    fn add_dns(&mut self, m: DnsMessage) {
        if m.questions.is_empty() && m.answers.is_empty() {
            return;
        }
        let s = &mut **self;
        for q in m.questions {
            if s.dns_questions.len() < DNS_KEEP && !s.dns_questions.contains(&q) {
                s.dns_questions.push(q);
            }
        }
        for a in m.answers {
            if s.dns_answers.len() < DNS_KEEP && !s.dns_answers.contains(&a) {
                s.dns_answers.push(a);
            }
        }
    }
}

/// One direction of a TCP byte stream, reassembled in order from the start seen.
#[derive(Debug, Default)]
pub(crate) struct Stream {
    next_seq: Option<u32>,
    buf: Vec<u8>,
}

impl Stream {
    /// Adds a segment; returns false when the stream cannot continue in order (a gap, a cut
    /// segment, or the limit).
    fn push(
        &mut self,
        seq: u32,
        syn: bool,
        payload: &[u8],
        stated: u32,
        limit: usize,
    ) -> Result<(), &'static str> {
        if syn {
            self.next_seq = Some(seq.wrapping_add(1));
        }
        if stated == 0 {
            return Ok(());
        }
        let seq = if syn { seq.wrapping_add(1) } else { seq };
        let next = *self.next_seq.get_or_insert(seq);
        let off = seq.wrapping_sub(next) as i32;
        if off > 0 {
            return Err("gap");
        }
        let skip = off.unsigned_abs() as usize;
        if skip >= stated as usize {
            return Ok(()); // a retransmission of bytes already held
        }
        let new = payload.get(skip..).unwrap_or(&[]);
        let room = limit.saturating_sub(self.buf.len());
        self.buf.extend_from_slice(&new[..new.len().min(room)]);
        self.next_seq = Some(seq.wrapping_add(stated));
        if payload.len() < stated as usize {
            return Err("cut");
        }
        if new.len() > room {
            return Err("limit");
        }
        Ok(())
    }
}

/// What the client stream has been recognised as so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Phase {
    #[default]
    Undecided,
    /// After an HTTP CONNECT request: the tunnel's first bytes are read as a ClientHello.
    Tunnel,
    Dns,
    Done,
}

/// Per-flow sniffing state (dropped once the flow has said what it is).
#[derive(Debug, Default)]
pub(crate) struct Sniffer {
    phase: Phase,
    client: Stream,
    server: Stream,
}

impl Sniffer {
    pub(crate) fn new_dns() -> Sniffer {
        Sniffer { phase: Phase::Dns, ..Default::default() }
    }

    pub(crate) fn done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// A TCP segment. `from_client` tells the direction.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn tcp(
        &mut self,
        out: &mut Sniffed,
        from_client: bool,
        seq: u32,
        syn: bool,
        payload: &[u8],
        stated: u32,
    ) {
        match self.phase {
            Phase::Done => {}
            Phase::Dns => {
                let stream = if from_client { &mut self.client } else { &mut self.server };
                let pushed = stream.push(seq, syn, payload, stated, DNS_STREAM_LIMIT);
                drain_dns(stream, out);
                if let Err(why) = pushed {
                    self.finish(out, why);
                }
            }
            Phase::Undecided | Phase::Tunnel => {
                if !from_client {
                    return;
                }
                let pushed = self.client.push(seq, syn, payload, stated, SNIFF_LIMIT);
                let mut decided = None;
                if self.phase == Phase::Undecided && !self.client.buf.is_empty() {
                    decided = classify(&self.client.buf, out);
                    let connect = out.http.as_ref().filter(|h| h.method.eq_ignore_ascii_case("CONNECT"));
                    if let (Some(None), Some(h)) = (decided, connect) {
                        // The tunnel's bytes follow the request head.
                        let head = h.head_len.min(self.client.buf.len());
                        self.client.buf.drain(..head);
                        self.phase = Phase::Tunnel;
                        decided = None;
                    }
                }
                if self.phase == Phase::Tunnel && !self.client.buf.is_empty() {
                    decided = match parse_client_hello(&self.client.buf) {
                        TlsParse::Hello(h) => {
                            out.tls = Some(h);
                            Some(None)
                        }
                        TlsParse::NeedMore => None,
                        TlsParse::Malformed(_) => Some(Some("tls-malformed")),
                        TlsParse::NotTls => Some(None),
                    };
                }
                match (decided, pushed) {
                    (Some(note), _) => self.finish_with(out, note),
                    (None, Err(why)) => self.finish(out, why),
                    (None, Ok(())) => {}
                }
            }
        }
    }

    fn finish(&mut self, out: &mut Sniffed, why: &'static str) {
        self.finish_with(out, Some(why));
    }

    fn finish_with(&mut self, out: &mut Sniffed, note: Option<&'static str>) {
        if out.note.is_none() {
            out.note = note;
        }
        self.phase = Phase::Done;
        self.client = Stream::default();
        self.server = Stream::default();
    }
}

/// Looks at the client bytes so far: `None` when more bytes are needed, `Some(note)` when
/// decided (the note says why nothing was found, if so).
fn classify(buf: &[u8], out: &mut Sniffed) -> Option<Option<&'static str>> {
    match parse_client_hello(buf) {
        TlsParse::Hello(h) => {
            out.tls = Some(h);
            return Some(None);
        }
        TlsParse::NeedMore => return None,
        TlsParse::Malformed(_) => return Some(Some("tls-malformed")),
        TlsParse::NotTls => {}
    }
    match h2_preface(buf) {
        Some(true) => {
            out.h2_preface = true;
            return Some(None);
        }
        Some(false) => return None,
        None => {}
    }
    match parse_http_request(buf) {
        HttpParse::Request(r) => {
            out.http = Some(r);
            Some(None)
        }
        HttpParse::NeedMore => None,
        HttpParse::NotHttp => Some(None),
    }
}

/// A UDP datagram of a DNS flow.
pub(crate) fn dns_datagram(out: &mut Sniffed, payload: &[u8]) {
    if let Some(m) = parse_dns_message(payload) {
        out.add_dns(m);
    }
}

/// Reads every complete length-prefixed DNS message at the front of a TCP stream.
fn drain_dns(stream: &mut Stream, out: &mut Sniffed) {
    let mut at = 0;
    while let Some(len) = stream.buf.get(at..at + 2).map(|s| usize::from(u16::from_be_bytes([s[0], s[1]]))) {
        let Some(msg) = stream.buf.get(at + 2..at + 2 + len) else { break };
        if let Some(m) = parse_dns_message(msg) {
            out.add_dns(m);
        }
        at += 2 + len;
    }
    stream.buf.drain(..at);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::tls::tests::client_hello;

    #[test]
    fn client_hello_over_three_segments_out_of_order_retransmit() {
        let rec = client_hello("svc.example", &["h2"]);
        let mut s = Sniffer::default();
        let mut out = Sniffed::default();
        s.tcp(&mut out, true, 1000, true, &[], 0);
        let (a, rest) = rec.split_at(30);
        let (b, c) = rest.split_at(50);
        s.tcp(&mut out, true, 1001, false, a, a.len() as u32);
        // A retransmission overlapping the first segment and carrying part of the second.
        s.tcp(&mut out, true, 1011, false, &rec[10..40], 30);
        s.tcp(&mut out, false, 5000, false, b"ignored", 7);
        assert!(out.tls.is_none());
        s.tcp(&mut out, true, 1031, false, b, b.len() as u32);
        s.tcp(&mut out, true, 1081, false, c, c.len() as u32);
        assert_eq!(out.tls.as_ref().and_then(|t| t.sni.as_deref()), Some("svc.example"));
        assert!(s.done());
    }

    #[test]
    fn tls_inside_an_http_connect_tunnel() {
        let connect = b"CONNECT db.example:443 HTTP/1.1\r\nHost: db.example:443\r\n\r\n";
        let hello = client_hello("db.example", &["h2"]);
        let mut s = Sniffer::default();
        let mut out = Sniffed::default();
        s.tcp(&mut out, true, 1, false, connect, connect.len() as u32);
        assert_eq!(out.http.as_ref().map(|h| h.method.as_str()), Some("CONNECT"));
        assert!(!s.done());
        s.tcp(&mut out, false, 7, false, b"HTTP/1.1 200 OK\r\n\r\n", 19);
        s.tcp(&mut out, true, 1 + connect.len() as u32, false, &hello, hello.len() as u32);
        assert_eq!(out.tls.as_ref().and_then(|t| t.sni.as_deref()), Some("db.example"));
        assert!(s.done());
    }

    #[test]
    fn gap_and_cut_stop_sniffing() {
        let mut s = Sniffer::default();
        let mut out = Sniffed::default();
        s.tcp(&mut out, true, 1, false, b"GET / HT", 8);
        s.tcp(&mut out, true, 100, false, b"x", 1);
        assert_eq!(out.note, Some("gap"));
        let mut s = Sniffer::default();
        let mut out = Sniffed::default();
        s.tcp(&mut out, true, 1, false, b"GET / HTTP/1.1\r\nHo", 200);
        assert_eq!(out.note, Some("cut"));
    }

    #[test]
    fn dns_over_tcp_both_directions() {
        let resp = crate::capture::dns::tests::response("db.svc", "db.alias", [10, 1, 2, 3]);
        let mut framed = (resp.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&resp);
        let mut s = Sniffer::new_dns();
        let mut out = Sniffed::default();
        let (a, b) = framed.split_at(7);
        s.tcp(&mut out, false, 10, false, a, a.len() as u32);
        assert!(out.dns_answers.is_empty());
        s.tcp(&mut out, false, 17, false, b, b.len() as u32);
        let pairs: Vec<_> = out.dns_addresses().collect();
        assert_eq!(pairs, vec![("db.alias", IpAddr::from([10, 1, 2, 3]))]);
    }
}
