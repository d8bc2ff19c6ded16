//! GET over HTTP or HTTPS for Envoy's admin endpoint and Prometheus's API,
//! through ureq: TLS with Mozilla's roots or a CA file, basic or bearer
//! auth, the API under a path prefix, and a timeout on every call, so an
//! unreachable endpoint is reported, never waited on.

use std::path::Path;
use std::time::Duration;

use ureq::http::Uri;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

const TIMEOUT: Duration = Duration::from_secs(5);
/// Answers larger than this are refused (a `/stats` dump is far smaller).
const MAX_BYTES: u64 = 64 << 20;

/// An endpoint: `http://host:port`, `https://host:port`, either with a
/// path the API is served under (`https://thanos.example.com/prometheus`),
/// or a bare `host:port` (HTTP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Scheme, authority and path prefix, without a trailing `/`.
    base: String,
    /// `host:port`.
    address: String,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        // A bare `host:port` is HTTP.
        let full = if url.contains("://") { url.to_string() } else { format!("http://{url}") };
        let uri: Uri = full.parse().map_err(|e| format!("{url}: {e}"))?;
        let scheme = uri.scheme_str().unwrap_or("http");
        if scheme != "http" && scheme != "https" {
            return Err(format!("{url}: `{scheme}://` is not http:// or https://"));
        }
        if uri.query().is_some() || url.contains('#') {
            return Err(format!("{url}: no query or fragment, only a path the API is served under"));
        }
        let host = uri.host().filter(|h| !h.is_empty()).ok_or_else(|| format!("{url}: no host"))?;
        let port = match uri.port_u16() {
            Some(port) => port,
            None if scheme == "https" => 443,
            None => return Err(format!("{url}: expected http://HOST:PORT")),
        };
        let prefix = uri.path().trim_end_matches('/');
        Ok(Endpoint { base: format!("{scheme}://{host}:{port}{prefix}"), address: format!("{host}:{port}") })
    }

    /// `host:port`, as Prometheus names its scrape targets.
    pub fn address(&self) -> String {
        self.address.clone()
    }
}

/// One HTTP client for every endpoint of a run.
pub struct Client {
    agent: ureq::Agent,
}

impl Client {
    pub fn new(ca_file: Option<&Path>) -> Result<Client, String> {
        let roots = match ca_file {
            None => RootCerts::WebPki,
            Some(file) => {
                let pem = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
                let certs = ureq::tls::parse_pem(&pem)
                    .filter_map(|item| match item {
                        Ok(ureq::tls::PemItem::Certificate(cert)) => Some(Ok(cert)),
                        Ok(_) => None,
                        Err(e) => Some(Err(e)),
                    })
                    .collect::<Result<Vec<Certificate<'static>>, _>>()
                    .map_err(|e| format!("{}: {e}", file.display()))?;
                if certs.is_empty() {
                    return Err(format!("{}: no PEM certificate in it", file.display()));
                }
                RootCerts::new_with_certs(&certs)
            }
        };
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(TIMEOUT))
            .http_status_as_error(false)
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .build();
        Ok(Client { agent: ureq::Agent::new_with_config(config) })
    }

    /// The body of a 200 answer to `GET path` under the endpoint, or why
    /// there is none.
    pub fn get(
        &self,
        endpoint: &Endpoint,
        path: &str,
        authorization: Option<&str>,
    ) -> Result<Vec<u8>, String> {
        let mut request = self.agent.get(format!("{}{path}", endpoint.base));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let mut response = request.call().map_err(|e| e.to_string())?;
        let status = response.status();
        let body =
            response.body_mut().with_config().limit(MAX_BYTES).read_to_vec().map_err(|e| e.to_string())?;
        if status != 200 {
            let text = String::from_utf8_lossy(&body);
            return Err(format!(
                "HTTP {}: {}",
                status.as_u16(),
                text.trim().chars().take(200).collect::<String>()
            ));
        }
        Ok(body)
    }
}

