//! A list subscriber backed by a real OpenPGP implementation: GnuPG, RNP
//! (Thunderbird's engine), Sequoia `sq` 0.27 or OpenPGP.js 6 (the engine
//! inside Mailvelope and Proton, driven through
//! `tests/testbed/openpgpjs/subscriber.mjs`).
//!
//! Each [`Subscriber`] owns an isolated temporary directory under `/tmp`
//! (short path, because gpg-agent's socket path must stay below 107 bytes):
//!
//! | path            | gpg                    | rnp                          | sq                    |
//! |-----------------|------------------------|------------------------------|-----------------------|
//! | `DIR/h/`        | `GNUPGHOME`            | `--homedir` (pubring.gpg, secring.gpg directly inside) | unused |
//! | `DIR/key.pgp`   | –                      | –                            | secret key (+ `.rev`) |
//! | `DIR/key.asc`   | OpenPGP.js: the secret key (armored)                                          |||
//! | `DIR/pub.asc`   | armored public cert    | armored public cert          | armored public cert   |
//! | `DIR/certs/`    | –                      | –                            | imported certs        |
//! | `DIR/tN.*`      | scratch files          | scratch files                | scratch files         |
//!
//! Keys are EdDSA (ed25519) primary + ECDH (cv25519) encryption subkey for
//! gpg, rnp and sq (sq additionally adds an ed25519 signing subkey and an
//! authentication subkey, its defaults), without passphrase and without
//! expiry. OpenPGP.js makes the key [`JsKey`] asks for, with its own
//! defaults.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};

use tempfile::TempDir;

use crate::mime;
use crate::pgp;
use crate::programs::{failure_message, run, run_checked};

/// The OpenPGP implementation a subscriber uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Engine {
    /// GnuPG 2.2 (`gpg`, `gpgconf`).
    Gpg,
    /// RNP 0.16 (`rnp`, `rnpkeys`), the engine inside Thunderbird.
    Rnp,
    /// Sequoia `sq` 0.27 (stateless; keys live in files).
    Sq,
    /// OpenPGP.js 6 under Node.js (stateless; keys live in files).
    OpenPgpJs,
}

/// The key an OpenPGP.js subscriber makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JsKey {
    /// A v4 key, Ed25519 + Curve25519 (OpenPGP.js's default).
    Cv25519,
    /// A v4 RSA-3072 key.
    Rsa3072,
    /// An RFC 9580 v6 key (Ed25519 + X25519).
    V6,
}

impl JsKey {
    fn name(self) -> &'static str {
        match self {
            JsKey::Cv25519 => "cv25519",
            JsKey::Rsa3072 => "rsa3072",
            JsKey::V6 => "v6",
        }
    }
}

/// The script that drives OpenPGP.js (its `node_modules` come from
/// `npm ci` in the same folder, which `make test` runs).
pub fn openpgpjs_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testbed/openpgpjs/subscriber.mjs")
}

impl Engine {
    /// All engines, in a fixed order.
    pub const ALL: [Engine; 4] = [Engine::Gpg, Engine::Rnp, Engine::Sq, Engine::OpenPgpJs];

    /// Short lower-case name (`"gpg"`, `"rnp"`, `"sq"`, `"openpgpjs"`).
    pub fn name(self) -> &'static str {
        match self {
            Engine::Gpg => "gpg",
            Engine::Rnp => "rnp",
            Engine::Sq => "sq",
            Engine::OpenPgpJs => "openpgpjs",
        }
    }

    /// The programs this engine needs.
    pub fn programs(self) -> &'static [&'static str] {
        match self {
            Engine::Gpg => &["gpg", "gpgconf"],
            Engine::Rnp => &["rnp", "rnpkeys"],
            Engine::Sq => &["sq"],
            Engine::OpenPgpJs => &["node"],
        }
    }

    /// Panics with a clear message if a program of this engine is missing.
    pub fn require(self) {
        crate::require_programs(self.programs());
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How [`Subscriber::compose`] protects the post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    /// The inner `text/plain` entity is signed and encrypted in one
    /// OpenPGP message (`gpg --sign --encrypt`, `rnp -e -s`,
    /// `sq encrypt --signer-key`).
    Inline,
    /// The inner entity is an RFC 3156 `multipart/signed` (detached
    /// signature by the engine), which is then encrypted without a second
    /// signature.
    MimeSigned,
    /// Encrypted only.
    Unsigned,
}

/// A post to compose; see [`Subscriber::compose`].
#[derive(Debug, Clone)]
pub struct Post {
    pub subject: String,
    /// The body text; line endings are converted to CRLF.
    pub body: String,
    pub signing: Signing,
    /// Overrides the `Message-ID` (with angle brackets).  Default: fresh.
    pub message_id: Option<String>,
    /// Overrides the `Date`.  Default: now (RFC 5322, UTC).
    pub date: Option<String>,
    /// Overrides the `From` header (default: the subscriber's address).
    pub from: Option<String>,
    /// Extra outer headers, appended after the standard ones.
    pub extra_headers: Vec<(String, String)>,
    /// Attach the author's public key, as Thunderbird's "Attach my public
    /// key" does.
    pub attach_key: bool,
    /// Put `From`, `To` and `Subject` inside the encryption (inside the
    /// signed part, for [`Signing::MimeSigned`]), as Thunderbird does
    /// (RFC 9788). Default: true. Mutt and K-9 do not.
    pub protect_headers: bool,
}

impl Post {
    /// A post with `subject` and `body`, signed inline.
    pub fn new(subject: &str, body: &str) -> Self {
        Post {
            subject: subject.into(),
            body: body.into(),
            signing: Signing::Inline,
            message_id: None,
            date: None,
            from: None,
            extra_headers: Vec::new(),
            attach_key: false,
            protect_headers: true,
        }
    }

