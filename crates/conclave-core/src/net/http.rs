//! A small HTTPS client for key lookups (WKD, a VKS keyserver): HTTP/1.1
//! GET and POST over the same verified TLS as IMAP and SMTP
//! ([`tls::Handshake`]: the public roots, the system's store and the
//! configured CA file), https only, within one deadline for the whole
//! exchange, with a cap on the body (a flooded key can be megabytes),
//! Content-Length, chunked and read-to-close bodies, a few redirects (https
//! only), and the system's proxy setting (`https_proxy`, `HTTPS_PROXY`,
//! `all_proxy`, `ALL_PROXY`; an `http://` proxy reached with CONNECT, so TLS
//! still runs end to end; `no_proxy`/`NO_PROXY` honoured).
//!
//! For tests only, [`HttpSettings::resolve`] sends the connections for a
//! host name to a fixed address (the `net.resolve` option), as curl's
//! `--resolve` does; the certificate is still checked for the host name.

use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::tls::{self, Endpoint, Protocol, Security, TlsError, TrustSettings};

/// The largest body read by default: 16 MiB.
pub const MAX_BODY: usize = 16 << 20;
/// The largest head (status line and headers) read.
const MAX_HEAD: usize = 64 << 10;
/// How many redirects a GET follows.
const MAX_REDIRECTS: usize = 5;

/// How requests go out.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// What to trust besides the public roots (the CA file; no pins).
    pub trust: TrustSettings,
    /// How long one whole request (connect, TLS, request, response) may take.
    pub deadline: Duration,
    /// The largest body accepted.
    pub max_body: usize,
    /// The proxy, if one is set for this machine.
    pub proxy: Option<Proxy>,
    /// Host names sent to fixed addresses instead of the resolver (tests).
    pub resolve: Vec<(String, String)>,
}

impl HttpSettings {
    /// Settings with the CA file, the deadline, the `net.resolve` entries
    /// (`HOST=ADDR:PORT`, comma-separated) and the proxy from the
    /// environment.
    pub fn new(ca_file: Option<std::path::PathBuf>, deadline: Duration, resolve: &str) -> Self {
        HttpSettings {
            trust: TrustSettings {
                ca_file,
                pin: None,
                vouched: false,
            },
            deadline,
            max_body: MAX_BODY,
            proxy: Proxy::from_env(|k| std::env::var(k).ok()),
            resolve: parse_resolve(resolve),
        }
    }
}

/// `HOST=ADDR:PORT` entries, comma-separated, as pairs.
pub fn parse_resolve(s: &str) -> Vec<(String, String)> {
    s.split(',')
        .filter_map(|e| e.split_once('='))
        .map(|(h, a)| (h.trim().to_ascii_lowercase(), a.trim().to_string()))
        .filter(|(h, a)| !h.is_empty() && !a.is_empty())
        .collect()
}

/// An HTTP proxy reached with CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    /// Its host.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// `user:password` for Basic authentication, if the URL carries it.
    pub credentials: Option<String>,
    /// The `no_proxy` entries.
    pub bypass: Vec<String>,
}

