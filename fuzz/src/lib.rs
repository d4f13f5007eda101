//! What the fuzz targets share: the corpus keys of `tests/data/keys`, one
//! fixed time, and a list home made once per process that every input is
//! received into afresh.
//!
//! Everything here runs before the fork server starts (the targets call it
//! ahead of `afl::fuzz`), so the slow parts (parsing keys, protecting the
//! list key with its passphrase) are paid once, not once per input.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use conclave_core::crypto::keystore::FileKeystore;
use conclave_core::{FixedClock, KeySource, List, Password};
use openpgp::cert::amalgamation::key::PrimaryKey;
use openpgp::parse::Parse;
use openpgp::Cert;
use sequoia_openpgp as openpgp;

/// The one time every target runs at: 2026-09-22, after every corpus key
/// and message was made.
pub const NOW_UNIX: u64 = 1_790_000_000;

/// The plaintext limit of the targets that decrypt: small, so that a
/// compression bomb costs little, and large enough for every fixture.
pub const PLAINTEXT_LIMIT: usize = 256 * 1024;

/// [`NOW_UNIX`] as a time.
pub fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW_UNIX)
}

/// `tests/data` in the source tree.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data")
}

fn read(rel: &str) -> Vec<u8> {
    let path = data_dir().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Bob's secret key: the list key of most corpus messages
/// (`tests/tests/corpus.rs`).
pub const BOB_SECRET: &str = "keys/deltachat/bob-secret.asc";
/// Alice's secret key: the list key of the messages Alice received, and the
/// key of the corpus author.
pub const ALICE_SECRET: &str = "keys/deltachat/alice-secret.asc";
/// The key Thunderbird attached for Alice.
pub const ALICE_THUNDERBIRD: &str = "keys/deltachat/alice-thunderbird-public.asc";

/// A corpus certificate, secret parts and all.
pub fn cert(rel: &str) -> Cert {
    Cert::from_bytes(&read(rel)).unwrap_or_else(|e| panic!("cannot parse {rel}: {e}"))
}

/// An unlocked keystore for a corpus secret key (they carry no passphrase).
pub fn keystore(rel: &str) -> FileKeystore {
    FileKeystore::unlock(cert(rel), &Password::from(""))
        .unwrap_or_else(|e| panic!("cannot unlock {rel}: {e}"))
}

/// The public certificates of the corpus: the subscribers a post is checked against.
pub fn subscriber_certs() -> Vec<Cert> {
    [ALICE_SECRET, BOB_SECRET, ALICE_THUNDERBIRD]
        .iter()
        .map(|rel| cert(rel).strip_secret_key_material())
        .collect()
}

const PASSPHRASE: &str = "fuzz";

/// A list made once: `bob@example.net` with Bob's key as the list key
/// (as in `tests/tests/corpus.rs`), Alice subscribed, signatures of any age
/// taken, and every other option at its default. [`Home::fresh`] gives each input a copy of it as it was made.
pub struct Home {
    dir: tempfile::TempDir,
    template: Vec<u8>,
    unlocked: Cert,
}

const DB_FILE: &str = "list.db";

impl Home {
    /// Makes the list in a new temporary directory (under `TMPDIR`; `make
    /// fuzz` points it at a memory file system when there is one).
    pub fn new() -> Home {
        let dir = tempfile::Builder::new()
            .prefix("conclave-fuzz-")
            .tempdir()
            .expect("a temporary directory");
        let template_dir = dir.path().join("template");
        let pw = Password::from(PASSPHRASE);
        let clock = Arc::new(FixedClock::at_unix(NOW_UNIX));
        let mut list = List::init(
            &template_dir,
            "bob@example.net",
            "Fuzz List",
            KeySource::Import(read(BOB_SECRET)),
            &pw,
            clock,
        )
        .expect("the list is made");
        let alice = cert(ALICE_SECRET).strip_secret_key_material();
        let alice = conclave_core::crypto::certs::armored(&alice).expect("alice's key");
        list.add_subscriber("alice@example.org", &alice)
            .expect("alice subscribed");
        list.config_set("max_signature_age_days", "0")
            .expect("a setting");
        // The list key as the list holds it (certified again on import if
        // it was old), its secret parts unlocked here once: opening the key
        // file with its passphrase costs a deliberately slow S2K.
        let unlocked = Cert::from_bytes(
            &std::fs::read(template_dir.join("list-key.asc")).expect("the list key file"),
        )
        .expect("the list key");
        let mut packets: Vec<openpgp::Packet> = Vec::new();
        for ka in unlocked.keys().secret() {
            let key = ka.key().clone();
            let key = if key.secret().is_encrypted() {
                key.decrypt_secret(&pw).expect("the list key unlocks")
            } else {
                key
            };
            if ka.primary() {
                packets.push(key.role_into_primary().into());
            } else {
                packets.push(key.role_into_subordinate().into());
            }
        }
        let (unlocked, _) = unlocked.insert_packets(packets).expect("unlocked");
        drop(list);
        let template = std::fs::read(template_dir.join(DB_FILE)).expect("the list's store");
        Home {
            dir,
            template,
            unlocked,
        }
    }

    /// The list as it was made, in a directory of its own, unlocked, with
    /// nothing received yet: every input meets the same list, so a crash
    /// found is a crash reproduced from the input alone.
    pub fn fresh(&self) -> List {
        let home = self.dir.path().join("list");
        let _ = std::fs::remove_dir_all(&home);
        std::fs::create_dir_all(&home).expect("the list home");
        std::fs::write(home.join(DB_FILE), &self.template).expect("the list's store");
        let clock = Arc::new(FixedClock::at_unix(NOW_UNIX));
        let mut list = List::open(&home, clock).expect("the list opens");
        let ks = FileKeystore::unlock(self.unlocked.clone(), &Password::from(PASSPHRASE))
            .expect("the keystore");
        list.set_keystore(Box::new(ks)).expect("the list key");
        list
    }
}

impl Default for Home {
    fn default() -> Self {
        Home::new()
    }
}