    /// Leaves every header outside the encryption, as Mutt and K-9 do.
    pub fn unprotected(mut self) -> Self {
        self.protect_headers = false;
        self
    }

    /// Attaches the author's public key.
    pub fn with_key(mut self) -> Self {
        self.attach_key = true;
        self
    }

    /// Sets the signing mode.
    pub fn signing(mut self, s: Signing) -> Self {
        self.signing = s;
        self
    }

    /// Adds an outer header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.extra_headers.push((name.into(), value.into()));
        self
    }
}

/// The result of [`Subscriber::decrypt`].
#[derive(Debug, Clone)]
pub struct Decrypted {
    /// The decrypted payload: for a Conclave copy, a MIME entity
    /// (`multipart/signed; protocol="application/pgp-signature"`).
    pub entity: Vec<u8>,
    /// Key IDs (v3 PKESK, 16 hex digits) / fingerprints (v6 PKESK) of the
    /// encryption subkeys the message was encrypted to, upper-case hex, in
    /// packet order; see [`pgp::pkesk_recipients`].
    pub recipients: Vec<String>,
    /// The armored OpenPGP message that was decrypted.
    pub armored: Vec<u8>,
    /// The engine's stdout + stderr (gpg: including `--status-fd` lines).
    pub log: String,
}

impl Decrypted {
    /// True if one of the PKESKs names a key (primary or subkey) of `cert`.
    pub fn encrypted_to(&self, cert: &[u8]) -> bool {
        self.recipients.iter().any(|r| pgp::cert_has_key(cert, r))
    }

    /// The decoded text of the first `text/plain` part anywhere inside the
    /// entity.
    pub fn text(&self) -> Option<String> {
        mime::first_text_plain(&self.entity)
    }

    /// [`mime::split_multipart_signed`] of the entity.
    pub fn split_signed(&self) -> Option<(Vec<u8>, Vec<u8>)> {
        mime::split_multipart_signed(&self.entity)
    }

    /// [`mime::header`] of the entity's top-level header block.
    pub fn header(&self, name: &str) -> Option<String> {
        mime::header(&self.entity, name)
    }
}

/// A subscriber with its own key and keyring; see the module docs.
pub struct Subscriber {
    /// The OpenPGP implementation.
    pub engine: Engine,
    /// The e-mail address (`alice@example.test`).
    pub address: String,
    /// The key's User ID (the address, or `Name <address>`).
    pub user_id: String,
    /// The temporary directory holding everything of this subscriber.
    pub dir: TempDir,
    fingerprint: String,
    public_key: Vec<u8>,
    js_key: JsKey,
    seq: AtomicU32,
    clock_ahead: AtomicI64,
    /// When the key expires, in GnuPG's and RNP's notation (`never`, `10d`).
    expire: String,
}

impl fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber")
            .field("engine", &self.engine)
            .field("address", &self.address)
            .field("fingerprint", &self.fingerprint)
            .field("dir", &self.dir.path())
            .finish()
    }
}

/// The options every unattended `gpg` call of the testkit takes.
pub const GPG_COMMON: &[&str] = &[
    "--batch",
    "--no-tty",
    "--yes",
    "--pinentry-mode",
    "loopback",
    "--passphrase",
    "",
    "--no-auto-key-retrieve",
];

impl Subscriber {
    /// Generates a fresh key for `address` (User ID = the bare address)
    /// with `engine`.  Panics with the engine's output on failure.
    pub fn new(engine: Engine, address: &str) -> Subscriber {
        Self::with_user_id(engine, address, address)
    }

    /// Like [`Subscriber::new`] with an explicit User ID, e.g.
    /// `"Alice <alice@example.test>"`.
    pub fn with_user_id(engine: Engine, address: &str, user_id: &str) -> Subscriber {
        Self::try_with_user_id(engine, address, user_id)
            .unwrap_or_else(|e| panic!("cannot create {engine} subscriber {address}: {e}"))
    }

    /// An OpenPGP.js subscriber with the key `kind`.
    pub fn openpgpjs(address: &str, kind: JsKey) -> Subscriber {
        Self::try_new(Engine::OpenPgpJs, address, address, kind).unwrap_or_else(|e| {
            panic!("cannot create OpenPGP.js ({kind:?}) subscriber {address}: {e}")
        })
    }

    /// Fallible version of [`Subscriber::with_user_id`].
    pub fn try_with_user_id(
        engine: Engine,
        address: &str,
        user_id: &str,
    ) -> Result<Subscriber, String> {
        Self::try_new(engine, address, user_id, JsKey::Cv25519)
    }

    fn try_new(
        engine: Engine,
        address: &str,
        user_id: &str,
        js_key: JsKey,
    ) -> Result<Subscriber, String> {
        Self::try_new_as(engine, address, user_id, js_key, "never", 0)
    }

    /// [`Self::try_new`] with the key expiring `expire` after it is made,
    /// `ahead` seconds from now (negative: in the past).
    fn try_new_as(
        engine: Engine,
        address: &str,
        user_id: &str,
        js_key: JsKey,
        expire: &str,
        ahead: i64,
    ) -> Result<Subscriber, String> {
        let prefix = format!("ctk-{}", &engine.name()[..1]);
        let dir = tempfile::Builder::new()
            .prefix(&prefix)
            .tempdir_in("/tmp")
            .map_err(|e| format!("cannot create temp dir: {e}"))?;
        let home = dir.path().join("h");
        std::fs::create_dir(&home).map_err(|e| format!("mkdir {}: {e}", home.display()))?;
        set_mode_700(&home);
        let mut s = Subscriber {
            engine,
            address: address.into(),
            user_id: user_id.into(),
            dir,
            fingerprint: String::new(),
            public_key: Vec::new(),
            js_key,
            seq: AtomicU32::new(0),
            clock_ahead: AtomicI64::new(ahead),
            expire: expire.into(),
        };
        s.generate()?;
        Ok(s)
    }