impl Proxy {
    /// The proxy the environment names for https URLs, if any:
    /// `https_proxy`, `HTTPS_PROXY`, `all_proxy`, `ALL_PROXY`, in that order,
    /// with `no_proxy`/`NO_PROXY`. Only `http://` proxies (or none given)
    /// are used; another scheme (socks) is not understood and is ignored.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Option<Proxy> {
        let url = ["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]
            .iter()
            .filter_map(|k| var(k))
            .map(|v| v.trim().to_string())
            .find(|v| !v.is_empty())?;
        let rest = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some(_) => return None,
            None => url.as_str(),
        };
        let authority = rest.split('/').next().unwrap_or("");
        let (credentials, hostport) = match authority.rsplit_once('@') {
            Some((c, h)) => (Some(percent_decode(c)), h),
            None => (None, authority),
        };
        let (host, port) = split_host_port(hostport, 80)?;
        let bypass = ["no_proxy", "NO_PROXY"]
            .iter()
            .filter_map(|k| var(k))
            .find(|v| !v.trim().is_empty())
            .map(|v| {
                v.split(',')
                    .map(|e| e.trim().to_ascii_lowercase())
                    .filter(|e| !e.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Some(Proxy {
            host,
            port,
            credentials,
            bypass,
        })
    }

    /// Whether `host` is reached directly (`no_proxy`: `*`, a name and its
    /// subdomains, `.domain`, with or without a port).
    pub fn bypasses(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.bypass.iter().any(|e| {
            if e == "*" {
                return true;
            }
            let name = split_host_port(e, 0)
                .map(|(h, _)| h)
                .unwrap_or_else(|| e.clone());
            let name = name.trim_start_matches("*.").trim_start_matches('.');
            !name.is_empty()
                && (host == name
                    || host
                        .strip_suffix(name)
                        .is_some_and(|head| head.ends_with('.')))
        })
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            if let Some(v) = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `host[:port]` (IPv6 in brackets), with `default` for a missing port.
fn split_host_port(s: &str, default: u16) -> Option<(String, u16)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default,
            None => return None,
        };
        return Some((host.to_ascii_lowercase(), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some((h.to_ascii_lowercase(), p.parse().ok()?)),
        _ if !s.is_empty() => Some((s.to_ascii_lowercase(), default)),
        _ => None,
    }
}

/// An https URL, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// The host, lowercase.
    pub host: String,
    /// The port (443 unless given).
    pub port: u16,
    /// The path and query, from the first `/`.
    pub target: String,
}

impl Url {
    /// Parses `https://HOST[:PORT][/PATH][?QUERY]`; anything else (another
    /// scheme, user info, spaces) is refused.
    pub fn parse(s: &str) -> Result<Url, HttpError> {
        let bad = || HttpError::BadUrl(s.to_string());
        let rest = s
            .get(..8)
            .filter(|p| p.eq_ignore_ascii_case("https://"))
            .and_then(|_| s.get(8..))
            .ok_or_else(bad)?;
        if rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = rest.get(..end).ok_or_else(bad)?;
        let mut target = rest.get(end..).unwrap_or("").to_string();
        if let Some(hash) = target.find('#') {
            target.truncate(hash);
        }
        if !target.starts_with('/') {
            target.insert(0, '/');
        }
        if authority.contains('@') {
            return Err(bad());
        }
        let (host, port) = split_host_port(authority, 443).ok_or_else(bad)?;
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Url { host, port, target })
    }

    /// `https://host[:port]`, the origin.
    pub fn origin(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 443 {
            format!("https://{host}")
        } else {
            format!("https://{host}:{}", self.port)
        }
    }

    /// `Host:` header value.
    fn host_header(&self) -> String {
        self.origin().trim_start_matches("https://").to_string()
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.origin(), self.target)
    }
}

