//! TLS for IMAP and SMTP: rustls only, TLS 1.2 and up.
//!
//! A server certificate is trusted when one of these accepts it for the host
//! name: Mozilla's root set, the operating system's store (through the
//! platform verifier), an extra CA file from the configuration, or a pin, the
//! SHA-256 of exactly the certificate the owner accepted before for that
//! `host:port`. Anything else stops the connection during the handshake,
//! before any credential or mail is sent, and the error carries the chain
//! with its fingerprints so a front end can ask "accept this certificate?".
//! A pinned certificate that changes is a different error, and is never
//! re-pinned silently. Trust does not step down either: a server that a
//! certificate authority vouched for before and that now shows a certificate
//! none vouches for (self-signed, say) gets that same alarm, not the
//! question. Session resumption is off, so a ticket obtained on one
//! port can never skip verification on another.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How a connection gets its TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (RFC 8314): ports 993 and 465.
    Tls,
    /// A plain connection upgraded with STARTTLS, which is mandatory.
    StartTls,
}

impl Security {
    /// Parses `tls` or `starttls`.
    pub fn parse(s: &str) -> Option<Security> {
        match s {
            "tls" => Some(Security::Tls),
            "starttls" => Some(Security::StartTls),
            _ => None,
        }
    }
}

/// Which protocol speaks before STARTTLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// IMAP (`a STARTTLS`).
    Imap,
    /// SMTP (`EHLO`, `STARTTLS`).
    Smtp,
    /// HTTPS (implicit TLS only: key lookups, [`super::http`]).
    Https,
}

/// A server to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The host name (or address) the certificate must name.
    pub host: String,
    /// The port.
    pub port: u16,
    /// Implicit TLS or STARTTLS.
    pub security: Security,
    /// The protocol, for STARTTLS.
    pub protocol: Protocol,
}

impl Endpoint {
    /// `host:port`, the key of pins.
    pub fn key(&self) -> String {
        endpoint_key(&self.host, self.port)
    }
}

/// `host:port`, lowercased, the key of pins.
pub fn endpoint_key(host: &str, port: u16) -> String {
    format!("{}:{port}", host.trim().to_ascii_lowercase())
}

/// Parses `HOST:PORT`.
pub fn parse_endpoint(s: &str) -> Option<(String, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return None;
    }
    Some((host.to_ascii_lowercase(), port.parse().ok()?))
}

/// What the owner trusts besides the public roots.
#[derive(Debug, Clone, Default)]
pub struct TrustSettings {
    /// An extra CA certificate file (PEM).
    pub ca_file: Option<PathBuf>,
    /// The pinned SHA-256 for this endpoint, if any (lowercase hex).
    pub pin: Option<String>,
    /// A certificate authority vouched for this endpoint before: a
    /// certificate none vouches for now is the alarm, not a question.
    pub vouched: bool,
}

pub use crate::error::{CertInfo, TlsError};

/// Describes a DER certificate.
pub fn cert_info(der: &[u8]) -> CertInfo {
    let sha256 = crate::hex::sha256_hex(der).to_ascii_lowercase();
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => {
            let mut names = Vec::new();
            if let Ok(Some(san)) = cert.subject_alternative_name() {
                for n in &san.value.general_names {
                    match n {
                        x509_parser::extensions::GeneralName::DNSName(d) => {
                            names.push((*d).to_string())
                        }
                        x509_parser::extensions::GeneralName::IPAddress(ip) => {
                            names.push(ip_text(ip))
                        }
                        _ => {}
                    }
                }
            }
            CertInfo {
                subject: cert.subject().to_string(),
                issuer: cert.issuer().to_string(),
                not_before: cert.validity().not_before.to_string(),
                not_after: cert.validity().not_after.to_string(),
                names,
                sha256,
                spki_sha256: crate::hex::sha256_hex(cert.public_key().raw).to_ascii_lowercase(),
            }
        }
        Err(e) => CertInfo {
            subject: format!("(unreadable certificate: {e})"),
            issuer: String::new(),
            not_before: String::new(),
            not_after: String::new(),
            names: Vec::new(),
            sha256,
            spki_sha256: String::new(),
        },
    }
}