    /// A subscriber of `engine` (GnuPG or RNP) whose key was made `days_ago`
    /// days ago and expires `expire` after that (`10d`, GnuPG's and RNP's
    /// notation): a key that expires soon, or one that has expired. GnuPG
    /// makes it (RNP 0.16 cannot make a key in the past); an RNP subscriber
    /// imports it.
    pub fn made_ago(engine: Engine, address: &str, days_ago: u64, expire: &str) -> Subscriber {
        assert!(
            matches!(engine, Engine::Gpg | Engine::Rnp),
            "only GnuPG and RNP can make a key in the past"
        );
        let s = Self::try_new_as(
            engine,
            address,
            address,
            JsKey::Cv25519,
            expire,
            -((days_ago * 86_400) as i64),
        )
        .unwrap_or_else(|e| panic!("cannot create {engine} subscriber {address}: {e}"));
        s.clock_ahead.store(0, Ordering::Relaxed);
        s
    }

    /// Moves the key's expiry (primary key and subkeys) to `expire` from
    /// now (`2y`), as `gpg --quick-set-expire` does, and reads the key
    /// again. RNP 0.16 cannot change an expiry: its key is extended by
    /// GnuPG and imported back, as someone who moved between the two would.
    pub fn extend_key(&mut self, expire: &str) {
        let fpr = self.fingerprint.clone();
        match self.engine {
            Engine::Gpg => {
                gpg_set_expiry(&|| self.gpg(), &fpr, expire)
                    .unwrap_or_else(|e| panic!("{self:?}: cannot extend the key: {e}"));
                self.public_key = run_checked(self.gpg().args(["--armor", "--export", &fpr]), None)
                    .unwrap()
                    .stdout;
            }
            Engine::Rnp => {
                let gpg = self.side_gpg();
                run_checked(gpg().arg("--import"), Some(&self.secret_key_armored())).unwrap();
                gpg_set_expiry(&gpg, &fpr, expire)
                    .unwrap_or_else(|e| panic!("{self:?}: cannot extend the key: {e}"));
                let (public, secret) = self.side_gpg_export(&fpr);
                self.rnp_import(&secret)
                    .unwrap_or_else(|e| panic!("{self:?}: cannot import the extended key: {e}"));
                self.public_key = public;
            }
            _ => panic!("extend_key is for GnuPG and RNP"),
        }
        std::fs::write(self.public_key_file(), &self.public_key).unwrap();
    }

    /// The key with the revocation GnuPG made for it when it made the key
    /// (`openpgp-revocs.d/FPR.rev`), armored. The keyring is left alone:
    /// the key still signs.
    pub fn revoked_public_key(&self) -> Vec<u8> {
        assert_eq!(self.engine, Engine::Gpg, "revocations are GnuPG's here");
        let rev = std::fs::read_to_string(
            self.home()
                .join("openpgp-revocs.d")
                .join(format!("{}.rev", self.fingerprint)),
        )
        .unwrap();
        // GnuPG writes the armor with a leading colon, so that it is not
        // imported by mistake.
        let rev = rev.replace(
            ":-----BEGIN PGP PUBLIC KEY BLOCK-----",
            "-----BEGIN PGP PUBLIC KEY BLOCK-----",
        );
        pgp::with_signatures(&self.public_key, rev.as_bytes())
    }

    /// A GnuPG of this subscriber's own beside their engine (RNP 0.16
    /// cannot make keys in the past nor change an expiry; someone who uses
    /// both moves keys between them).
    fn side_gpg(&self) -> impl Fn() -> Command {
        let home = self.dir.path().join("side-gpg");
        std::fs::create_dir_all(&home).unwrap();
        set_mode_700(&home);
        let ahead = self.clock_ahead.load(Ordering::Relaxed);
        move || gpg_in(&home, ahead)
    }

    /// The public and secret key `fpr` of [`Self::side_gpg`], armored;
    /// its agent is stopped.
    fn side_gpg_export(&self, fpr: &str) -> (Vec<u8>, Vec<u8>) {
        let gpg = self.side_gpg();
        let public = run_checked(gpg().args(["--armor", "--export", fpr]), None)
            .unwrap()
            .stdout;
        let secret = run_checked(gpg().args(["--armor", "--export-secret-keys", fpr]), None)
            .unwrap()
            .stdout;
        let _ = run(
            Command::new("gpgconf")
                .arg("--homedir")
                .arg(self.dir.path().join("side-gpg"))
                .args(["--kill", "all"]),
            None,
        );
        (public, secret)
    }