/// Why a request failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// Not an https URL we take.
    #[error("cannot use the URL {0:?}: only https://HOST[:PORT]/PATH is taken")]
    BadUrl(String),
    /// The TLS handshake failed (the certificate, or the connection).
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The connection failed or broke.
    #[error("cannot reach {url}: {detail}")]
    Connect {
        /// The URL.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// The proxy refused or failed.
    #[error("cannot reach {url} through the proxy {proxy}: {detail}")]
    Proxy {
        /// The URL.
        url: String,
        /// `host:port` of the proxy.
        proxy: String,
        /// What went wrong.
        detail: String,
    },
    /// The server spoke something that is not HTTP/1.x.
    #[error("cannot read the answer of {url}: {detail}")]
    Protocol {
        /// The URL.
        url: String,
        /// What was wrong.
        detail: String,
    },
    /// The body is larger than the cap.
    #[error("{url} sent more than {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The cap.
        limit: usize,
    },
    /// Nothing within the deadline.
    #[error("{url}: no answer within {secs} seconds")]
    Timeout {
        /// The URL.
        url: String,
        /// The deadline.
        secs: u64,
    },
    /// Too many redirects, or one to a URL that is not https.
    #[error("{url}: {detail}")]
    Redirect {
        /// The URL.
        url: String,
        /// What was wrong.
        detail: String,
    },
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Response {
    /// The URL that answered (after redirects).
    pub url: String,
    /// The status code.
    pub status: u16,
    /// The headers, names lowercase, in order.
    pub headers: Vec<(String, String)>,
    /// The body, decoded from chunks.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// GETs `url`, following up to five https redirects.
pub async fn get(settings: &HttpSettings, url: &str) -> Result<Response, HttpError> {
    let mut url = Url::parse(url)?;
    for _ in 0..=MAX_REDIRECTS {
        let r = request(settings, &url, "GET", None).await?;
        if !matches!(r.status, 301 | 302 | 303 | 307 | 308) {
            return Ok(r);
        }
        let Some(location) = r.header("location") else {
            return Ok(r);
        };
        url = follow(&url, location)?;
    }
    Err(HttpError::Redirect {
        url: url.to_string(),
        detail: format!("more than {MAX_REDIRECTS} redirects"),
    })
}

/// POSTs `body` of type `content_type` to `url` (no redirects).
pub async fn post(
    settings: &HttpSettings,
    url: &str,
    content_type: &str,
    body: &[u8],
) -> Result<Response, HttpError> {
    let url = Url::parse(url)?;
    request(settings, &url, "POST", Some((content_type, body))).await
}

/// Whether `host` is a domain name on the internet: not an address literal,
/// not a single label (`localhost`, a name of the local network), nothing
/// under `.localhost`. Names taken from mail or from a server's redirect
/// must be, so they cannot point a request at the owner's own machine or
/// network.
pub fn is_internet_name(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    host.contains('.')
        && !host.starts_with('.')
        && !host.ends_with('.')
        && !host.contains("..")
        && host.parse::<std::net::IpAddr>().is_err()
        && !host.ends_with(".localhost")
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// Where a redirect from `from` to `location` leads (https only, to a
/// domain name on the internet: [`is_internet_name`]).
fn follow(from: &Url, location: &str) -> Result<Url, HttpError> {
    let to = follow_url(from, location)?;
    if to.host != from.host && !is_internet_name(&to.host) {
        return Err(HttpError::Redirect {
            url: from.to_string(),
            detail: format!("refused a redirect to {}", to.host),
        });
    }
    Ok(to)
}

fn follow_url(from: &Url, location: &str) -> Result<Url, HttpError> {
    let location = location.trim();
    if location.starts_with("//") {
        return Url::parse(&format!("https:{location}"));
    }
    if location.starts_with('/') {
        return Url::parse(&format!("{}{location}", from.origin()));
    }
    if location.contains("://") {
        return Url::parse(location).map_err(|_| HttpError::Redirect {
            url: from.to_string(),
            detail: format!("refused a redirect to {location:?} (https only)"),
        });
    }
    let base = from.target.split('?').next().unwrap_or("/");
    let dir = base.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    Url::parse(&format!("{}{dir}/{location}", from.origin()))
}

/// One request and its answer, within the deadline.
async fn request(
    settings: &HttpSettings,
    url: &Url,
    method: &str,
    body: Option<(&str, &[u8])>,
) -> Result<Response, HttpError> {
    match tokio::time::timeout(settings.deadline, exchange(settings, url, method, body)).await {
        Ok(r) => r,
        Err(_) => Err(HttpError::Timeout {
            url: url.to_string(),
            secs: settings.deadline.as_secs(),
        }),
    }
}

async fn exchange(
    settings: &HttpSettings,
    url: &Url,
    method: &str,
    body: Option<(&str, &[u8])>,
) -> Result<Response, HttpError> {
    let connect_err = |detail: String| HttpError::Connect {
        url: url.to_string(),
        detail,
    };
    let proxy = settings.proxy.as_ref().filter(|p| !p.bypasses(&url.host));
    let tcp = match proxy {
        Some(p) => through_proxy(p, url).await?,
        None => {
            let target = settings
                .resolve
                .iter()
                .find(|(h, _)| *h == url.host)
                .map(|(_, a)| a.clone())
                .unwrap_or_else(|| format!("{}:{}", bracket(&url.host), url.port));
            TcpStream::connect(target.as_str())
                .await
                .map_err(|e| connect_err(e.to_string()))?
        }
    };
    let _ = tcp.set_nodelay(true);
    let endpoint = Endpoint {
        host: url.host.clone(),
        port: url.port,
        security: Security::Tls,
        protocol: Protocol::Https,
    };
    let handshake = tls::Handshake::new(&endpoint, &settings.trust)?;
    let name = ServerName::try_from(url.host.clone())
        .map_err(|e| connect_err(format!("bad host name: {e}")))?;
    let connector = tokio_rustls::TlsConnector::from(handshake.config.clone());
    let mut stream = connector
        .connect(name, tcp)
        .await
        .map_err(|e| HttpError::Tls(handshake.explain(e)))?;
    let mut head = format!(
        "{method} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: Conclave\r\nAccept: */*\r\nConnection: close\r\n",
        url.target,
        url.host_header()
    );
    if let Some((ctype, b)) = body {
        head.push_str(&format!(
            "Content-Type: {ctype}\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    head.push_str("\r\n");
    let io = |e: std::io::Error| connect_err(e.to_string());
    stream.write_all(head.as_bytes()).await.map_err(io)?;
    if let Some((_, b)) = body {
        stream.write_all(b).await.map_err(io)?;
    }
    stream.flush().await.map_err(io)?;
    read_response(&mut stream, url, method, settings.max_body).await
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// A tunnel to `url`'s host through `proxy` (HTTP CONNECT). The proxy
/// resolves the name; TLS then runs inside the tunnel.
async fn through_proxy(proxy: &Proxy, url: &Url) -> Result<TcpStream, HttpError> {
    let fail = |detail: String| HttpError::Proxy {
        url: url.to_string(),
        proxy: format!("{}:{}", bracket(&proxy.host), proxy.port),
        detail,
    };
    let mut tcp = TcpStream::connect((proxy.host.as_str(), proxy.port))
        .await
        .map_err(|e| fail(e.to_string()))?;
    let authority = format!("{}:{}", bracket(&url.host), url.port);
    let mut req = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(c) = &proxy.credentials {
        use base64::Engine as _;
        req.push_str(&format!(
            "Proxy-Authorization: Basic {}\r\n",
            base64::engine::general_purpose::STANDARD.encode(c)
        ));
    }
    req.push_str("\r\n");
    tcp.write_all(req.as_bytes())
        .await
        .map_err(|e| fail(e.to_string()))?;
    // Byte by byte, so that nothing of the TLS that follows is swallowed.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let b = tcp.read_u8().await.map_err(|e| fail(e.to_string()))?;
        head.push(b);
        if head.len() > MAX_HEAD {
            return Err(fail("an overlong answer to CONNECT".into()));
        }
    }
    let text = String::from_utf8_lossy(&head);
    let status = text.lines().next().unwrap_or("").to_string();
    let code = status.split_whitespace().nth(1).unwrap_or("");
    if !code.starts_with('2') {
        return Err(fail(format!("CONNECT refused: {status}")));
    }
    Ok(tcp)
}

/// Reads status line, headers and body.
async fn read_response<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    url: &Url,
    method: &str,
    max_body: usize,
) -> Result<Response, HttpError> {
    let proto = |detail: String| HttpError::Protocol {
        url: url.to_string(),
        detail,
    };
    let mut reader = Buffered::new(stream);
    let mut status_line;
    // 1xx interim answers are skipped.
    let (status, headers) = loop {
        status_line = reader.line(url).await?;
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        if !version.starts_with("HTTP/1.") {
            return Err(proto(format!("not an HTTP/1 answer: {status_line:.80}")));
        }
        let status: u16 = parts
            .next()
            .and_then(|c| c.parse().ok())
            .filter(|c| (100..600).contains(c))
            .ok_or_else(|| proto(format!("no status code: {status_line:.80}")))?;
        let mut headers = Vec::new();
        loop {
            let line = reader.line(url).await?;
            if line.is_empty() {
                break;
            }
            if let Some((n, v)) = line.split_once(':') {
                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
            if headers.len() > 200 {
                return Err(proto("too many headers".into()));
            }
        }
        if (100..200).contains(&status) {
            continue;
        }
        break (status, headers);
    };
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let too_large = || HttpError::TooLarge {
        url: url.to_string(),
        limit: max_body,
    };
    let body = if method == "HEAD" || status == 204 || status == 304 {
        Vec::new()
    } else if find("transfer-encoding").is_some_and(|t| t.to_ascii_lowercase().contains("chunked"))
    {
        let mut body = Vec::new();
        loop {
            let line = reader.line(url).await?;
            let size = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| proto(format!("bad chunk size {size:.20}")))?;
            if size == 0 {
                // Trailers, up to the empty line.
                while !reader.line(url).await?.is_empty() {}
                break;
            }
            if body.len().saturating_add(size) > max_body {
                return Err(too_large());
            }
            reader.exact(&mut body, size, url).await?;
            if !reader.line(url).await?.is_empty() {
                return Err(proto("a chunk does not end where its size says".into()));
            }
        }
        body
    } else if let Some(len) = find("content-length") {
        let len: usize = len
            .trim()
            .parse()
            .map_err(|_| proto(format!("bad Content-Length {len:.20}")))?;
        if len > max_body {
            return Err(too_large());
        }
        let mut body = Vec::with_capacity(len);
        reader.exact(&mut body, len, url).await?;
        body
    } else {
        reader.rest(max_body, url).await?
    };
    Ok(Response {
        url: url.to_string(),
        status,
        headers,
        body,
    })
}

/// A read buffer over the stream.
struct Buffered<'a, S> {
    stream: &'a mut S,
    buf: Vec<u8>,
    head: usize,
}

impl<'a, S: AsyncRead + Unpin> Buffered<'a, S> {
    fn new(stream: &'a mut S) -> Self {
        Buffered {
            stream,
            buf: Vec::new(),
            head: 0,
        }
    }

    /// Reads more; false at the end of the stream.
    async fn fill(&mut self, url: &Url) -> Result<bool, HttpError> {
        if self.head > 0 {
            self.buf.drain(..self.head.min(self.buf.len()));
            self.head = 0;
        }
        let mut chunk = [0u8; 16384];
        match self.stream.read(&mut chunk).await {
            Ok(0) => Ok(false),
            Ok(n) => {
                self.buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
                Ok(true)
            }
            // A server that closes without TLS's close_notify: the end.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
            Err(e) => Err(HttpError::Connect {
                url: url.to_string(),
                detail: e.to_string(),
            }),
        }
    }

    fn pending(&self) -> &[u8] {
        self.buf.get(self.head..).unwrap_or(&[])
    }

    fn truncated(url: &Url) -> HttpError {
        HttpError::Protocol {
            url: url.to_string(),
            detail: "the answer ends early".into(),
        }
    }

    /// One line without its CRLF (or LF).
    async fn line(&mut self, url: &Url) -> Result<String, HttpError> {
        loop {
            if let Some(at) = self.pending().iter().position(|b| *b == b'\n') {
                let line = self.pending().get(..at).unwrap_or(&[]);
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let text = String::from_utf8_lossy(line).into_owned();
                self.head += at + 1;
                return Ok(text);
            }
            if self.pending().len() > MAX_HEAD {
                return Err(HttpError::Protocol {
                    url: url.to_string(),
                    detail: "an overlong line".into(),
                });
            }
            if !self.fill(url).await? {
                return Err(Self::truncated(url));
            }
        }
    }

    /// Exactly `n` bytes, appended to `out`.
    async fn exact(&mut self, out: &mut Vec<u8>, n: usize, url: &Url) -> Result<(), HttpError> {
        let mut left = n;
        while left > 0 {
            if self.pending().is_empty() && !self.fill(url).await? {
                return Err(Self::truncated(url));
            }
            let take = left.min(self.pending().len());
            out.extend_from_slice(self.pending().get(..take).unwrap_or(&[]));
            self.head += take;
            left -= take;
        }
        Ok(())
    }

    /// Everything up to the end of the stream, at most `max` bytes.
    async fn rest(&mut self, max: usize, url: &Url) -> Result<Vec<u8>, HttpError> {
        let mut out = Vec::new();
        loop {
            out.extend_from_slice(self.pending());
            self.head = self.buf.len();
            if out.len() > max {
                return Err(HttpError::TooLarge {
                    url: url.to_string(),
                    limit: max,
                });
            }
            if !self.fill(url).await? {
                return Ok(out);
            }
        }
    }
}

/// The JSON string value of `field` at the top level of a flat JSON object
/// (what a VKS server answers), unescaped; None when it is not there.
pub fn json_string(json: &str, field: &str) -> Option<String> {
    let key = format!("\"{field}\"");
    let mut rest = json;
    while let Some(at) = rest.find(&key) {
        rest = rest.get(at + key.len()..)?;
        let after = rest.trim_start();
        let Some(value) = after.strip_prefix(':') else {
            continue;
        };
        let value = value.trim_start().strip_prefix('"')?;
        let mut out = String::new();
        let mut chars = value.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return Some(out),
                '\\' => match chars.next()? {
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'u' => {
                        let hex: String = chars.by_ref().take(4).collect();
                        out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                    }
                    other => out.push(other),
                },
                c => out.push(c),
            }
        }
        return None;
    }
    None
}

/// `s` as a JSON string, quoted and escaped.
pub fn json_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_https_only() {
        let u = Url::parse("https://Keys.Example.org/vks/v1/by-fingerprint/AB?x=1#f").unwrap();
        assert_eq!(u.host, "keys.example.org");
        assert_eq!(u.port, 443);
        assert_eq!(u.target, "/vks/v1/by-fingerprint/AB?x=1");
        assert_eq!(Url::parse("https://h:8443").unwrap().target, "/");
        assert_eq!(Url::parse("https://h:8443").unwrap().port, 8443);
        assert_eq!(Url::parse("https://[::1]:8443/a").unwrap().host, "::1");
        assert!(Url::parse("http://h/").is_err());
        assert!(Url::parse("https://u@h/").is_err());
        assert!(Url::parse("https://h/a b").is_err());
        let from = Url::parse("https://a.test/x/y?z").unwrap();
        assert_eq!(follow(&from, "/k").unwrap().to_string(), "https://a.test/k");
        assert_eq!(
            follow(&from, "k").unwrap().to_string(),
            "https://a.test/x/k"
        );
        assert!(follow(&from, "http://a.test/").is_err());
        assert!(follow(&from, "https://127.0.0.1/").is_err());
        assert!(follow(&from, "https://localhost:8443/").is_err());
        assert!(follow(&from, "https://b.test/").is_ok());
        assert!(is_internet_name("openpgpkey.example.org"));
        for near in [
            "localhost",
            "127.0.0.1",
            "::1",
            "a.localhost",
            "intranet",
            "a..b",
            "a b.c",
        ] {
            assert!(!is_internet_name(near), "{near}");
        }
    }

    #[test]
    fn proxies_come_from_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(Proxy::from_env(env(&[])), None);
        let p = Proxy::from_env(env(&[
            ("HTTPS_PROXY", "http://u:p%40ss@proxy.test:3128/"),
            ("no_proxy", "localhost,.internal.test, example.org:443"),
        ]))
        .unwrap();
        assert_eq!((p.host.as_str(), p.port), ("proxy.test", 3128));
        assert_eq!(p.credentials.as_deref(), Some("u:p@ss"));
        assert!(p.bypasses("localhost"));
        assert!(p.bypasses("a.internal.test"));
        assert!(p.bypasses("example.org"));
        assert!(p.bypasses("wkd.example.org"));
        assert!(!p.bypasses("notexample.org"));
        assert!(!p.bypasses("keys.openpgp.org"));
        let p = Proxy::from_env(env(&[("all_proxy", "proxy.test:8080")])).unwrap();
        assert_eq!(p.port, 8080);
        assert!(Proxy::from_env(env(&[("https_proxy", "socks5://proxy.test:1080")])).is_none());
        let star = Proxy::from_env(env(&[("https_proxy", "http://p:1"), ("NO_PROXY", "*")]));
        assert!(star.unwrap().bypasses("anything.test"));
    }

    #[test]
    fn json_fields_are_read_and_written() {
        let j = r#"{"key_fpr":"AB","status":{"a@b":"unpublished"},"token":"t\"1\u0041"}"#;
        assert_eq!(json_string(j, "token").as_deref(), Some("t\"1A"));
        assert_eq!(json_string(j, "key_fpr").as_deref(), Some("AB"));
        assert_eq!(json_string(j, "nothing"), None);
        assert_eq!(json_quote("a\"b\n"), "\"a\\\"b\\n\"");
    }

    #[test]
    fn resolve_entries_are_parsed() {
        assert_eq!(
            parse_resolve("A.test=127.0.0.1:8443, b.test=[::1]:1,bad"),
            vec![
                ("a.test".to_string(), "127.0.0.1:8443".to_string()),
                ("b.test".to_string(), "[::1]:1".to_string())
            ]
        );
    }

    async fn parse(raw: &[u8], max: usize) -> Result<Response, HttpError> {
        let (mut client, mut server) = tokio::io::duplex(1 << 20);
        server.write_all(raw).await.unwrap();
        drop(server);
        let url = Url::parse("https://t.test/").unwrap();
        read_response(&mut client, &url, "GET", max).await
    }

    #[test]
    fn no_answer_panics_the_client() {
        let good: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n4\r\nabcd\r\n0\r\n\r\n";
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        tls::block_on(async {
            for cut in 0..good.len() {
                let _ = parse(&good[..cut], 100).await;
            }
            for _ in 0..2000 {
                let mut raw = good.to_vec();
                for _ in 0..(next() % 6) {
                    let at = (next() as usize) % raw.len();
                    raw[at] = next() as u8;
                }
                let _ = parse(&raw, 100).await;
                let junk: Vec<u8> = (0..(next() % 300)).map(|_| next() as u8).collect();
                let _ = parse(&junk, 100).await;
                // The other readers of what a server or the system says.
                let text = String::from_utf8_lossy(&junk).into_owned();
                let _ = json_string(&text, "token");
                let _ = json_string(&format!("{{\"token\":\"{text}"), "token");
                let _ = Url::parse(&format!("https://{text}"));
                let _ = Proxy::from_env(|_| Some(text.clone()));
                let _ = parse_resolve(&text);
            }
        })
        .unwrap();
    }

    #[test]
    fn bodies_by_length_chunks_and_close() {
        tls::block_on(async {
            let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef", 100)
                .await
                .unwrap();
            assert_eq!(r.body, b"abc");
            let r = parse(
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n",
                100,
            )
            .await
            .unwrap();
            assert_eq!((r.status, r.body.as_slice()), (200, &b"abcde"[..]));
            let r = parse(b"HTTP/1.0 404 Not Found\r\n\r\nnone here", 100)
                .await
                .unwrap();
            assert_eq!((r.status, r.body.as_slice()), (404, &b"none here"[..]));
            assert!(matches!(
                parse(b"HTTP/1.1 200 OK\r\nContent-Length: 300\r\n\r\n", 100).await,
                Err(HttpError::TooLarge { .. })
            ));
            assert!(matches!(
                parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n", 100).await,
                Err(HttpError::TooLarge { .. })
            ));
            assert!(matches!(
                parse(b"HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\nshort", 100).await,
                Err(HttpError::Protocol { .. })
            ));
            assert!(matches!(
                parse(b"SSH-2.0-x\r\n\r\n", 100).await,
                Err(HttpError::Protocol { .. })
            ));
        })
        .unwrap();
    }
}
