//! A hand-written TLS ClientHello reader: only SNI (extension 0) and ALPN (extension 16) are
//! extracted (RFC 8446 §4.1.2, RFC 6066 §3, RFC 7301 §3.1). The handshake message may span
//! several TLS records; the caller hands in the in-order client bytes reassembled so far.

/// What a ClientHello offers that routing cares about.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientHello {
    /// server_name (host_name entry), as sent.
    pub sni: Option<String>,
    /// application_layer_protocol_negotiation entries, in offer order.
    pub alpn: Vec<String>,
}

/// The outcome of looking at the first client bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsParse {
    /// A complete ClientHello.
    Hello(ClientHello),
    /// Looks like TLS so far; this many more bytes at least are needed.
    NeedMore,
    /// Not a TLS handshake record.
    NotTls,
    /// A TLS handshake record whose ClientHello does not parse.
    Malformed(&'static str),
}

/// Reads a ClientHello from the start of the client's byte stream.
pub fn parse_client_hello(stream: &[u8]) -> TlsParse {
    // Collect the handshake message from consecutive handshake records (type 22).
    let mut hs: Vec<u8> = Vec::new();
    let mut at = 0;
    let mut need: Option<usize> = None;
    loop {
        let Some(header) = stream.get(at..at + 5) else {
            return if at == 0 && !stream.is_empty() && stream[0] != 22 {
                TlsParse::NotTls
            } else {
                TlsParse::NeedMore
            };
        };
        if header[0] != 22 || header[1] != 3 {
            return if at == 0 { TlsParse::NotTls } else { TlsParse::Malformed("handshake interrupted") };
        }
        let rec_len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        let body = &stream[at + 5..];
        let take = rec_len.min(body.len());
        hs.extend_from_slice(&body[..take]);
        if need.is_none() && hs.len() >= 4 {
            if hs[0] != 1 {
                return TlsParse::Malformed("first handshake message is not a ClientHello");
            }
            need = Some(4 + ((usize::from(hs[1]) << 16) | (usize::from(hs[2]) << 8) | usize::from(hs[3])));
        }
        if let Some(n) = need {
            if hs.len() >= n {
                hs.truncate(n);
                break;
            }
        }
        if take < rec_len {
            return TlsParse::NeedMore;
        }
        at += 5 + rec_len;
        if rec_len == 0 {
            return TlsParse::Malformed("empty handshake record");
        }
    }
    match hello_body(hs.get(4..).unwrap_or(&[])) {
        Some(h) => TlsParse::Hello(h),
        None => TlsParse::Malformed("ClientHello fields run past the message"),
    }
}

/// A bounds-checked cursor.
struct Cur<'a> {
    b: &'a [u8],
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (h, t) = (self.b.get(..n)?, self.b.get(n..)?);
        self.b = t;
        Some(h)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u16(&mut self) -> Option<u16> {
        let s = self.take(2)?;
        Some(u16::from_be_bytes([s[0], s[1]]))
    }
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = usize::from(self.u8()?);
        self.take(n)
    }
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = usize::from(self.u16()?);
        self.take(n)
    }
}

