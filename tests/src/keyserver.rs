//! A web server for keys on loopback: HTTPS with a certificate from the mail
//! host's test CA (so Conclave trusts it through `tls.ca_file`, as it trusts
//! the mail host), for the host names a list looks keys up at. It serves
//! the Web Key Directory (advanced and direct methods, from keys put in by
//! the test or from a folder written by `key wkd`) and the VKS API of
//! keys.openpgp.org (`by-fingerprint`, `upload`, `request-verify`, and the
//! `verify/TOKEN` link, which it mails to the address through the mail
//! host's injection port, as the real server does).
//!
//! Conclave reaches it through the `net.resolve` option
//! ([`Keyserver::resolve`]): the host names map to its loopback port.
//! [`ConnectProxy`] is an HTTP CONNECT proxy that counts what goes through.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sequoia_openpgp::parse::Parse;

use crate::Mailhost;

/// The domain of the test subscribers and of the list.
pub const DOMAIN: &str = "example.test";
/// The keyserver's host name; its base URL is `https://keys.example.test`.
pub const KEYSERVER_HOST: &str = "keys.example.test";
/// Where the verification mail comes from.
pub const KEYSERVER_FROM: &str = "keyserver@keys.example.test";

/// One request the server saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The `Host:` header (without a port).
    pub host: String,
    /// GET or POST.
    pub method: String,
    /// The path and query.
    pub target: String,
    /// The status answered.
    pub status: u16,
}

#[derive(Default)]
struct State {
    /// `(host, path without query)` → body.
    files: BTreeMap<(String, String), Vec<u8>>,
    /// A folder served as `key wkd` wrote it.
    docroot: Option<PathBuf>,
    /// Fingerprint (uppercase) → key, for `by-fingerprint`.
    vks: BTreeMap<String, Vec<u8>>,
    /// Upload token → (fingerprint, key).
    uploads: BTreeMap<String, (String, Vec<u8>)>,
    /// Verification token → (fingerprint, key, address).
    verifications: BTreeMap<String, (String, Vec<u8>, String)>,
    /// Addresses verified.
    verified: Vec<String>,
    seen: Vec<Seen>,
    /// Verification mails kept back until [`Keyserver::send_held`].
    hold_mail: bool,
    held: Vec<(String, String)>,
}

/// The running server; it stops when dropped.
pub struct Keyserver {
    /// Its port on 127.0.0.1.
    pub port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    _dir: tempfile::TempDir,
}

/// The host names the server has a certificate for.
pub fn names() -> Vec<String> {
    vec![
        DOMAIN.to_string(),
        format!("openpgpkey.{DOMAIN}"),
        KEYSERVER_HOST.to_string(),
    ]
}

