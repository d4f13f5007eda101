//! The loopback mail host (Postfix + Dovecot) of `tests/testbed/mailhost.sh`.
//!
//! `make test` starts it before the suites and stops it after, and tells the
//! tests where it is with `CONCLAVE_MAILHOST_DIR`. Run alone, a suite starts
//! it itself in that directory (default `/tmp/conclave-mh`) and leaves it
//! running for the next one; `tests/testbed/mailhost.sh stop DIR` stops it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A running mail host and its settings (`mailhost.env`).
#[derive(Debug)]
pub struct Mailhost {
    /// Its directory.
    pub dir: PathBuf,
    env: BTreeMap<String, String>,
}

impl Mailhost {
    /// The mail host, started if it is not running.
    pub fn get() -> &'static Mailhost {
        static HOST: OnceLock<Mailhost> = OnceLock::new();
        HOST.get_or_init(|| {
            let dir = PathBuf::from(
                std::env::var("CONCLAVE_MAILHOST_DIR")
                    .unwrap_or_else(|_| "/tmp/conclave-mh".into()),
            );
            let script = crate::workspace_root().join("tests/testbed/mailhost.sh");
            let running = std::process::Command::new(&script)
                .arg("status")
                .arg(&dir)
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if !running {
                let out = std::process::Command::new(&script)
                    .arg("start")
                    .arg(&dir)
                    .output()
                    .expect("run mailhost.sh");
                assert!(
                    out.status.success(),
                    "mailhost.sh start failed:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            let text = std::fs::read_to_string(dir.join("mailhost.env")).expect("mailhost.env");
            let env = text
                .lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect();
            Mailhost { dir, env }
        })
    }

    /// A setting from `mailhost.env`, e.g. `MAILHOST_IMAPS_PORT`.
    pub fn var(&self, key: &str) -> String {
        self.env
            .get(key)
            .cloned()
            .unwrap_or_else(|| panic!("{key} missing from mailhost.env"))
    }

    /// A setting from `mailhost.env`, if it is there.
    pub fn env_var(&self, key: &str) -> Option<String> {
        self.env.get(key).cloned()
    }

    /// A port setting.
    pub fn port(&self, key: &str) -> u16 {
        self.var(key)
            .parse()
            .unwrap_or_else(|_| panic!("{key} is not a port"))
    }

    /// `host:port` for a host key and a port key.
    pub fn endpoint(&self, host_key: &str, port_key: &str) -> String {
        format!("{}:{}", self.var(host_key), self.port(port_key))
    }

    /// Every message in `user`'s INBOX (the Maildir's new/ and cur/).
    pub fn inbox(&self, user: &str) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            let dir = self.dir.join("mail").join(user).join("Maildir").join(sub);
            if let Ok(rd) = std::fs::read_dir(&dir) {
                for e in rd.flatten() {
                    if let Ok(b) = std::fs::read(e.path()) {
                        out.push(b);
                    }
                }
            }
        }
        out
    }

    /// Waits up to `secs` for a message in `user`'s INBOX whose headers carry
    /// `Message-ID: <id>`.
    pub fn wait_for(&self, user: &str, id: &str, secs: u64) -> Option<Vec<u8>> {
        let needle = format!("<{id}>");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            if let Some(m) = self
                .inbox(user)
                .into_iter()
                .find(|m| crate::mime::header(m, "Message-ID").is_some_and(|v| v.trim() == needle))
            {
                return Some(m);
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Every file under the Postfix queue and every mailbox, for plaintext checks.
    pub fn stored_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        walk(&self.dir.join("mail"), &mut out);
        walk(&self.dir.join("spool"), &mut out);
        out
    }

    /// The text of the mail host's logs (Postfix and Dovecot).
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for f in ["log/postfix.log", "log/dovecot.log"] {
            out.push_str(&std::fs::read_to_string(self.dir.join(f)).unwrap_or_default());
        }
        out
    }
}

