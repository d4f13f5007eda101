//! The virtual OpenPGP card of `tests/testbed/card.sh` (pcscd + vpcd + an
//! opcard-based card of our own), for the card suite.
//!
//! `make test` starts it before the suites and stops it after, and says
//! where it is with `CONCLAVE_CARD_DIR`. Run alone, a suite starts it itself
//! in that directory (default `/tmp/conclave-card`) and leaves it running;
//! `tests/testbed/card.sh stop DIR` stops it. One card: tests that use it
//! hold [`VirtualCard::lock`].

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, OnceLock};

/// The virtual card's user PIN (the card's default).
pub const USER_PIN: &str = "123456";
/// The virtual card's admin PIN (the card's default).
pub const ADMIN_PIN: &str = "12345678";

/// The running virtual card.
#[derive(Debug)]
pub struct VirtualCard {
    /// The directory of its state, logs and pid files.
    pub dir: PathBuf,
}

static CARD: Mutex<()> = Mutex::new(());

impl VirtualCard {
    /// The card, started if it is not running.
    pub fn get() -> &'static VirtualCard {
        static ONE: OnceLock<VirtualCard> = OnceLock::new();
        ONE.get_or_init(|| {
            let dir = PathBuf::from(
                std::env::var("CONCLAVE_CARD_DIR").unwrap_or_else(|_| "/tmp/conclave-card".into()),
            );
            let card = VirtualCard { dir };
            if !card.script_status("status") {
                card.script("start");
            }
            card
        })
    }

    /// Serialises the tests that use the card.
    pub fn lock() -> MutexGuard<'static, ()> {
        CARD.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn command(&self, verb: &str) -> std::process::Command {
        let mut c =
            std::process::Command::new(crate::workspace_root().join("tests/testbed/card.sh"));
        c.arg(verb).arg(&self.dir);
        c
    }

    fn script_status(&self, verb: &str) -> bool {
        self.command(verb)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    fn script(&self, verb: &str) {
        let out = self.command(verb).output().expect("run card.sh");
        assert!(
            out.status.success(),
            "card.sh {verb} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A fresh card: no keys, default PINs, counters at zero.
    pub fn reset(&self) {
        self.script("reset");
    }

    /// The card, reset, and its ident.
    pub fn fresh() -> (&'static VirtualCard, String) {
        let card = Self::get();
        card.reset();
        let ident = card.ident();
        (card, ident)
    }

    /// Pulls the card out (kills the card process).
    pub fn eject(&self) {
        self.script("eject");
    }

    /// Puts it back, with the same keys.
    pub fn insert(&self) {
        self.script("insert");
    }

    /// `conclave card list`.
    pub fn list() -> String {
        let out = std::process::Command::new(crate::conclave_bin())
            .args(["card", "list"])
            .output()
            .expect("run conclave card list");
        assert!(
            out.status.success(),
            "card list failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The card's ident, `MMMM:SSSSSSSS`, as `card list` shows it.
    pub fn ident(&self) -> String {
        let list = Self::list();
        list.lines()
            .next()
            .and_then(|l| l.split('\t').next())
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no card in `card list`:\n{list}"))
    }

    /// How many signatures the card has made.
    pub fn signature_count(&self) -> u32 {
        let list = Self::list();
        list.lines()
            .find_map(|l| l.trim().strip_prefix("signatures made: "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no signature counter in `card list`:\n{list}"))
    }

    /// The fingerprints `card list` shows in the signature and decryption slots.
    pub fn slots(&self) -> (String, String) {
        let list = Self::list();
        let slot = |name: &str| {
            list.lines()
                .find_map(|l| l.trim().strip_prefix(name))
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        (slot("signature"), slot("decryption"))
    }
}

/// Writes the PIN files for `list` (mode 0600) and returns the global
/// flags that name them: `--pin-file F --admin-pin-file G`.
pub fn pin_flags(list: &crate::Conclave, user: &str, admin: &str) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut flags = Vec::new();
    for (flag, name, pin) in [
        ("--pin-file", "user-pin", user),
        ("--admin-pin-file", "admin-pin", admin),
    ] {
        let f = list.write_aux(&format!("{name}-{pin}"), format!("{pin}\n").as_bytes());
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        flags.push(flag.to_string());
        flags.push(f.to_string_lossy().into_owned());
    }
    flags
}
