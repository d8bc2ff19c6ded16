//! A plain HTTP/1.1 GET for Envoy's admin endpoint and Prometheus's API,
//! both HTTP on a port the user names: no TLS, no redirects, a timeout on
//! every step, so an unreachable endpoint is reported, never waited on.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(3);
/// Answers larger than this are refused (a `/stats` dump is far smaller).
const MAX_BYTES: usize = 64 << 20;

/// An endpoint: `http://host:port` (a path after it is ignored), or
/// `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        if url.starts_with("https://") {
            return Err(format!("{url}: only http:// is supported (admin and Prometheus on a local port)"));
        }
        let rest = url.strip_prefix("http://").unwrap_or(url);
        let authority = rest.split('/').next().unwrap_or_default();
        let (host, port) =
            authority.rsplit_once(':').ok_or_else(|| format!("{url}: expected http://HOST:PORT"))?;
        let port = port.parse().map_err(|_| format!("{url}: `{port}` is not a port"))?;
        if host.is_empty() {
            return Err(format!("{url}: no host"));
        }
        Ok(Endpoint { host: host.to_string(), port })
    }

    /// `host:port`, as Prometheus names its scrape targets.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// The body of a 200 answer to `GET path`, or why there is none.
pub fn get(endpoint: &Endpoint, path: &str) -> Result<Vec<u8>, String> {
    let address = endpoint
        .address()
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", endpoint.host))?
        .next()
        .ok_or_else(|| format!("cannot resolve {}", endpoint.host))?;
    let mut stream = TcpStream::connect_timeout(&address, TIMEOUT).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", endpoint.address());
    stream.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream.take(MAX_BYTES as u64 + 1).read_to_end(&mut raw).map_err(|e| e.to_string())?;
    if raw.len() > MAX_BYTES {
        return Err(format!("an answer over {MAX_BYTES} bytes"));
    }
    parse_response(&raw)
}

/// The body of a complete response (read until the server closed), with
/// chunked transfer coding undone.
fn parse_response(raw: &[u8]) -> Result<Vec<u8>, String> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or("an incomplete HTTP answer")?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let body = &raw[end + 4..];
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).unwrap_or("?").to_string();
    let chunked = lines.any(|l| {
        let lower = l.to_ascii_lowercase();
        lower.starts_with("transfer-encoding:") && lower.contains("chunked")
    });
    let body = if chunked { dechunk(body)? } else { body.to_vec() };
    if status != "200" {
        let text = String::from_utf8_lossy(&body);
        return Err(format!("HTTP {status}: {}", text.trim().chars().take(200).collect::<String>()));
    }
    Ok(body)
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n").ok_or("a broken chunked answer")?;
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| "a broken chunk size")?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = body.get(..size).ok_or("a truncated chunk")?;
        out.extend_from_slice(chunk);
        body = body.get(size + 2..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_host_and_port() {
        assert_eq!(Endpoint::parse("http://127.0.0.1:9901").unwrap().address(), "127.0.0.1:9901");
        assert_eq!(Endpoint::parse("localhost:9090/graph").unwrap().address(), "localhost:9090");
        assert!(Endpoint::parse("https://x:1").is_err());
        assert!(Endpoint::parse("http://x").is_err());
        assert!(Endpoint::parse("http://x:port").is_err());
    }

    #[test]
    fn bodies_plain_chunked_and_failed() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi";
        assert_eq!(parse_response(plain).unwrap(), b"hi");
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap(), b"abcde");
        let failed = b"HTTP/1.1 503 Service Unavailable\r\n\r\nno healthy upstream";
        assert_eq!(parse_response(failed).unwrap_err(), "HTTP 503: no healthy upstream");
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
    }
}