impl Mailhost {
    /// Delivers `eml` from `from` to `to` through the plain injection port,
    /// as the outside world would.
    pub fn inject(&self, from: &str, to: &str, eml: &[u8]) {
        use std::io::{BufRead, BufReader, Write};
        let mut s = std::net::TcpStream::connect((
            self.var("MAILHOST_HOST").as_str(),
            self.port("MAILHOST_SMTP_PORT"),
        ))
        .expect("connect to the injection port");
        let mut r = BufReader::new(s.try_clone().unwrap());
        let expect = |r: &mut BufReader<std::net::TcpStream>, code: &str| loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            assert!(line.starts_with(code), "expected {code}, got {line:?}");
            if line.as_bytes().get(3) != Some(&b'-') {
                break;
            }
        };
        expect(&mut r, "220");
        for (cmd, code) in [
            ("EHLO test.invalid".to_string(), "250"),
            (format!("MAIL FROM:<{from}>"), "250"),
            (format!("RCPT TO:<{to}>"), "250"),
            ("DATA".into(), "354"),
        ] {
            write!(s, "{cmd}\r\n").unwrap();
            expect(&mut r, code);
        }
        let text = crate::mime::to_crlf(eml);
        for line in text.split(|b| *b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.first() == Some(&b'.') {
                s.write_all(b".").unwrap();
            }
            s.write_all(line).unwrap();
            s.write_all(b"\r\n").unwrap();
        }
        s.write_all(b".\r\n").unwrap();
        expect(&mut r, "250");
        s.write_all(b"QUIT\r\n").unwrap();
    }

    /// Empties every mailbox.
    pub fn clear(&self) {
        self.script("clear");
    }

    /// From now on Postfix accepts mail as usual but keeps it in its hold
    /// queue: nothing is delivered until [`Mailhost::release`] or
    /// [`Mailhost::drop_held`].
    pub fn hold(&self) {
        self.script("hold");
    }

    /// Stops holding; what was held is delivered now.
    pub fn release(&self) {
        self.script("release");
    }

    /// Stops holding; what was held is deleted, never delivered.
    pub fn drop_held(&self) {
        self.script("drop-held");
    }

    /// How many messages sit in Postfix's hold queue.
    pub fn held(&self) -> usize {
        let mut held = Vec::new();
        walk(&self.dir.join("spool/postfix/hold"), &mut held);
        held.len()
    }

    /// Runs `tests/testbed/mailhost.sh COMMAND DIR`.
    fn script(&self, command: &str) {
        let script = crate::workspace_root().join("tests/testbed/mailhost.sh");
        let out = std::process::Command::new(script)
            .arg(command)
            .arg(&self.dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mailhost.sh {command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// How many messages sit in `user`'s folder whose Maildir directory name
    /// contains `folder` ("" for INBOX).
    pub fn count(&self, user: &str, folder: &str) -> usize {
        let base = self.dir.join("mail").join(user).join("Maildir");
        let mut dirs = vec![];
        if folder.is_empty() {
            dirs.push(base.clone());
        } else if let Ok(rd) = std::fs::read_dir(&base) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().contains(folder) {
                    dirs.push(e.path());
                }
            }
        }
        dirs.iter()
            .flat_map(|d| ["new", "cur"].map(|s| d.join(s)))
            .map(|d| std::fs::read_dir(d).map(|r| r.count()).unwrap_or(0))
            .sum()
    }
}

/// A list whose subscribers are the mail host's users alice, bob and carol
/// (each with GnuPG), logging in to the mail host as `list`.
pub struct MailList {
    /// The list.
    pub list: crate::Conclave,
    /// The list's public key.
    pub cert: Vec<u8>,
    /// alice, bob and carol.
    pub subs: Vec<crate::Subscriber>,
    password_file: PathBuf,
}

impl MailList {
    /// Creates the list and its three subscribers.
    pub fn new(name: &str) -> MailList {
        use std::os::unix::fs::PermissionsExt;
        let mh = Mailhost::get();
        let list = crate::Conclave::new();
        list.init("list@example.test", name);
        let cert = list.list_cert();
        let subs: Vec<crate::Subscriber> = ["alice", "bob", "carol"]
            .iter()
            .map(|u| crate::Subscriber::new(crate::Engine::Gpg, &format!("{u}@example.test")))
            .collect();
        for s in &subs {
            list.add_subscriber(s);
            s.import_cert(&cert).unwrap();
        }
        let password_file = list.write_aux("password", mh.var("MAILHOST_PASSWORD").as_bytes());
        std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        list.config_set("tls.ca_file", &mh.var("MAILHOST_CA_CERT"));
        MailList {
            list,
            cert,
            subs,
            password_file,
        }
    }

    /// A list made afresh on an emptied mail host, reading its mailbox
    /// over IMAPS and sending through submission with STARTTLS.
    pub fn connected(name: &str) -> MailList {
        Mailhost::get().clear();
        let ml = MailList::new(name);
        ml.server("imap", "MAILHOST_HOST", "MAILHOST_IMAPS_PORT", "tls");
        ml.server(
            "smtp",
            "MAILHOST_HOST",
            "MAILHOST_SUBMISSION_PORT",
            "starttls",
        );
        ml
    }

    /// Points `prefix` (`imap` or `smtp`) at a mail host endpoint.
    pub fn server(&self, prefix: &str, host_key: &str, port_key: &str, security: &str) {
        let mh = Mailhost::get();
        let pw = self.password_file.to_string_lossy().into_owned();
        for (k, v) in [
            ("host", mh.var(host_key)),
            ("port", mh.var(port_key)),
            ("security", security.to_string()),
            ("username", "list".to_string()),
            ("password_file", pw),
        ] {
            self.list.config_set(&format!("{prefix}.{k}"), &v);
        }
    }
}

/// A server on loopback that accepts connections and then says nothing, as
/// a mail server that hangs does. It holds what it accepts, and stops by
/// itself after `lifetime` or 16 connections.
pub struct SilentServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl SilentServer {
    /// Listens on a free port of 127.0.0.1.
    pub fn start(lifetime: std::time::Duration) -> SilentServer {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        std::thread::spawn(move || {
            let until = std::time::Instant::now() + lifetime;
            let mut held = Vec::new();
            while std::time::Instant::now() < until && held.len() < 16 {
                match listener.accept() {
                    Ok((conn, _)) => {
                        held.push(conn);
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
                }
            }
        });
        SilentServer { port, accepted }
    }

    /// How many connections it has accepted.
    pub fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Adds the files under `dir`, in its subfolders too, to `out`.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
}