fn ip_text(ip: &[u8]) -> String {
    match ip.len() {
        4 => ip.iter().map(u8::to_string).collect::<Vec<_>>().join("."),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(ip);
            std::net::Ipv6Addr::from(a).to_string()
        }
        _ => crate::hex::hex(ip),
    }
}

/// Normalises a fingerprint the way a person may type it (colons, spaces,
/// any case) to lowercase hex.
pub fn normalise_fingerprint(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_hexdigit())
        .collect::<String>()
        .to_ascii_lowercase()
}

/// What the verifier saw during one handshake.
#[derive(Debug, Default)]
struct Observation {
    chain: Vec<CertInfo>,
    failure: Option<Failure>,
    trusted_by: Option<&'static str>,
}

#[derive(Debug, Clone)]
enum Failure {
    Untrusted(String),
    Changed(String),
    NoLongerVouched(String),
}

#[derive(Debug)]
struct Verifier {
    pin: Option<String>,
    vouched: bool,
    webpki: Arc<WebPkiServerVerifier>,
    provider: Arc<CryptoProvider>,
    seen: Arc<Mutex<Observation>>,
}

impl Verifier {
    fn record(&self, f: impl FnOnce(&mut Observation)) {
        if let Ok(mut o) = self.seen.lock() {
            f(&mut o);
        }
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain: Vec<CertInfo> = std::iter::once(end_entity)
            .chain(intermediates.iter())
            .map(|c| cert_info(c.as_ref()))
            .collect();
        let presented = chain.first().map(|c| c.sha256.clone()).unwrap_or_default();
        self.record(|o| o.chain = chain);
        if let Some(pin) = &self.pin {
            if *pin == presented {
                self.record(|o| o.trusted_by = Some("the owner's pin"));
                return Ok(ServerCertVerified::assertion());
            }
            self.record(|o| o.failure = Some(Failure::Changed(pin.clone())));
            return Err(rustls::Error::General(
                "the pinned certificate changed".into(),
            ));
        }
        let first = match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(v) => {
                self.record(|o| o.trusted_by = Some("a public or configured CA"));
                return Ok(v);
            }
            Err(e) => e,
        };
        // The system's store is read only when the bundled roots and the
        // configured CA did not vouch for the server.
        if let Some(p) = platform_verifier() {
            if let Ok(v) =
                p.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            {
                self.record(|o| o.trusted_by = Some("the system's certificate store"));
                return Ok(v);
            }
        }
        let reason = describe(&first);
        if self.vouched {
            let self_signed = intermediates.is_empty()
                && self
                    .seen
                    .lock()
                    .ok()
                    .and_then(|o| o.chain.first().map(|c| c.subject == c.issuer))
                    .unwrap_or(false);
            let shows = if self_signed {
                "a self-signed certificate".to_string()
            } else {
                format!("a certificate that no certificate authority vouches for ({reason})")
            };
            self.record(|o| o.failure = Some(Failure::NoLongerVouched(shows)));
            return Err(first);
        }
        self.record(|o| o.failure = Some(Failure::Untrusted(reason)));
        Err(first)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn describe(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer => {
                "it is signed by an unknown issuer (self-signed or a private CA)".into()
            }
            C::Expired | C::ExpiredContext { .. } => "it has expired".into(),
            C::NotValidYet | C::NotValidYetContext { .. } => "it is not valid yet".into(),
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "it is not valid for this host name".into()
            }
            C::Revoked => "it has been revoked".into(),
            C::BadSignature => "its signature is bad".into(),
            other => format!("{other:?}"),
        },
        other => other.to_string(),
    }
}

