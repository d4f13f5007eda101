//! The mail host's IMAP server behind a TLS proxy on loopback that can
//! misbehave on purpose, for what Dovecot does not do on demand: an
//! unsolicited FETCH for another message in the middle of a reply, or a
//! connection lost at a given command. The proxy speaks TLS with the mail
//! host's own certificate (trusted through `tls.ca_file`) and forwards to
//! its IMAP port on loopback without STARTTLS (the server counts loopback
//! as secure), so everything else is the real server.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::Mailhost;

/// What the proxy does besides forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehaviour {
    /// Nothing: a plain TLS front for the server.
    None,
    /// Before the server's reply to every `UID FETCH`, an unsolicited
    /// `* 1 FETCH` for another UID, claimed by some instance (as when
    /// another session has just claimed it), with a huge size and a huge
    /// mod-sequence.
    UnsolicitedFetch,
    /// Closes the connection when the client sends `UID MOVE` (the command
    /// never reaches the server), as a crash or a lost link would.
    DropOnMove,
}

/// The unsolicited line of [`Misbehaviour::UnsolicitedFetch`].
pub const UNSOLICITED: &[u8] =
    b"* 1 FETCH (UID 4000000000 RFC822.SIZE 999999999 MODSEQ (4000000000) FLAGS ($ConclaveClaimed))\r\n";

/// A running proxy; it stops when dropped.
pub struct ImapProxy {
    /// Its port on 127.0.0.1.
    pub port: u16,
    mode: Arc<Mutex<Misbehaviour>>,
    to_client: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl ImapProxy {
    /// Listens on a free port of 127.0.0.1, in front of the mail host.
    pub fn start(mode: Misbehaviour) -> ImapProxy {
        let mh = Mailhost::get();
        let certs = CertificateDer::pem_file_iter(mh.dir.join("certs/server-chain.crt"))
            .expect("read the server chain")
            .collect::<Result<Vec<_>, _>>()
            .expect("parse the server chain");
        let key = PrivateKeyDer::from_pem_file(mh.dir.join("certs/server.key"))
            .expect("read the server key");
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("a server config"),
        );
        let upstream = (mh.var("MAILHOST_HOST"), mh.port("MAILHOST_IMAP_PORT"));
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = ImapProxy {
            port,
            mode: Arc::new(Mutex::new(mode)),
            to_client: Arc::new(AtomicUsize::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (mode, to_client, stop) = (
            proxy.mode.clone(),
            proxy.to_client.clone(),
            proxy.stop.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (config, upstream) = (config.clone(), upstream.clone());
                        let (mode, to_client, stop) =
                            (mode.clone(), to_client.clone(), stop.clone());
                        std::thread::spawn(move || {
                            let _ = relay(conn, config, upstream, &mode, &to_client, &stop);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        proxy
    }

    /// Changes what the proxy does from the next command on.
    pub fn set(&self, mode: Misbehaviour) {
        *self.mode.lock().unwrap() = mode;
    }

    /// How many bytes the server has sent the clients so far (the replies
    /// in clear, before TLS).
    pub fn bytes_to_client(&self) -> usize {
        self.to_client.load(Ordering::SeqCst)
    }
}

impl Drop for ImapProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn quiet(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Forwards one connection, line by line from the client so each command
/// can be looked at, until either side closes.
fn relay(
    conn: TcpStream,
    config: Arc<rustls::ServerConfig>,
    upstream: (String, u16),
    mode: &Mutex<Misbehaviour>,
    to_client: &AtomicUsize,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    let tick = Some(Duration::from_millis(5));
    conn.set_read_timeout(tick)?;
    let tls = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
    let mut client = rustls::StreamOwned::new(tls, conn);
    let mut server = TcpStream::connect((upstream.0.as_str(), upstream.1))?;
    server.set_read_timeout(tick)?;
    let mut line = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::SeqCst) {
        match client.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                for &b in &buf[..n] {
                    line.push(b);
                    if b != b'\n' {
                        continue;
                    }
                    let command = String::from_utf8_lossy(&line).to_ascii_uppercase();
                    let now = *mode.lock().unwrap();
                    if now == Misbehaviour::DropOnMove && command.contains(" UID MOVE ") {
                        return Ok(());
                    }
                    if now == Misbehaviour::UnsolicitedFetch && command.contains(" UID FETCH ") {
                        client.write_all(UNSOLICITED)?;
                        client.flush()?;
                    }
                    server.write_all(&line)?;
                    line.clear();
                }
            }
            Err(e) if quiet(&e) => {}
            Err(e) => return Err(e),
        }
        match server.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                to_client.fetch_add(n, Ordering::SeqCst);
                client.write_all(&buf[..n])?;
                client.flush()?;
            }
            Err(e) if quiet(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