    /// An `Autocrypt:` header value carrying `key` (armored) for this
    /// subscriber's address, folded as mail clients fold it.
    pub fn autocrypt_header(&self, key: &[u8]) -> String {
        use base64::Engine as _;
        let binary = pgp::dearmored_cert(key);
        let b64 = base64::engine::general_purpose::STANDARD.encode(binary);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "addr={}; prefer-encrypt=mutual; keydata=\r\n {}",
            self.address,
            lines.join("\r\n ")
        )
    }

    fn generate(&mut self) -> Result<(), String> {
        let uid = self.user_id.clone();
        let public = match self.engine {
            Engine::Gpg => {
                gpg_generate(&|| self.gpg(), &uid, &self.expire)?;
                run_checked(self.gpg().args(["--armor", "--export"]), None)?.stdout
            }
            Engine::Rnp if self.clock_ahead.load(Ordering::Relaxed) != 0 => {
                // Made by GnuPG in the past, then imported.
                let gpg = self.side_gpg();
                gpg_generate(&gpg, &uid, &self.expire)?;
                let listing = run_checked(gpg().args(["--with-colons", "--list-keys"]), None)?;
                let fpr = String::from_utf8_lossy(&listing.stdout)
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("fpr:")
                            .map(|r| r.trim_matches(':').to_string())
                    })
                    .ok_or("gpg made no key")?;
                let (public, secret) = self.side_gpg_export(&fpr);
                self.rnp_import(&secret)?;
                public
            }
            Engine::Rnp => {
                // rnpkeys --expert asks for the algorithm on stdin;
                // "22" = EdDSA + X25519.
                let mut c = Command::new("rnpkeys");
                run_checked(
                    c.arg("--homedir").arg(self.home()).args([
                        "--generate-key",
                        "--expert",
                        "--userid",
                        &uid,
                        "--password",
                        "",
                        "--expiration",
                        if self.expire == "never" {
                            "0"
                        } else {
                            &self.expire
                        },
                        "--notty",
                    ]),
                    Some(b"22\n"),
                )?;
                run_checked(
                    Command::new("rnpkeys")
                        .arg("--homedir")
                        .arg(self.home())
                        // rnp reads the User ID as a regular expression.
                        .args(["--export-key", "--notty", &regex_escaped(&uid)]),
                    None,
                )?
                .stdout
            }
            Engine::Sq => {
                let key = self.secret_key_file();
                run_checked(
                    Command::new("sq")
                        .args([
                            "key",
                            "generate",
                            "--userid",
                            &uid,
                            "--expires",
                            "never",
                            "--export",
                        ])
                        .arg(&key),
                    None,
                )?;
                run_checked(
                    Command::new("sq").args(["key", "extract-cert"]).arg(&key),
                    None,
                )?
                .stdout
            }
            Engine::OpenPgpJs => {
                run_checked(
                    self.node()
                        .args(["gen", self.js_key.name(), &uid])
                        .arg(self.dir.path()),
                    None,
                )?;
                // OpenPGP.js writes a bare address as `<address>`.
                if !uid.contains('<') {
                    self.user_id = format!("<{uid}>");
                }
                std::fs::read(self.public_key_file()).map_err(|e| e.to_string())?
            }
        };
        let uid = self.user_id.clone();
        let fpr = pgp::cert_fingerprint(&public).map_err(|e| {
            format!(
                "{e}; exported public key was:\n{}",
                String::from_utf8_lossy(&public)
            )
        })?;
        let uids = pgp::cert_user_ids(&public)?;
        if !uids.iter().any(|u| u == &uid) {
            return Err(format!(
                "generated cert {fpr} has User IDs {uids:?}, expected {uid:?}"
            ));
        }
        std::fs::write(self.public_key_file(), &public)
            .map_err(|e| format!("writing public key: {e}"))?;
        self.fingerprint = fpr;
        self.public_key = public;
        Ok(())
    }

    // -- accessors ---------------------------------------------------------

    /// The subscriber's address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Primary-key fingerprint (40 upper-case hex digits).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Key IDs of the primary key and all subkeys (upper-case hex).
    pub fn key_ids(&self) -> Vec<String> {
        pgp::cert_key_ids(&self.public_key).expect("own cert parses")
    }

    /// The armored public certificate.
    pub fn public_key_armored(&self) -> Vec<u8> {
        self.public_key.clone()
    }

    /// A file holding [`Self::public_key_armored`], e.g. for
    /// `conclave subscriber add ADDR --key FILE`.
    pub fn public_key_file(&self) -> PathBuf {
        self.dir.path().join("pub.asc")
    }

    /// The engine home directory (gpg `GNUPGHOME`, rnp `--homedir`).
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("h")
    }

    /// The secret key file of the stateless engines: sq's `key.pgp`,
    /// OpenPGP.js's `key.asc` (nothing for gpg and rnp).
    pub fn secret_key_file(&self) -> PathBuf {
        match self.engine {
            Engine::OpenPgpJs => self.dir.path().join("key.asc"),
            _ => self.dir.path().join("key.pgp"),
        }
    }

    /// Exports the (unprotected) secret key, armored.
    pub fn secret_key_armored(&self) -> Vec<u8> {
        let r = match self.engine {
            Engine::Gpg => run_checked(
                self.gpg()
                    .args(["--armor", "--export-secret-keys", &self.fingerprint]),
                None,
            )
            .map(|o| o.stdout),
            Engine::Rnp => run_checked(
                Command::new("rnpkeys")
                    .arg("--homedir")
                    .arg(self.home())
                    .args([
                        "--export-key",
                        "--secret",
                        "--password",
                        "",
                        "--notty",
                        &self.fingerprint,
                    ]),
                None,
            )
            .map(|o| o.stdout),
            Engine::Sq | Engine::OpenPgpJs => {
                std::fs::read(self.secret_key_file()).map_err(|e| e.to_string())
            }
        };
        r.unwrap_or_else(|e| panic!("{self:?}: cannot export secret key: {e}"))
    }

    /// A fresh scratch file path inside the subscriber's directory.
    pub fn scratch(&self, ext: &str) -> PathBuf {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        self.dir.path().join(format!("t{n}.{ext}"))
    }

    fn write_scratch(&self, ext: &str, data: &[u8]) -> Result<PathBuf, String> {
        let p = self.scratch(ext);
        std::fs::write(&p, data).map_err(|e| format!("writing {}: {e}", p.display()))?;
        Ok(p)
    }

    fn gpg(&self) -> Command {
        gpg_in(&self.home(), self.clock_ahead.load(Ordering::Relaxed))
    }

    /// Certifies the key `fingerprint` (imported before) with this
    /// subscriber's key, exportable, and returns that key as it now is,
    /// armored (GnuPG only: `gpg --quick-sign-key`).
    pub fn certify(&self, fingerprint: &str) -> Vec<u8> {
        assert_eq!(self.engine, Engine::Gpg, "certify is for GnuPG");
        run_checked(
            self.gpg()
                .args(["-u", &self.fingerprint, "--quick-sign-key", fingerprint]),
            None,
        )
        .unwrap_or_else(|e| panic!("{self:?}: cannot certify {fingerprint}: {e}"));
        run_checked(self.gpg().args(["--armor", "--export", fingerprint]), None)
            .map(|o| o.stdout)
            .unwrap_or_else(|e| panic!("{self:?}: cannot export {fingerprint}: {e}"))
    }

    /// Sets this subscriber's clock `secs` ahead of the real one (GnuPG
    /// only, through `--faked-system-time`): what it signs from now on
    /// carries that creation time.
    pub fn set_clock_ahead(&self, secs: i64) {
        assert_eq!(self.engine, Engine::Gpg, "only GnuPG can fake its clock");
        self.clock_ahead.store(secs, Ordering::Relaxed);
    }

    fn node(&self) -> Command {
        let mut c = Command::new("node");
        c.arg(openpgpjs_script());
        c
    }

    fn rnp(&self) -> Command {
        let mut c = Command::new("rnp");
        c.arg("--homedir")
            .arg(self.home())
            .args(["--notty", "--password", "", "--overwrite"]);
        c
    }

    // -- keyring -----------------------------------------------------------

    /// Imports a certificate (e.g. the list's public key) into this
    /// subscriber's keyring (gpg, rnp) or its list of known certs (sq:
    /// `DIR/certs/FPR.asc`).  Idempotent.
    pub fn import_cert(&self, armored: &[u8]) -> Result<(), String> {
        let fpr = pgp::cert_fingerprint(armored)?;
        match self.engine {
            Engine::Gpg => {
                run_checked(self.gpg().arg("--import"), Some(armored))?;
            }
            Engine::Rnp => self.rnp_import(armored)?,
            Engine::Sq | Engine::OpenPgpJs => {
                let d = self.dir.path().join("certs");
                std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
                std::fs::write(d.join(format!("{fpr}.asc")), armored).map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// Imports keys (public or secret, armored) into the RNP keyring.
    fn rnp_import(&self, armored: &[u8]) -> Result<(), String> {
        let f = self.write_scratch("asc", armored)?;
        run_checked(
            Command::new("rnpkeys")
                .arg("--homedir")
                .arg(self.home())
                .args(["--import", "--notty"])
                .arg(&f),
            None,
        )
        .map(|_| ())
    }

    /// Path of an imported cert file for sq (importing it first).
    fn cert_file(&self, armored: &[u8]) -> Result<PathBuf, String> {
        let fpr = pgp::cert_fingerprint(armored)?;
        let p = self.dir.path().join("certs").join(format!("{fpr}.asc"));
        if !p.exists() {
            std::fs::create_dir_all(p.parent().unwrap()).map_err(|e| e.to_string())?;
            std::fs::write(&p, armored).map_err(|e| e.to_string())?;
        }
        Ok(p)
    }

    // -- primitive operations ---------------------------------------------

    /// Encrypts `plaintext` to `recipient_cert` (imported first), signing
    /// it with this subscriber's key if `sign`, in one OpenPGP message.
    /// Returns the ASCII armor.
    pub fn encrypt(
        &self,
        plaintext: &[u8],
        recipient_cert: &[u8],
        sign: bool,
    ) -> Result<Vec<u8>, String> {
        let rfpr = pgp::cert_fingerprint(recipient_cert)?;
        let input = self.write_scratch("in", plaintext)?;
        let output = self.scratch("asc");
        match self.engine {
            Engine::Gpg => {
                self.import_cert(recipient_cert)?;
                let mut c = self.gpg();
                c.args(["--trust-model", "always", "--armor"]);
                if sign {
                    c.args(["--sign", "-u", &self.fingerprint]);
                }
                c.args(["--encrypt", "-r", &rfpr, "-o"])
                    .arg(&output)
                    .arg(&input);
                run_checked(&mut c, None)?;
            }
            Engine::Rnp => {
                self.import_cert(recipient_cert)?;
                let mut c = self.rnp();
                c.args(["-e", "-r", &rfpr]);
                if sign {
                    c.args(["-s", "-u", &self.fingerprint]);
                }
                c.args(["--armor", "--output"]).arg(&output).arg(&input);
                run_checked(&mut c, None)?;
            }
            Engine::Sq => {
                let cert = self.cert_file(recipient_cert)?;
                let mut c = Command::new("sq");
                c.args(["encrypt", "--recipient-cert"]).arg(&cert);
                if sign {
                    c.arg("--signer-key").arg(self.secret_key_file());
                }
                c.arg("-o").arg(&output).arg(&input);
                run_checked(&mut c, None)?;
            }
            Engine::OpenPgpJs => {
                let cert = self.cert_file(recipient_cert)?;
                let key = if sign {
                    self.secret_key_file()
                } else {
                    PathBuf::from("-")
                };
                run_checked(
                    self.node()
                        .arg("encrypt")
                        .arg(&key)
                        .arg(&cert)
                        .arg(&input)
                        .arg(&output),
                    None,
                )?;
            }
        }
        let armored =
            std::fs::read(&output).map_err(|e| format!("reading {}: {e}", output.display()))?;
        if !armored.starts_with(b"-----BEGIN PGP MESSAGE-----") {
            return Err(format!(
                "{} did not produce an armored message:\n{}",
                self.engine,
                String::from_utf8_lossy(&armored)
            ));
        }
        Ok(armored)
    }

    /// A cleartext-signed text (`gpg --clearsign`), as Mutt's and
    /// Enigmail's inline signing writes it. GnuPG only.
    pub fn clearsign(&self, text: &str) -> Result<Vec<u8>, String> {
        assert_eq!(self.engine, Engine::Gpg, "clearsigning is done with GnuPG");
        let input = self.write_scratch("txt", text.as_bytes())?;
        let output = self.scratch("clear");
        run_checked(
            self.gpg()
                .args(["--clearsign", "-u", &self.fingerprint, "-o"])
                .arg(&output)
                .arg(&input),
            None,
        )?;
        std::fs::read(&output).map_err(|e| format!("reading {}: {e}", output.display()))
    }

    /// Makes an armored detached signature over exactly `data` (binary
    /// signature, type 0x00) with this subscriber's key.
    pub fn sign_detached(&self, data: &[u8]) -> Result<Vec<u8>, String> {
        let input = self.write_scratch("dat", data)?;
        let output = self.scratch("sig");
        match self.engine {
            Engine::Gpg => {
                run_checked(
                    self.gpg()
                        .args(["--armor", "--detach-sign", "-u", &self.fingerprint, "-o"])
                        .arg(&output)
                        .arg(&input),
                    None,
                )?;
            }
            Engine::Rnp => {
                run_checked(
                    self.rnp()
                        .args([
                            "--sign",
                            "--detach",
                            "--armor",
                            "-u",
                            &self.fingerprint,
                            "--output",
                        ])
                        .arg(&output)
                        .arg(&input),
                    None,
                )?;
            }
            Engine::Sq => {
                run_checked(
                    Command::new("sq")
                        .args(["sign", "--detached", "--signer-key"])
                        .arg(self.secret_key_file())
                        .arg("-o")
                        .arg(&output)
                        .arg(&input),
                    None,
                )?;
            }
            Engine::OpenPgpJs => {
                run_checked(
                    self.node()
                        .arg("sign-detached")
                        .arg(self.secret_key_file())
                        .arg(&input)
                        .arg(&output),
                    None,
                )?;
            }
        }
        std::fs::read(&output).map_err(|e| format!("reading {}: {e}", output.display()))
    }

    // -- composing posts ---------------------------------------------------

    /// The inner MIME entity of a post (what gets encrypted): for
    /// [`Signing::Inline`] and [`Signing::Unsigned`] the `text/plain`
    /// entity, for [`Signing::MimeSigned`] a `multipart/signed` whose
    /// first part is that `text/plain` entity.
    pub fn compose_inner(&self, post: &Post, list_addr: &str) -> Vec<u8> {
        let mut text = mime::text_plain_entity(&post.body);
        if post.attach_key {
            let fpr = self.fingerprint();
            let keyid = fpr.get(fpr.len().saturating_sub(16)..).unwrap_or(fpr);
            text = mime::with_key_attached(&text, &self.public_key_armored(), keyid);
        }
        if post.protect_headers {
            let from = post.from.clone().unwrap_or_else(|| self.address.clone());
            let mut protected = format!(
                "From: {}\r\nTo: {list_addr}\r\nSubject: {}\r\n",
                mime::encode_header_value(&from),
                mime::encode_header_value(&post.subject)
            )
            .into_bytes();
            protected.extend_from_slice(&text);
            text = protected;
        }
        match post.signing {
            Signing::Inline | Signing::Unsigned => text,
            Signing::MimeSigned => {
                let sig = self
                    .sign_detached(&text)
                    .unwrap_or_else(|e| panic!("{self:?}: detached signing failed: {e}"));
                let micalg = pgp::signature_info(&sig)
                    .map(|i| i[0].micalg.clone())
                    .unwrap_or_else(|e| panic!("{self:?}: cannot parse own signature: {e}"));
                mime::multipart_signed_entity(&text, &sig, &micalg)
            }
        }
    }

    /// Builds a complete RFC 5322 PGP/MIME (RFC 3156 `multipart/encrypted`)
    /// message from this subscriber to `list_addr`, encrypted to
    /// `list_cert_armored`.  Panics on failure.
    pub fn compose(&self, list_cert_armored: &[u8], list_addr: &str, post: &Post) -> Vec<u8> {
        let inner = self.compose_inner(post, list_addr);
        let armored = self
            .encrypt(&inner, list_cert_armored, post.signing == Signing::Inline)
            .unwrap_or_else(|e| panic!("{self:?}: encryption failed: {e}"));
        let mut headers: Vec<(String, String)> = vec![
            (
                "From".into(),
                post.from.clone().unwrap_or_else(|| self.address.clone()),
            ),
            ("To".into(), list_addr.into()),
            ("Subject".into(), post.subject.clone()),
            (
                "Date".into(),
                post.date.clone().unwrap_or_else(mime::rfc2822_now),
            ),
            (
                "Message-ID".into(),
                post.message_id
                    .clone()
                    .unwrap_or_else(|| mime::new_message_id(&self.address)),
            ),
        ];
        headers.extend(post.extra_headers.iter().cloned());
        mime::multipart_encrypted_message(&headers, &armored)
    }

    /// A post whose inner `text/plain; charset=utf-8` entity is signed and
    /// encrypted to the list key in one OpenPGP message.
    pub fn compose_post(
        &self,
        list_cert_armored: &[u8],
        list_addr: &str,
        subject: &str,
        body: &str,
    ) -> Vec<u8> {
        self.compose(list_cert_armored, list_addr, &Post::new(subject, body))
    }

    /// A post whose inner entity is an RFC 3156 `multipart/signed` (detached
    /// signature by this engine over the CRLF-canonical `text/plain` part),
    /// encrypted (not signed again) to the list key.
    pub fn compose_post_mime_signed(
        &self,
        list_cert_armored: &[u8],
        list_addr: &str,
        subject: &str,
        body: &str,
    ) -> Vec<u8> {
        self.compose(
            list_cert_armored,
            list_addr,
            &Post::new(subject, body).signing(Signing::MimeSigned),
        )
    }

    /// A post that is encrypted to the list key but not signed.
    pub fn compose_unsigned_post(
        &self,
        list_cert_armored: &[u8],
        list_addr: &str,
        subject: &str,
        body: &str,
    ) -> Vec<u8> {
        self.compose(
            list_cert_armored,
            list_addr,
            &Post::new(subject, body).signing(Signing::Unsigned),
        )
    }

    // -- receiving ---------------------------------------------------------

    /// Decrypts one received copy: `eml` is a PGP/MIME message (the first
    /// `-----BEGIN PGP MESSAGE-----` block in it is used; a bare armored
    /// message works too).  Returns the decrypted entity and the PKESK
    /// recipients.  Errors if no armored message is found or if the engine
    /// cannot decrypt it (e.g. it was not encrypted to this subscriber).
    ///
    /// Inline signatures inside the OpenPGP message are not required to
    /// verify (gpg exits 2 for a signature by an unknown key; that is
    /// accepted as long as decryption itself succeeded).
    pub fn decrypt(&self, eml: &[u8]) -> Result<Decrypted, String> {
        let armored = pgp::extract_armored_message(eml)
            .ok_or_else(|| "no -----BEGIN PGP MESSAGE----- block found in input".to_string())?;
        self.decrypt_armored(&armored)
    }

    /// Decrypts an armored (or binary) OpenPGP message; see [`Self::decrypt`].
    pub fn decrypt_armored(&self, armored: &[u8]) -> Result<Decrypted, String> {
        let recipients = pgp::pkesk_recipients(armored)?;
        let input = self.write_scratch("asc", armored)?;
        let output = self.scratch("out");
        let (out, ok) = match self.engine {
            Engine::Gpg => {
                let mut c = self.gpg();
                c.args(["--status-fd", "1", "-o"])
                    .arg(&output)
                    .arg("--decrypt")
                    .arg(&input);
                let out = run(&mut c, None)?;
                let status = String::from_utf8_lossy(&out.stdout);
                let ok = status.contains("[GNUPG:] DECRYPTION_OKAY")
                    && !status.contains("[GNUPG:] DECRYPTION_FAILED")
                    && output.exists();
                (out, if ok { Ok(()) } else { Err(c) })
            }
            Engine::Rnp => {
                let mut c = self.rnp();
                c.arg("--decrypt").arg(&input).arg("--output").arg(&output);
                let out = run(&mut c, None)?;
                let ok = out.status.success() && output.exists();
                (out, if ok { Ok(()) } else { Err(c) })
            }
            Engine::Sq => {
                let mut c = Command::new("sq");
                c.args(["decrypt", "--recipient-key"])
                    .arg(self.secret_key_file())
                    .arg("-o")
                    .arg(&output)
                    .arg(&input);
                let out = run(&mut c, None)?;
                let ok = out.status.success() && output.exists();
                (out, if ok { Ok(()) } else { Err(c) })
            }
            Engine::OpenPgpJs => {
                let mut c = self.node();
                c.arg("decrypt")
                    .arg(self.secret_key_file())
                    .arg(&input)
                    .arg(&output);
                let out = run(&mut c, None)?;
                let ok = out.status.success() && output.exists();
                (out, if ok { Ok(()) } else { Err(c) })
            }
        };
        if let Err(c) = ok {
            return Err(format!(
                "{} ({}) cannot decrypt message encrypted to {recipients:?} (own keys: {:?}): {}",
                self.address,
                self.engine,
                self.key_ids(),
                failure_message(&c, &out)
            ));
        }
        let entity =
            std::fs::read(&output).map_err(|e| format!("reading {}: {e}", output.display()))?;
        Ok(Decrypted {
            entity,
            recipients,
            armored: armored.to_vec(),
            log: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        })
    }

    /// Verifies the detached signature `sig_armored` over exactly `data`
    /// with this subscriber's engine, trusting only `signer_cert_armored`:
    ///
    /// * gpg: the cert is imported, `gpg --status-fd 1 --verify SIG DATA`
    ///   must exit 0 with a `VALIDSIG` whose primary fingerprint is the
    ///   cert's;
    /// * rnp: `rnp --keyfile CERT --verify SIG --source DATA` must exit 0;
    /// * sq: `sq verify --signer-cert CERT --detached SIG DATA` must exit 0.
    ///
    /// Additionally the signature's issuer must be a key of the cert.
    /// Returns the signer's primary fingerprint (upper-case hex); `Err` on a
    /// bad signature, a signature by another key, or unparsable input.
    pub fn verify_detached(
        &self,
        data: &[u8],
        sig_armored: &[u8],
        signer_cert_armored: &[u8],
    ) -> Result<String, String> {
        let cert_fpr = pgp::cert_fingerprint(signer_cert_armored)?;
        let data_f = self.write_scratch("dat", data)?;
        let sig_f = self.write_scratch("sig", sig_armored)?;
        match self.engine {
            Engine::Gpg => {
                self.import_cert(signer_cert_armored)?;
                let mut c = self.gpg();
                c.args(["--status-fd", "1", "--verify"])
                    .arg(&sig_f)
                    .arg(&data_f);
                let out = run(&mut c, None)?;
                let status = String::from_utf8_lossy(&out.stdout).into_owned();
                let bad = ["BADSIG", "ERRSIG", "EXPKEYSIG", "REVKEYSIG", "EXPSIG"]
                    .iter()
                    .any(|s| status.contains(&format!("[GNUPG:] {s} ")));
                let validsig: Vec<String> = status
                    .lines()
                    .filter_map(|l| l.strip_prefix("[GNUPG:] VALIDSIG "))
                    .map(|l| {
                        let f: Vec<&str> = l.split_whitespace().collect();
                        f.get(9)
                            .or(f.first())
                            .copied()
                            .unwrap_or_default()
                            .to_string()
                    })
                    .collect();
                if !out.status.success() || bad || validsig.is_empty() {
                    return Err(failure_message(&c, &out));
                }
                if !validsig.iter().all(|v| v.eq_ignore_ascii_case(&cert_fpr)) {
                    return Err(format!(
                        "gpg: signature made by {validsig:?}, not by {cert_fpr}\n{status}"
                    ));
                }
            }
            Engine::Rnp => {
                let cert_f = self.write_scratch("asc", signer_cert_armored)?;
                let mut c = Command::new("rnp");
                c.arg("--homedir")
                    .arg(self.home())
                    .arg("--keyfile")
                    .arg(&cert_f)
                    .args(["--notty", "--verify"])
                    .arg(&sig_f)
                    .arg("--source")
                    .arg(&data_f);
                let out = run(&mut c, None)?;
                let log = String::from_utf8_lossy(&out.stderr);
                if !out.status.success()
                    || !log.contains("Good signature")
                    || log.contains("BAD signature")
                {
                    return Err(failure_message(&c, &out));
                }
            }
            Engine::Sq => {
                let cert_f = self.write_scratch("asc", signer_cert_armored)?;
                let mut c = Command::new("sq");
                c.args(["verify", "--signer-cert"])
                    .arg(&cert_f)
                    .arg("--detached")
                    .arg(&sig_f)
                    .arg(&data_f);
                run_checked(&mut c, None)?;
            }
            Engine::OpenPgpJs => {
                let cert_f = self.write_scratch("asc", signer_cert_armored)?;
                run_checked(
                    self.node()
                        .arg("verify-detached")
                        .arg(&cert_f)
                        .arg(&sig_f)
                        .arg(&data_f),
                    None,
                )?;
            }
        }
        pgp::signature_issued_by(sig_armored, signer_cert_armored)
    }

    /// A message signed by the list and not encrypted (a reply to someone
    /// the list has no key for, a notice to a key it cannot use), as it
    /// sits in the mailbox: its signed part, after this engine checked the
    /// list's signature. Panics when it does not verify.
    pub fn verify_signed_mail(&self, eml: &[u8], list_cert: &[u8]) -> Vec<u8> {
        let start = eml
            .windows(13)
            .position(|w| w == b"Content-Type:")
            .expect("a Content-Type");
        // The mailbox stores lines ending in LF; a client reads them as CRLF.
        let entity = mime::to_crlf(&eml[start..]);
        let (signed, sig) = mime::split_multipart_signed(&entity).expect("multipart/signed");
        self.verify_detached(&signed, &sig, list_cert)
            .unwrap_or_else(|e| panic!("{self:?}: the list's signature: {e}"));
        signed
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        if self.engine == Engine::Gpg {
            // Stop this homedir's gpg-agent (and anything else gpg started
            // for it) before the directory goes away.
            let _ = run(
                Command::new("gpgconf")
                    .arg("--homedir")
                    .arg(self.home())
                    .args(["--kill", "all"]),
                None,
            );
        }
    }
}

/// `gpg` with its home in `home`, its clock `ahead` seconds ahead of the
/// real one (none when 0), unattended.
fn gpg_in(home: &Path, ahead: i64) -> Command {
    let mut c = Command::new("gpg");
    c.env("GNUPGHOME", home)
        .arg("--homedir")
        .arg(home)
        .args(GPG_COMMON);
    if ahead != 0 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        c.arg("--faked-system-time").arg((now + ahead).to_string());
    }
    c
}

/// `gpg --quick-gen-key UID future-default default EXPIRE` (Ed25519 and
/// X25519) with the GnuPG `gpg` gives.
fn gpg_generate(gpg: &dyn Fn() -> Command, uid: &str, expire: &str) -> Result<(), String> {
    run_checked(
        gpg().args(["--quick-gen-key", uid, "future-default", "default", expire]),
        None,
    )
    .map(|_| ())
}

/// Moves the expiry of the key `fpr` and of its subkeys to `expire` from
/// now, as the list's notices tell subscribers to.
fn gpg_set_expiry(gpg: &dyn Fn() -> Command, fpr: &str, expire: &str) -> Result<(), String> {
    for args in [vec![fpr, expire], vec![fpr, expire, "*"]] {
        run_checked(gpg().arg("--quick-set-expire").args(args), None)?;
    }
    Ok(())
}

fn set_mode_700(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700));
}

/// `s` with the characters a regular expression treats specially escaped.
fn regex_escaped(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if "\\.+*?()[]{}|^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