fn hello_body(body: &[u8]) -> Option<ClientHello> {
    let mut c = Cur { b: body };
    c.take(2)?; // legacy_version
    c.take(32)?; // random
    c.vec8()?; // legacy_session_id
    c.vec16()?; // cipher_suites
    c.vec8()?; // legacy_compression_methods
    let mut hello = ClientHello::default();
    if c.b.is_empty() {
        return Some(hello); // no extensions (old clients)
    }
    let mut exts = Cur { b: c.vec16()? };
    while !exts.b.is_empty() {
        let ty = exts.u16()?;
        let mut data = Cur { b: exts.vec16()? };
        match ty {
            0 => {
                let mut list = Cur { b: data.vec16()? };
                while !list.b.is_empty() {
                    let kind = list.u8()?;
                    let name = list.vec16()?;
                    if kind == 0 && hello.sni.is_none() {
                        hello.sni = Some(String::from_utf8_lossy(name).into_owned());
                    }
                }
            }
            16 => {
                let mut list = Cur { b: data.vec16()? };
                while !list.b.is_empty() {
                    hello.alpn.push(String::from_utf8_lossy(list.vec8()?).into_owned());
                }
            }
            _ => {}
        }
    }
    Some(hello)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A ClientHello record with the given SNI and ALPN protocols.
    pub(crate) fn client_hello(sni: &str, alpn: &[&str]) -> Vec<u8> {
        let mut exts = Vec::new();
        // GREASE extension first, as browsers send.
        exts.extend_from_slice(&[0x0a, 0x0a, 0, 0]);
        let mut sni_list = vec![0u8];
        sni_list.extend_from_slice(&(sni.len() as u16).to_be_bytes());
        sni_list.extend_from_slice(sni.as_bytes());
        exts.extend_from_slice(&0u16.to_be_bytes());
        exts.extend_from_slice(&((sni_list.len() + 2) as u16).to_be_bytes());
        exts.extend_from_slice(&(sni_list.len() as u16).to_be_bytes());
        exts.extend_from_slice(&sni_list);
        let mut alpn_list = Vec::new();
        for p in alpn {
            alpn_list.push(p.len() as u8);
            alpn_list.extend_from_slice(p.as_bytes());
        }
        exts.extend_from_slice(&16u16.to_be_bytes());
        exts.extend_from_slice(&((alpn_list.len() + 2) as u16).to_be_bytes());
        exts.extend_from_slice(&(alpn_list.len() as u16).to_be_bytes());
        exts.extend_from_slice(&alpn_list);
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7u8; 32]);
        body.push(32);
        body.extend_from_slice(&[9u8; 32]);
        body.extend_from_slice(&[0, 4, 0x13, 0x01, 0x13, 0x02]);
        body.extend_from_slice(&[1, 0]);
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(&exts);
        let mut hs = vec![1, 0, (body.len() >> 8) as u8, body.len() as u8];
        hs.extend_from_slice(&body);
        let mut rec = vec![22, 3, 1, (hs.len() >> 8) as u8, hs.len() as u8];
        rec.extend_from_slice(&hs);
        rec
    }

    #[test]
    fn sni_and_alpn() {
        let rec = client_hello("api.example.com", &["h2", "http/1.1"]);
        let want =
            ClientHello { sni: Some("api.example.com".into()), alpn: vec!["h2".into(), "http/1.1".into()] };
        assert_eq!(parse_client_hello(&rec), TlsParse::Hello(want));
    }

    #[test]
    fn every_prefix_needs_more_and_never_panics() {
        let rec = client_hello("a.b", &["h2"]);
        for n in 0..rec.len() {
            let got = parse_client_hello(&rec[..n]);
            assert!(matches!(got, TlsParse::NeedMore), "prefix {n}: {got:?}");
        }
    }

    #[test]
    fn handshake_split_over_two_records() {
        let rec = client_hello("split.example", &[]);
        let hs = &rec[5..];
        let (a, b) = hs.split_at(40);
        let mut two = vec![22, 3, 1, 0, a.len() as u8];
        two.extend_from_slice(a);
        two.extend_from_slice(&[22, 3, 1, (b.len() >> 8) as u8, b.len() as u8]);
        two.extend_from_slice(b);
        let TlsParse::Hello(h) = parse_client_hello(&two) else { panic!("not parsed") };
        assert_eq!(h.sni.as_deref(), Some("split.example"));
    }

    #[test]
    fn not_tls_and_malformed() {
        assert_eq!(parse_client_hello(b"GET / HTTP/1.1\r\n"), TlsParse::NotTls);
        let mut rec = client_hello("x", &[]);
        rec[5] = 2; // ServerHello
        assert!(matches!(parse_client_hello(&rec), TlsParse::Malformed(_)));
        // An extension length running past the message.
        let mut rec = client_hello("x", &[]);
        let n = rec.len();
        rec[n - 3] = 0xff;
        assert!(matches!(parse_client_hello(&rec), TlsParse::Malformed(_)));
    }
}
