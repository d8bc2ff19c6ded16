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
/// or a bare `host:port` (HTTP). `USER:PASSWORD@` before the host is sent
/// as basic auth, and never shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Scheme, authority and path prefix, without a trailing `/`.
    base: String,
    /// `host:port`.
    address: String,
    /// The `authorization` the URL's own credentials make, if any.
    pub credentials: Option<String>,
}

/// A URL as a message may show it: its credentials, if any, hidden.
pub fn redacted(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").map_or(("", url), |(s, r)| (s, r));
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let shown = format!("***@{}", &rest[at + 1..]);
            if scheme.is_empty() {
                shown
            } else {
                format!("{scheme}://{shown}")
            }
        }
        None => url.to_string(),
    }
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let shown = redacted(url);
        // A bare `host:port` is HTTP.
        let full = if url.contains("://") { url.to_string() } else { format!("http://{url}") };
        let uri: Uri = full.parse().map_err(|e| format!("{shown}: {e}"))?;
        let url = shown.as_str();
        let credentials = uri
            .authority()
            .and_then(|a| a.as_str().rsplit_once('@').map(|(userinfo, _)| userinfo.to_string()))
            .map(|userinfo| {
                if !userinfo.contains(':') {
                    return Err(format!("{url}: credentials in a URL are USER:PASSWORD@"));
                }
                let decoded = canary_router_core::text::query::percent_decode(userinfo.as_bytes());
                Ok(format!("Basic {}", base64(String::from_utf8_lossy(&decoded).as_bytes())))
            })
            .transpose()?;
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
        Ok(Endpoint {
            base: format!("{scheme}://{host}:{port}{prefix}"),
            address: format!("{host}:{port}"),
            credentials,
        })
    }

    /// `host:port`, as Prometheus names its scrape targets.
    pub fn address(&self) -> String {
        self.address.clone()
    }
}

/// Why an endpoint gave no answer to read, as `status` tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failed {
    /// No connection, no answer in time.
    Unreachable(String),
    /// HTTP 401 or 403: the credentials were missing or refused.
    Unauthorised(String),
    /// TLS: the server's certificate is not one the CA (or Mozilla's roots)
    /// vouches for.
    Untrusted(String),
    /// Another answer than 200.
    Refused(String),
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failed::Unreachable(why) => write!(f, "unreachable: {why}"),
            Failed::Unauthorised(why) => write!(f, "unauthorised: {why}"),
            Failed::Untrusted(why) => write!(f, "untrusted: {why}"),
            Failed::Refused(why) => write!(f, "refused: {why}"),
        }
    }
}

impl Failed {
    /// The kind, as `--json` names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Failed::Unreachable(_) => "unreachable",
            Failed::Unauthorised(_) => "unauthorised",
            Failed::Untrusted(_) => "untrusted",
            Failed::Refused(_) => "refused",
        }
    }

    /// A transport error, told by what it is.
    fn of_transport(error: &ureq::Error) -> Failed {
        // An I/O error says what it is without ureq's `io:` prefix.
        let text = match error {
            ureq::Error::Io(io) => io.to_string(),
            other => other.to_string(),
        };
        let tls = matches!(error, ureq::Error::Rustls(_)) || text.contains("certificate");
        if !tls {
            return Failed::Unreachable(text);
        }
        let hint = if text.contains("CaUsedAsEndEntity") {
            ": the --ca-file certificate is the server's own (a self-signed certificate marked as a CA): \
             give the CA that signed the server's certificate, or make the self-signed one a leaf \
             (basicConstraints CA:FALSE)"
        } else if text.contains("UnknownIssuer") {
            ": no CA trusted here signed it: give its CA with --ca-file"
        } else {
            ""
        };
        Failed::Untrusted(format!("{text}{hint}"))
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
    /// there is none. The endpoint's own credentials go first.
    pub fn get(
        &self,
        endpoint: &Endpoint,
        path: &str,
        authorization: Option<&str>,
    ) -> Result<Vec<u8>, Failed> {
        let mut request = self.agent.get(format!("{}{path}", endpoint.base));
        if let Some(value) = endpoint.credentials.as_deref().or(authorization) {
            request = request.header("authorization", value);
        }
        let mut response = request.call().map_err(|e| Failed::of_transport(&e))?;
        let status = response.status();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BYTES)
            .read_to_vec()
            .map_err(|e| Failed::Unreachable(e.to_string()))?;
        if status != 200 {
            let text = String::from_utf8_lossy(&body);
            let why =
                format!("HTTP {}: {}", status.as_u16(), text.trim().chars().take(200).collect::<String>());
            return Err(match status.as_u16() {
                401 | 403 => Failed::Unauthorised(why),
                _ => Failed::Refused(why),
            });
        }
        Ok(body)
    }
}

/// The `authorization` value for Prometheus, from one of: a bearer token
/// file, a basic-auth file (`user:password`), the environment's
/// `CANARY_ROUTER_PROMETHEUS_TOKEN` or `CANARY_ROUTER_PROMETHEUS_BASIC_AUTH`.
/// Two of them at once are refused: only one would be sent. Secrets never
/// come from the command line, where `ps` shows them.
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
    let given: Vec<&str> = [
        (token_file.is_some(), "--token-file"),
        (basic_auth_file.is_some(), "--basic-auth-file"),
        (
            env("CANARY_ROUTER_PROMETHEUS_TOKEN").is_some_and(|t| !t.is_empty()),
            "CANARY_ROUTER_PROMETHEUS_TOKEN",
        ),
        (
            env("CANARY_ROUTER_PROMETHEUS_BASIC_AUTH").is_some_and(|p| !p.is_empty()),
            "CANARY_ROUTER_PROMETHEUS_BASIC_AUTH",
        ),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .collect();
    if given.len() > 1 {
        return Err(format!("{} are two credentials for one Prometheus: give one", given.join(" and ")));
    }
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
        let e = Endpoint::parse("https://me:p%40ss@prom.example.com/prom").unwrap();
        assert_eq!(e.credentials.as_deref(), Some(format!("Basic {}", base64(b"me:p@ss")).as_str()));
        assert_eq!(e.address(), "prom.example.com:443");
        let bad = Endpoint::parse("http://me:s3cret@x:port").unwrap_err();
        assert!(bad.contains("***@x:port") && !bad.contains("s3cret"), "{bad}");
        assert_eq!(redacted("me:pw@h:1"), "***@h:1");
        assert_eq!(redacted("http://h:1/a@b"), "http://h:1/a@b", "an @ in the path is no credential");
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
        let two = authorization(Some(&dir.join("token")), Some(&dir.join("basic")), none).unwrap_err();
        assert_eq!(
            two,
            "--token-file and --basic-auth-file are two credentials for one Prometheus: give one"
        );
        let env = |name: &str| (name == "CANARY_ROUTER_PROMETHEUS_TOKEN").then(|| "t".into());
        assert!(authorization(None, Some(&dir.join("basic")), env).is_err(), "a file and the environment");
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
    }
}