/// The system's certificate store, as a verifier: read when a server is
/// first checked against it, then shared by the connections that follow (a
/// delivery opens several at once), and read again after an hour, so a
/// long-running relay sees the store change.
fn platform_verifier() -> Option<Arc<rustls_platform_verifier::Verifier>> {
    type Kept = Option<(
        std::time::Instant,
        Option<Arc<rustls_platform_verifier::Verifier>>,
    )>;
    static KEPT: Mutex<Kept> = Mutex::new(None);
    const FRESH: std::time::Duration = std::time::Duration::from_secs(3600);
    let mut kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((at, verifier)) = kept.as_ref() {
        if at.elapsed() < FRESH {
            return verifier.clone();
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new(provider)
        .ok()
        .map(Arc::new);
    *kept = Some((std::time::Instant::now(), verifier.clone()));
    verifier
}

/// A TLS client configuration for one endpoint, and what its verifier saw.
pub struct Handshake {
    /// The configuration to connect with.
    pub config: Arc<ClientConfig>,
    seen: Arc<Mutex<Observation>>,
    endpoint: String,
}

impl Handshake {
    /// Builds the configuration for `endpoint` with `trust`.
    pub fn new(endpoint: &Endpoint, trust: &TrustSettings) -> Result<Handshake, TlsError> {
        let key = endpoint.key();
        let fail = |detail: String| TlsError::Connect {
            endpoint: key.clone(),
            detail,
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(path) = &trust.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| fail(format!("cannot read the CA file {}: {e}", path.display())))?;
            let mut added = 0;
            for der in pem_certificates(&pem) {
                if roots.add(der).is_ok() {
                    added += 1;
                }
            }
            if added == 0 {
                return Err(fail(format!(
                    "the CA file {} holds no usable certificate",
                    path.display()
                )));
            }
        }
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| fail(format!("cannot set up certificate checks: {e}")))?;
        let seen = Arc::new(Mutex::new(Observation::default()));
        let verifier = Verifier {
            pin: trust.pin.clone(),
            vouched: trust.vouched,
            webpki,
            provider: provider.clone(),
            seen: seen.clone(),
        };
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| fail(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        config.resumption = Resumption::disabled();
        Ok(Handshake {
            config: Arc::new(config),
            seen,
            endpoint: key,
        })
    }

    /// The chain the server presented, once the handshake ran.
    pub fn chain(&self) -> Vec<CertInfo> {
        self.seen
            .lock()
            .map(|o| o.chain.clone())
            .unwrap_or_default()
    }

    /// What trusted the certificate, once the handshake succeeded.
    pub fn trusted_by(&self) -> Option<&'static str> {
        self.seen.lock().ok().and_then(|o| o.trusted_by)
    }

    /// Turns a handshake error into the error a front end can act on.
    pub fn explain(&self, detail: impl std::fmt::Display) -> TlsError {
        let (chain, failure) = match self.seen.lock() {
            Ok(o) => (o.chain.clone(), o.failure.clone()),
            Err(_) => (Vec::new(), None),
        };
        match failure {
            Some(Failure::Changed(pinned)) => TlsError::Changed {
                endpoint: self.endpoint.clone(),
                pinned,
                chain,
            },
            Some(Failure::NoLongerVouched(shows)) => TlsError::NoLongerVouched {
                endpoint: self.endpoint.clone(),
                shows,
                chain,
            },
            Some(Failure::Untrusted(reason)) => TlsError::Untrusted {
                endpoint: self.endpoint.clone(),
                reason,
                chain,
            },
            None => TlsError::Connect {
                endpoint: self.endpoint.clone(),
                detail: detail.to_string(),
            },
        }
    }
}

/// The certificates in a PEM file.
fn pem_certificates(pem: &[u8]) -> Vec<CertificateDer<'static>> {
    use base64::Engine as _;
    let text = String::from_utf8_lossy(pem);
    let mut out = Vec::new();
    let mut inside = false;
    let mut b64 = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line == "-----BEGIN CERTIFICATE-----" {
            inside = true;
            b64.clear();
        } else if line == "-----END CERTIFICATE-----" {
            inside = false;
            if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(&b64) {
                out.push(CertificateDer::from(der));
            }
        } else if inside {
            b64.push_str(line);
        }
    }
    out
}

/// A TLS stream, after the handshake.
pub type TlsStream = tokio_rustls::client::TlsStream<TcpStream>;

