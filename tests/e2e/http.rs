//! A minimal HTTP/1.1 client over `TcpStream`: it can send any header
//! bytes (curl and most libraries refuse non-UTF-8), and keeps connections
//! alive for load.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).trim_end().to_string()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }
}

/// One keep-alive connection.
pub struct Connection {
    reader: BufReader<TcpStream>,
}

impl Connection {
    pub fn open(port: u16) -> io::Result<Self> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_nodelay(true)?;
        Ok(Connection { reader: BufReader::new(stream) })
    }

    /// Sends `GET path` with these header lines (raw bytes) and reads the
    /// response. `host` is sent first.
    pub fn get(&mut self, host: &str, path: &str, headers: &[(&[u8], &[u8])]) -> io::Result<Response> {
        let mut request = format!("GET {path} HTTP/1.1\r\nhost: {host}\r\n").into_bytes();
        for (name, value) in headers {
            request.extend_from_slice(name);
            request.extend_from_slice(b": ");
            request.extend_from_slice(value);
            request.extend_from_slice(b"\r\n");
        }
        request.extend_from_slice(b"\r\n");
        self.reader.get_mut().write_all(&request)?;
        self.read_response()
    }

    /// Sends `POST path` with `body` (its length announced) and reads the
    /// response.
    pub fn post(&mut self, host: &str, path: &str, body: &[u8]) -> io::Result<Response> {
        let mut request =
            format!("POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-length: {}\r\n\r\n", body.len())
                .into_bytes();
        request.extend_from_slice(body);
        self.reader.get_mut().write_all(&request)?;
        self.read_response()
    }

    fn read_response(&mut self) -> io::Result<Response> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed before a response"));
        }
        let status =
            line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, format!("bad status line {line:?}"))
            })?;
        let mut headers = Vec::new();
        loop {
            let mut raw = Vec::new();
            self.reader.read_until(b'\n', &mut raw)?;
            let raw = raw.strip_suffix(b"\r\n").unwrap_or(&raw).to_vec();
            if raw.is_empty() {
                break;
            }
            if let Some(colon) = raw.iter().position(|&b| b == b':') {
                let name = String::from_utf8_lossy(&raw[..colon]).trim().to_string();
                let value = raw[colon + 1..].trim_ascii().to_vec();
                headers.push((name, value));
            }
        }
        let mut response = Response { status, headers, body: Vec::new() };
        let length = response.header("content-length").and_then(|v| v.parse::<usize>().ok());
        if let Some(length) = length {
            response.body = vec![0; length];
            self.reader.read_exact(&mut response.body)?;
        } else if response.header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            loop {
                let mut size = String::new();
                self.reader.read_line(&mut size)?;
                let size = usize::from_str_radix(size.trim(), 16)
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
                let mut chunk = vec![0; size + 2];
                self.reader.read_exact(&mut chunk)?;
                if size == 0 {
                    break;
                }
                response.body.extend_from_slice(&chunk[..size]);
            }
        }
        Ok(response)
    }
}

/// A one-off request on a fresh connection (host `localhost`).
pub fn get(port: u16, path: &str, headers: &[(&[u8], &[u8])]) -> io::Result<Response> {
    Connection::open(port)?.get("localhost", path, headers)
}

/// A one-off request to a given host name.
pub fn get_host(port: u16, host: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    let raw: Vec<(&[u8], &[u8])> = headers.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())).collect();
    Connection::open(port)
        .and_then(|mut c| c.get(host, path, &raw))
        .unwrap_or_else(|e| panic!("GET http://{host}{path} failed: {e}"))
}
