//! Testkit for Conclave's end-to-end tests.
//!
//! No mocks: subscribers are driven through the real OpenPGP programs
//! installed on the machine — GnuPG 2.2 (`gpg`), RNP 0.16 (`rnp`,
//! `rnpkeys`; Thunderbird's engine), Sequoia `sq` 0.27 and OpenPGP.js 6
//! (`node`, `tests/testbed/openpgpjs`) — and the list
//! through the real `conclave` binary.
//!
//! * [`Engine`], [`Subscriber`], [`Post`], [`Signing`], [`Decrypted`]:
//!   key generation, composing PGP/MIME posts, decrypting copies, verifying
//!   detached signatures ([`subscriber`]).
//! * [`mime`]: building and picking apart MIME entities
//!   ([`split_multipart_signed`], [`first_text_plain`], [`header`]).
//! * [`pgp`]: packet inspection with sequoia ([`pkesk_recipients`],
//!   cert fingerprints / key IDs).
//! * [`programs`]: [`find_program`], [`require_programs`].
//! * [`qr`]: QR codes read back from a terminal's half blocks or a PNG.
//! * [`Conclave`]: runs `conclave --home HOME …` ([`conclave`]).
//! * [`Keyserver`]: WKD and a VKS keyserver over HTTPS on loopback, and a
//!   CONNECT proxy ([`keyserver`]).
//! * [`ImapProxy`]: the mail host's IMAP behind a loopback TLS proxy that
//!   can misbehave as some servers do ([`imapproxy`]).

pub mod bench;
pub mod card;
pub mod conclave;
pub mod cutproxy;
pub mod imapproxy;
pub mod keyserver;
pub mod mailhost;
pub mod mime;
pub mod pgp;
pub mod programs;
pub mod qr;
pub mod rawimap;
pub mod subscriber;
pub mod webdriver;

pub use card::VirtualCard;
pub use conclave::{conclave_bin, workspace_root, Conclave, TEST_PASSPHRASE};
pub use imapproxy::{ImapProxy, Misbehaviour};
pub use keyserver::{ConnectProxy, Keyserver};
pub use mailhost::{MailList, Mailhost, SilentServer};
pub use mime::{first_text_plain, header, split_multipart_signed};
pub use pgp::{
    cert_expiry, cert_fingerprint, cert_has_key, cert_key_ids, extract_armored_message,
    pkesk_recipients,
};
pub use programs::{find_program, require_all_engines, require_programs};
pub use rawimap::RawImap;
pub use subscriber::{Decrypted, Engine, JsKey, Post, Signing, Subscriber};

/// Panics unless every named program is on `PATH`:
/// `require_programs!("gpg", "rnp", "sq")`.
#[macro_export]
macro_rules! require_programs {
    ($($p:expr),+ $(,)?) => {
        $crate::programs::require_programs(&[$($p),+])
    };
}

/// The session bus of the test keyring (`tests/testbed/keyring.sh`), which
/// `make test` starts and passes on in `DBUS_SESSION_BUS_ADDRESS`. Panics,
/// saying how to start it, when it is not there.
pub fn keyring_bus() -> String {
    let bus = std::env::var("DBUS_SESSION_BUS_ADDRESS").unwrap_or_default();
    let script = conclave::workspace_root().join("tests/testbed/keyring.sh");
    let running = std::process::Command::new("bash")
        .arg(&script)
        .arg("address")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match running {
        Some(addr) if addr == bus => bus,
        _ => panic!(
            "no test keyring on DBUS_SESSION_BUS_ADDRESS ({bus:?}): run `bash {} start` and export the address it prints (make test does both)",
            script.display()
        ),
    }
}

/// Polls `f` every 10 ms for up to `secs` seconds; true once it holds.
pub fn wait_until(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    f()
}