const TIMEOUT: Duration = Duration::from_secs(30);
const MAX_LINE: usize = 8192;

/// Connects, runs STARTTLS if configured, and completes the TLS handshake.
/// Nothing but the protocol's greeting, capability request and STARTTLS
/// command is exchanged before the certificate is verified. Returns the
/// stream, the chain the server presented and what trusted it. For IMAP over
/// STARTTLS the caller continues after the tagged STARTTLS reply; for SMTP,
/// after the 220 reply to STARTTLS (EHLO must be sent again).
pub async fn connect(
    endpoint: &Endpoint,
    trust: &TrustSettings,
) -> Result<(TlsStream, Vec<CertInfo>, &'static str), TlsError> {
    let key = endpoint.key();
    let fail = |detail: String| TlsError::Connect {
        endpoint: key.clone(),
        detail,
    };
    let handshake = Handshake::new(endpoint, trust)?;
    let mut tcp = match tokio::time::timeout(
        TIMEOUT,
        TcpStream::connect((endpoint.host.as_str(), endpoint.port)),
    )
    .await
    {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => return Err(fail(e.to_string())),
        Err(_) => return Err(fail("timed out".into())),
    };
    // SMTP and IMAP are request/response: without this, Nagle's algorithm
    // and the peer's delayed ACK cost ~40 ms per submitted copy.
    tcp.set_nodelay(true).map_err(|e| fail(e.to_string()))?;
    // A server, or a path to it, that goes away without a word is noticed
    // by the kernel too, not only by the deadline of the next operation.
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(60))
        .with_interval(Duration::from_secs(15))
        .with_retries(4);
    socket2::SockRef::from(&tcp)
        .set_tcp_keepalive(&keepalive)
        .map_err(|e| fail(e.to_string()))?;
    if endpoint.security == Security::StartTls {
        let preamble = tokio::time::timeout(TIMEOUT, starttls(&mut tcp, endpoint.protocol)).await;
        match preamble {
            Ok(Ok(())) => {}
            Ok(Err(Preamble::NotOffered)) => return Err(TlsError::NoStartTls { endpoint: key }),
            Ok(Err(Preamble::Failed(d))) => return Err(fail(d)),
            Err(_) => return Err(fail("timed out before STARTTLS".into())),
        }
    }
    let name = ServerName::try_from(endpoint.host.clone())
        .map_err(|e| fail(format!("bad host name: {e}")))?;
    let connector = tokio_rustls::TlsConnector::from(handshake.config.clone());
    match tokio::time::timeout(TIMEOUT, connector.connect(name, tcp)).await {
        Ok(Ok(stream)) => {
            let by = handshake
                .trusted_by()
                .unwrap_or("a public or configured CA");
            Ok((stream, handshake.chain(), by))
        }
        Ok(Err(e)) => Err(handshake.explain(e)),
        Err(_) => Err(fail("the TLS handshake timed out".into())),
    }
}

/// How long one network operation (a login, a command and its answer, a
/// submitted message) may take before the server counts as silent.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);

/// Runs one network operation of a mail protocol against `deadline`: a
/// server that accepted the connection and then says nothing ends in an
/// error that names it, rather than a relay that waits forever.
pub async fn within<T, E>(
    deadline: Duration,
    what: impl FnOnce(String) -> E,
    op: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    match tokio::time::timeout(deadline, op).await {
        Ok(r) => r,
        Err(_) => Err(what(format!(
            "no answer within {} seconds",
            deadline.as_secs()
        ))),
    }
}

enum Preamble {
    NotOffered,
    Failed(String),
}

