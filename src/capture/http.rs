//! HTTP/1.x request line and Host (httparse), and the HTTP/2 connection preface (RFC 9113 §3.4).

/// The client connection preface of HTTP/2 (prior knowledge / h2c).
pub const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The first request of an HTTP/1.x connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    /// The request target as sent (origin form `/x`, absolute form, or `host:port` for CONNECT).
    pub path: String,
    /// The Host header (or `None`, e.g. HTTP/1.0 or HTTP/0.9-style requests).
    pub host: Option<String>,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// Length of the request head (request line and headers) in bytes.
    pub head_len: usize,
}

/// The outcome of parsing the first client bytes as HTTP/1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpParse {
    Request(HttpRequest),
    NeedMore,
    NotHttp,
}

const MAX_HEADERS: usize = 64;

/// Parses an HTTP/1.x request head. A request line without a version (`GET /x` + CRLF, HTTP/0.9
/// style) is accepted too, as servers do.
pub fn parse_http_request(bytes: &[u8]) -> HttpParse {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(bytes) {
        Ok(httparse::Status::Complete(head_len)) => {
            let host = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("host"))
                .map(|h| String::from_utf8_lossy(h.value).trim().to_string());
            HttpParse::Request(HttpRequest {
                method: req.method.unwrap_or_default().to_string(),
                path: req.path.unwrap_or_default().to_string(),
                host,
                minor_version: req.version.unwrap_or(0),
                head_len,
            })
        }
        Ok(httparse::Status::Partial) => HttpParse::NeedMore,
        Err(_) => http09(bytes),
    }
}

/// `METHOD SP target CRLF` with no version.
fn http09(bytes: &[u8]) -> HttpParse {
    let Some(end) = bytes.iter().position(|&b| b == b'\n') else { return HttpParse::NotHttp };
    let line = bytes[..end].strip_suffix(b"\r").unwrap_or(&bytes[..end]);
    let mut parts = line.split(|&b| b == b' ');
    let (Some(m), Some(p), None) = (parts.next(), parts.next(), parts.next()) else {
        return HttpParse::NotHttp;
    };
    let token = !m.is_empty() && m.iter().all(|b| b.is_ascii_uppercase());
    if !token || !p.starts_with(b"/") || !p.iter().all(|b| b.is_ascii_graphic()) {
        return HttpParse::NotHttp;
    }
    HttpParse::Request(HttpRequest {
        method: String::from_utf8_lossy(m).into_owned(),
        path: String::from_utf8_lossy(p).into_owned(),
        host: None,
        minor_version: 0,
        head_len: end + 1,
    })
}

/// Whether the bytes start the HTTP/2 preface: `Some(true)` complete, `Some(false)` a prefix
/// of it (need more), `None` not the preface.
pub(crate) fn h2_preface(bytes: &[u8]) -> Option<bool> {
    let n = bytes.len().min(H2_PREFACE.len());
    if bytes[..n] != H2_PREFACE[..n] {
        return None;
    }
    Some(n == H2_PREFACE.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_with_host() {
        let HttpParse::Request(r) =
            parse_http_request(b"GET /a?b=1 HTTP/1.1\r\nhost: svc.ns:8080\r\nX: y\r\n\r\n")
        else {
            panic!()
        };
        assert_eq!(
            (r.method.as_str(), r.path.as_str(), r.host.as_deref()),
            ("GET", "/a?b=1", Some("svc.ns:8080"))
        );
        assert_eq!(parse_http_request(b"GET / HTTP/1.1\r\nHost: a"), HttpParse::NeedMore);
        assert_eq!(parse_http_request(b"\x16\x03\x01\x00"), HttpParse::NotHttp);
    }

    #[test]
    fn http09_and_preface() {
        let HttpParse::Request(r) = parse_http_request(b"GET /bad.html\r\n") else { panic!() };
        assert_eq!((r.path.as_str(), r.host), ("/bad.html", None));
        assert_eq!(h2_preface(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0"), Some(true));
        assert_eq!(h2_preface(b"PRI * HT"), Some(false));
        assert_eq!(h2_preface(b"GET "), None);
    }
}