/// The `authorization` value for Prometheus, from the first of: a bearer
/// token file, a basic-auth file (`user:password`), the environment's
/// `CANARY_ROUTER_PROMETHEUS_TOKEN` or `CANARY_ROUTER_PROMETHEUS_BASIC_AUTH`.
/// Secrets never come from the command line, where `ps` shows them.
pub fn authorization(
    token_file: Option<&Path>,
    basic_auth_file: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<String>, String> {
    let read = |file: &Path| {
        std::fs::read_to_string(file)
            .map(|s| s.trim().to_string())
            .map_err(|e| format!("{}: {e}", file.display()))
    };
    let basic = |pair: String, from: &str| {
        if !pair.contains(':') {
            return Err(format!("{from}: expected USER:PASSWORD"));
        }
        Ok(Some(format!("Basic {}", base64(pair.as_bytes()))))
    };
    if let Some(file) = token_file {
        return Ok(Some(format!("Bearer {}", read(file)?)));
    }
    if let Some(file) = basic_auth_file {
        return basic(read(file)?, &file.display().to_string());
    }
    if let Some(token) = env("CANARY_ROUTER_PROMETHEUS_TOKEN").filter(|t| !t.is_empty()) {
        return Ok(Some(format!("Bearer {}", token.trim())));
    }
    if let Some(pair) = env("CANARY_ROUTER_PROMETHEUS_BASIC_AUTH").filter(|p| !p.is_empty()) {
        return basic(pair, "CANARY_ROUTER_PROMETHEUS_BASIC_AUTH");
    }
    Ok(None)
}

/// Standard base64 with padding, for a basic-auth header.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_keep_their_scheme_and_path_prefix() {
        let e = Endpoint::parse("http://127.0.0.1:9901").unwrap();
        assert_eq!((e.base.as_str(), e.address().as_str()), ("http://127.0.0.1:9901", "127.0.0.1:9901"));
        let e = Endpoint::parse("https://thanos.example.com/prometheus/").unwrap();
        assert_eq!(e.base, "https://thanos.example.com:443/prometheus");
        assert_eq!(Endpoint::parse("localhost:9090").unwrap().base, "http://localhost:9090");
        assert!(Endpoint::parse("http://x").is_err(), "HTTP needs a port");
        assert_eq!(Endpoint::parse("http://[::1]:9090").unwrap().address(), "[::1]:9090");
        assert_eq!(Endpoint::parse("https://[::1]").unwrap().address(), "[::1]:443");
        assert!(Endpoint::parse("http://x:port").is_err());
        assert!(Endpoint::parse("ftp://x:1").is_err());
        assert!(Endpoint::parse("http://x:1/?q=1").is_err());
    }

    #[test]
    fn credentials_come_from_files_or_the_environment_never_arguments() {
        let none = |_: &str| None;
        assert_eq!(authorization(None, None, none).unwrap(), None);
        let env =
            |name: &str| (name == "CANARY_ROUTER_PROMETHEUS_BASIC_AUTH").then(|| "canary:canary-test".into());
        assert_eq!(
            authorization(None, None, env).unwrap().as_deref(),
            Some("Basic Y2FuYXJ5OmNhbmFyeS10ZXN0")
        );
        let env = |name: &str| (name == "CANARY_ROUTER_PROMETHEUS_TOKEN").then(|| "t0k\n".into());
        assert_eq!(authorization(None, None, env).unwrap().as_deref(), Some("Bearer t0k"));
        let dir = std::env::temp_dir().join(format!("canary-router-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("token"), "abc\n").unwrap();
        std::fs::write(dir.join("basic"), "no-colon\n").unwrap();
        assert_eq!(
            authorization(Some(&dir.join("token")), None, none).unwrap().as_deref(),
            Some("Bearer abc")
        );
        assert!(authorization(None, Some(&dir.join("basic")), none).unwrap_err().contains("USER:PASSWORD"));
        assert!(authorization(Some(&dir.join("missing")), None, none).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
    }
}