/// The plain-text exchange before the handshake. Reads byte by byte so that
/// nothing the server sends after the STARTTLS reply is swallowed.
async fn starttls(tcp: &mut TcpStream, protocol: Protocol) -> Result<(), Preamble> {
    let io = |e: std::io::Error| Preamble::Failed(e.to_string());
    match protocol {
        Protocol::Smtp => {
            let greeting = read_reply(tcp).await.map_err(io)?;
            if !greeting.starts_with("220") {
                return Err(Preamble::Failed(format!(
                    "unexpected greeting: {}",
                    first_line(&greeting)
                )));
            }
            tcp.write_all(b"EHLO conclave.invalid\r\n")
                .await
                .map_err(io)?;
            let ehlo = read_reply(tcp).await.map_err(io)?;
            if !ehlo.starts_with("250") {
                return Err(Preamble::Failed(format!(
                    "EHLO refused: {}",
                    first_line(&ehlo)
                )));
            }
            if !ehlo.lines().any(|l| {
                l.get(4..)
                    .is_some_and(|k| k.trim().eq_ignore_ascii_case("STARTTLS"))
            }) {
                return Err(Preamble::NotOffered);
            }
            tcp.write_all(b"STARTTLS\r\n").await.map_err(io)?;
            let reply = read_reply(tcp).await.map_err(io)?;
            if !reply.starts_with("220") {
                return Err(Preamble::Failed(format!(
                    "STARTTLS refused: {}",
                    first_line(&reply)
                )));
            }
        }
        Protocol::Imap => {
            let greeting = read_line(tcp).await.map_err(io)?;
            if !greeting.starts_with("* OK") {
                return Err(Preamble::Failed(format!("unexpected greeting: {greeting}")));
            }
            tcp.write_all(b"c1 CAPABILITY\r\n").await.map_err(io)?;
            let mut caps = String::new();
            for _ in 0..64 {
                let line = read_line(tcp).await.map_err(io)?;
                if line.starts_with("c1 ") {
                    break;
                }
                caps.push_str(&line);
                caps.push(' ');
            }
            if !caps
                .to_ascii_uppercase()
                .split_whitespace()
                .any(|w| w == "STARTTLS")
            {
                return Err(Preamble::NotOffered);
            }
            tcp.write_all(b"c2 STARTTLS\r\n").await.map_err(io)?;
            for _ in 0..64 {
                let line = read_line(tcp).await.map_err(io)?;
                if let Some(rest) = line.strip_prefix("c2 ") {
                    if rest.starts_with("OK") {
                        return Ok(());
                    }
                    return Err(Preamble::Failed(format!("STARTTLS refused: {line}")));
                }
            }
            return Err(Preamble::Failed("no reply to STARTTLS".into()));
        }
        Protocol::Https => return Err(Preamble::Failed("HTTPS has no STARTTLS".into())),
    }
    Ok(())
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// Reads one CRLF-terminated line, byte by byte, bounded.
async fn read_line(r: &mut TcpStream) -> std::io::Result<String> {
    let mut line = Vec::new();
    loop {
        let b = r.read_u8().await?;
        if b == b'\n' {
            break;
        }
        line.push(b);
        if line.len() > MAX_LINE {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the server sent an overlong line",
            ));
        }
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// Reads a (possibly multi-line) SMTP reply.
async fn read_reply(r: &mut TcpStream) -> std::io::Result<String> {
    let mut out = String::new();
    for _ in 0..256 {
        let line = read_line(r).await?;
        let last = line.as_bytes().get(3) != Some(&b'-');
        out.push_str(&line);
        out.push('\n');
        if last {
            return Ok(out);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "the server sent an overlong reply",
    ))
}

/// Runs a future to completion on a private single-threaded runtime, for the
/// parts of the engine that are called synchronously (the CLI).
pub fn block_on<T>(f: impl std::future::Future<Output = T>) -> std::io::Result<T> {
    Ok(runtime()?.block_on(f))
}

/// A private single-threaded runtime, for a caller that drives several
/// futures on the same connections ([`block_on`] runs one).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_endpoints_and_fingerprints() {
        assert_eq!(
            parse_endpoint("Mail.Example.org:993"),
            Some(("mail.example.org".into(), 993))
        );
        assert_eq!(parse_endpoint("[::1]:465"), Some(("::1".into(), 465)));
        assert_eq!(parse_endpoint("nohost"), None);
        assert_eq!(normalise_fingerprint("AB:cd 01"), "abcd01");
    }
}