impl Keyserver {
    /// Starts the server on a free port of 127.0.0.1.
    pub fn start() -> Keyserver {
        let mh = Mailhost::get();
        let dir = tempfile::Builder::new()
            .prefix("ctk-keyserver")
            .tempdir_in("/tmp")
            .unwrap();
        let (chain, key) = certificate(&mh.dir.join("certs"), dir.path());
        let certs = CertificateDer::pem_file_iter(&chain)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(&key).unwrap();
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, halt) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            while !halt.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (config, st) = (config.clone(), st.clone());
                        std::thread::spawn(move || {
                            let _ = serve(conn, config, &st);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Keyserver {
            port,
            state,
            stop,
            _dir: dir,
        }
    }

    /// The `net.resolve` value that sends every name of the server here.
    pub fn resolve(&self) -> String {
        names()
            .iter()
            .map(|n| format!("{n}=127.0.0.1:{}", self.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The keyserver's base URL (`keys.keyserver`).
    pub fn base(&self) -> String {
        format!("https://{KEYSERVER_HOST}")
    }

    /// Serves `key` for `address` by WKD: the advanced method (at
    /// `openpgpkey.DOMAIN`) when `advanced`, else the direct one.
    pub fn put_wkd(&self, address: &str, key: &[u8], advanced: bool) {
        let (local, domain) = address.split_once('@').unwrap();
        let hash = conclave_core::net::wkd::hash(local);
        let (host, path) = if advanced {
            (
                format!("openpgpkey.{domain}"),
                format!("/.well-known/openpgpkey/{domain}/hu/{hash}"),
            )
        } else {
            (
                domain.to_string(),
                format!("/.well-known/openpgpkey/hu/{hash}"),
            )
        };
        self.state
            .lock()
            .unwrap()
            .files
            .insert((host, path), key.to_vec());
    }

    /// Serves a folder written by `key wkd DIR`: `DIR` for `DOMAIN`,
    /// `DIR/openpgpkey/DOMAIN` for `openpgpkey.DOMAIN`.
    pub fn serve_dir(&self, dir: &Path) {
        self.state.lock().unwrap().docroot = Some(dir.to_path_buf());
    }

    /// Serves `key` by fingerprint on the keyserver.
    pub fn put_vks(&self, key: &[u8]) {
        let cert = sequoia_openpgp::Cert::from_bytes(key).unwrap();
        self.state
            .lock()
            .unwrap()
            .vks
            .insert(cert.fingerprint().to_hex(), key.to_vec());
    }

    /// Keeps the verification mails back until [`Keyserver::send_held`].
    pub fn hold_mail(&self) {
        self.state.lock().unwrap().hold_mail = true;
    }

    /// Sends the verification mails kept back.
    pub fn send_held(&self) {
        let held = std::mem::take(&mut self.state.lock().unwrap().held);
        for (address, token) in held {
            send_verification(&address, &token);
        }
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// The addresses whose verification link was opened.
    pub fn verified(&self) -> Vec<String> {
        self.state.lock().unwrap().verified.clone()
    }

    /// Whether the keyserver serves a key with this fingerprint.
    pub fn has_fingerprint(&self, fpr: &str) -> bool {
        self.state
            .lock()
            .unwrap()
            .vks
            .contains_key(&fpr.to_ascii_uppercase())
    }
}

impl Drop for Keyserver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// A server certificate for [`names`], signed by the mail host's CA.
fn certificate(ca_dir: &Path, out: &Path) -> (PathBuf, PathBuf) {
    let san = names()
        .iter()
        .map(|n| format!("DNS:{n}"))
        .collect::<Vec<_>>()
        .join(",");
    let ext = out.join("ext.cnf");
    std::fs::write(
        &ext,
        format!(
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName={san}\n"
        ),
    )
    .unwrap();
    let key = out.join("server.key");
    let csr = out.join("server.csr");
    let crt = out.join("server.crt");
    let run = |args: &[&str]| {
        let o = std::process::Command::new("openssl")
            .args(args)
            .output()
            .expect("run openssl");
        assert!(
            o.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    let p = |p: &Path| p.to_string_lossy().into_owned();
    run(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        &format!("/O=keyserver test/CN={KEYSERVER_HOST}"),
        "-keyout",
        &p(&key),
        "-out",
        &p(&csr),
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        &p(&csr),
        "-CA",
        &p(&ca_dir.join("ca.crt")),
        "-CAkey",
        &p(&ca_dir.join("ca.key")),
        "-set_serial",
        &format!("{}", std::process::id()),
        "-sha256",
        "-days",
        "30",
        "-extfile",
        &p(&ext),
        "-out",
        &p(&crt),
    ]);
    let chain = out.join("chain.crt");
    let mut pem = std::fs::read(&crt).unwrap();
    pem.extend(std::fs::read(ca_dir.join("ca.crt")).unwrap());
    std::fs::write(&chain, pem).unwrap();
    (chain, key)
}

fn serve(
    conn: TcpStream,
    config: Arc<rustls::ServerConfig>,
    state: &Mutex<State>,
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(20)))?;
    let tls = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
    let mut stream = rustls::StreamOwned::new(tls, conn);
    let mut reader = BufReader::new(&mut stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut host = String::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((n, v)) = line.split_once(':') {
            match n.trim().to_ascii_lowercase().as_str() {
                "host" => host = v.trim().split(':').next().unwrap_or("").to_string(),
                "content-length" => length = v.trim().parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    let (status, ctype, answer, chunked) = route(state, &host, &method, &target, &body);
    state.lock().unwrap().seen.push(Seen {
        host,
        method,
        target,
        status,
    });
    let reason = if status < 300 { "OK" } else { "Not OK" };
    let mut out =
        format!("HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nConnection: close\r\n");
    if chunked {
        // Odd-sized chunks, so a client that reads them wrong shows it.
        out.push_str("Transfer-Encoding: chunked\r\n\r\n");
        let mut bytes = out.into_bytes();
        for chunk in answer.chunks(1000 + 7) {
            bytes.extend(format!("{:x};x=y\r\n", chunk.len()).as_bytes());
            bytes.extend(chunk);
            bytes.extend(b"\r\n");
        }
        bytes.extend(b"0\r\n\r\n");
        stream.write_all(&bytes)?;
    } else {
        out.push_str(&format!("Content-Length: {}\r\n\r\n", answer.len()));
        let mut bytes = out.into_bytes();
        bytes.extend(&answer);
        stream.write_all(&bytes)?;
    }
    stream.conn.send_close_notify();
    stream.flush()?;
    Ok(())
}

/// What the server answers: status, type, body, and whether chunked.
fn route(
    state: &Mutex<State>,
    host: &str,
    method: &str,
    target: &str,
    body: &[u8],
) -> (u16, &'static str, Vec<u8>, bool) {
    let path = target.split('?').next().unwrap_or("");
    let not_found = (404, "text/plain", b"not found".to_vec(), false);
    let json = |v: serde_json::Value| (200, "application/json", v.to_string().into_bytes(), false);
    if host == KEYSERVER_HOST {
        if let Some(fpr) = path.strip_prefix("/vks/v1/by-fingerprint/") {
            let st = state.lock().unwrap();
            return match st.vks.get(&fpr.to_ascii_uppercase()) {
                Some(k) => (200, "application/pgp-keys", k.clone(), false),
                None => not_found,
            };
        }
        if method == "POST" && path == "/vks/v1/upload" {
            let v: serde_json::Value = match serde_json::from_slice(body) {
                Ok(v) => v,
                Err(_) => {
                    return (
                        400,
                        "application/json",
                        b"{\"error\":\"bad json\"}".to_vec(),
                        false,
                    )
                }
            };
            let keytext = v["keytext"].as_str().unwrap_or("");
            let Ok(cert) = sequoia_openpgp::Cert::from_bytes(keytext.as_bytes()) else {
                return (
                    400,
                    "application/json",
                    b"{\"error\":\"no key\"}".to_vec(),
                    false,
                );
            };
            let token = random_token();
            let fpr = cert.fingerprint().to_hex();
            let mut status = serde_json::Map::new();
            for ua in cert.userids() {
                if let Ok(Some(a)) = ua.userid().email_normalized() {
                    status.insert(a, "unpublished".into());
                }
            }
            state
                .lock()
                .unwrap()
                .uploads
                .insert(token.clone(), (fpr.clone(), keytext.as_bytes().to_vec()));
            return json(serde_json::json!({"token": token, "key_fpr": fpr, "status": status}));
        }
        if method == "POST" && path == "/vks/v1/request-verify" {
            let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
            let token = v["token"].as_str().unwrap_or("");
            let Some((fpr, key)) = state.lock().unwrap().uploads.get(token).cloned() else {
                return (
                    400,
                    "application/json",
                    b"{\"error\":\"bad token\"}".to_vec(),
                    false,
                );
            };
            let addresses: Vec<String> = v["addresses"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            let mut status = serde_json::Map::new();
            for address in &addresses {
                let verify = random_token();
                state
                    .lock()
                    .unwrap()
                    .verifications
                    .insert(verify.clone(), (fpr.clone(), key.clone(), address.clone()));
                let mut st = state.lock().unwrap();
                if st.hold_mail {
                    st.held.push((address.clone(), verify.clone()));
                } else {
                    drop(st);
                    send_verification(address, &verify);
                }
                status.insert(address.clone(), "pending".into());
            }
            return json(serde_json::json!({"token": token, "key_fpr": fpr, "status": status}));
        }
        if let Some(token) = path.strip_prefix("/verify/") {
            let mut st = state.lock().unwrap();
            return match st.verifications.remove(token) {
                Some((fpr, key, address)) => {
                    st.vks.insert(fpr.to_ascii_uppercase(), key);
                    st.verified.push(address);
                    (200, "text/html", b"<p>verified</p>".to_vec(), false)
                }
                None => not_found,
            };
        }
        return not_found;
    }
    let st = state.lock().unwrap();
    if let Some(k) = st.files.get(&(host.to_string(), path.to_string())) {
        return (200, "application/octet-stream", k.clone(), true);
    }
    if let Some(root) = &st.docroot {
        let base = match host.strip_prefix("openpgpkey.") {
            Some(domain) => root.join("openpgpkey").join(domain),
            None => root.clone(),
        };
        if path.contains("..") {
            return not_found;
        }
        if let Ok(k) = std::fs::read(base.join(path.trim_start_matches('/'))) {
            return (200, "application/octet-stream", k, false);
        }
    }
    not_found
}

fn random_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    for _ in 0..2 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos(),
        );
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

/// The verification mail, as keys.openpgp.org sends it: plain text, the
/// link on a line of its own, through the mail host.
fn send_verification(address: &str, token: &str) {
    let eml = format!(
        "From: keys.example.test <{KEYSERVER_FROM}>\r\nTo: {address}\r\nSubject: Verify {address} for your key on {KEYSERVER_HOST}\r\nMessage-ID: <verify-{token}@{KEYSERVER_HOST}>\r\nDate: Wed, 02 Dec 2026 01:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nAuto-Submitted: auto-generated\r\n\r\nHi,\r\n\r\nthis is an automated message from {KEYSERVER_HOST}.\r\nTo let others find this key from your email address {address},\r\nplease click the link below:\r\n\r\nhttps://{KEYSERVER_HOST}/verify/{token}\r\n\r\nA link elsewhere is not ours: https://example.invalid/verify/nothing\r\n"
    );
    Mailhost::get().inject(KEYSERVER_FROM, address, eml.as_bytes());
}

/// An HTTP CONNECT proxy on loopback that sends every tunnel to `port` on
/// 127.0.0.1 (whatever host it is asked for) and counts the tunnels.
pub struct ConnectProxy {
    /// Its port on 127.0.0.1.
    pub port: u16,
    targets: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    count: Arc<AtomicUsize>,
}

impl ConnectProxy {
    /// Starts the proxy in front of `port`.
    pub fn start(port: u16) -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let own = listener.local_addr().unwrap().port();
        let targets = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicUsize::new(0));
        let (t, halt, n) = (targets.clone(), stop.clone(), count.clone());
        std::thread::spawn(move || {
            while !halt.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        n.fetch_add(1, Ordering::SeqCst);
                        let t = t.clone();
                        std::thread::spawn(move || {
                            let _ = tunnel(conn, port, &t);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        ConnectProxy {
            port: own,
            targets,
            stop,
            count,
        }
    }

    /// The `host:port` of every CONNECT seen.
    pub fn targets(&self) -> Vec<String> {
        self.targets.lock().unwrap().clone()
    }

    /// How many connections it accepted.
    pub fn connections(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn tunnel(conn: TcpStream, port: u16, targets: &Mutex<Vec<String>>) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        if h.trim_end().is_empty() {
            break;
        }
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let mut client = conn;
    if method != "CONNECT" {
        client.write_all(b"HTTP/1.1 405 Only CONNECT\r\n\r\n")?;
        return Ok(());
    }
    targets.lock().unwrap().push(target.to_string());
    let upstream = TcpStream::connect(("127.0.0.1", port))?;
    client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
    let (mut up_r, mut up_w) = (upstream.try_clone()?, upstream);
    let mut down_w = client.try_clone()?;
    let mut down_r = reader;
    let t = std::thread::spawn(move || {
        let _ = std::io::copy(&mut up_r, &mut down_w);
        let _ = down_w.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut down_r, &mut up_w);
    let _ = up_w.shutdown(std::net::Shutdown::Write);
    let _ = t.join();
    Ok(())
}
