//! The list: its key, store and options, its subscribers ([`members`]), and
//! the way every post goes: `receive(bytes) -> Outcome` parses it once,
//! records it sealed, opens it ([`open`]: decrypt, verify, attribute; no
//! decisions), judges it ([`judge`]: a pure function of the facts and the
//! options) and concludes ([`receive`]: the outcome, the replay cache and
//! the copies, [`fanout`]). Moderation ([`moderation`]) opens and judges
//! held posts the same way. The list does no network I/O: the relay above
//! it talks to the mail host.

pub mod bounces;
pub mod card;
pub mod classify;
pub mod commands;
pub mod dsn;
pub mod fanout;
pub mod import;
pub mod invite;
pub mod judge;
pub mod key;
mod lifecycle;
mod members;
mod moderation;
mod open;
mod oversized;
pub mod policy;
mod publish;
mod receive;
pub(crate) mod replay;
mod reply;
mod requests;
mod resign;
mod retention;
mod roster;
pub mod settings;

pub use resign::RESIGN_AFTER;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use openpgp::crypto::Password;
use openpgp::Cert;
use sequoia_openpgp as openpgp;

use crate::clock::Clock;
use crate::crypto::certs;
use crate::crypto::keystore::{self, FileKeystore, ListKeystore};
use crate::error::{Error, Result};
use crate::store::Store;

pub use crate::events::Outcome;
pub use lifecycle::{usable_until, ExpiringKey, KeyCheck, NotReceiving, LIST_KEY_ALARM_DAYS};
pub(crate) use members::{subscriber_info, Candidates, Subscribed};
pub(crate) use open::Parsed;
pub use policy::{Action, Policy, SignatureMode};
pub(crate) use receive::sender_of;
pub use requests::PendingRequest;
pub use roster::{RosterEntry, SubscriberPage};

/// What [`List::set_queued_hook`] takes.
pub type QueuedHook = std::sync::Arc<dyn Fn() + Send + Sync>;

/// A key file being unlocked on a thread of its own, started before the
/// list is even opened (`run --once` starts it first thing, so the
/// deliberately slow passphrase derivation overlaps the opening too);
/// [`List::unlock_with`] takes it.
#[derive(Debug)]
pub struct Unlocking(std::thread::JoinHandle<Result<FileKeystore>>);

impl Unlocking {
    /// Starts unlocking the key file of the list in `home`.
    pub fn start(home: &Path, passphrase: Password) -> Unlocking {
        let home = home.to_path_buf();
        Unlocking(std::thread::spawn(move || {
            FileKeystore::open(&home, &passphrase)
        }))
    }
}

/// The store's file name inside the list home.
pub const DB_FILE: &str = "list.db";

/// Where the list key comes from at `init`.
#[derive(Debug)]
pub enum KeySource {
    /// Generate a new key.
    Generate,
    /// Import this armored secret key.
    Import(Vec<u8>),
}

/// A held post, opened in memory for the owner.
#[derive(Debug, Clone)]
pub struct HeldView {
    /// The post's id.
    pub id: i64,
    /// The sender's address.
    pub sender: String,
    /// Why it is held.
    pub reason: String,
    /// The real subject.
    pub subject: String,
    /// Who signed it, as verified.
    pub signature: String,
    /// The text of the post.
    pub text: String,
    /// Public keys attached to the post (a would-be subscriber's, say).
    pub keys: Vec<AttachedKey>,
}

/// A public key found attached to a held post.
#[derive(Debug, Clone)]
pub struct AttachedKey {
    /// Its fingerprint.
    pub fingerprint: String,
    /// The addresses of its valid User IDs.
    pub addresses: Vec<String>,
    /// The key, armored, to add as a subscriber's.
    pub armored: String,
}

/// A subscriber, as shown to the owner.
#[derive(Debug, Clone)]
pub struct SubscriberInfo {
    /// Their address.
    pub address: String,
    /// Their key's fingerprint.
    pub fingerprint: String,
    /// Problems with their key (expired, revoked, no encryption key), if any.
    pub warning: Option<String>,
    /// The primary key's algorithm (`EdDSA`, `RSA 3072`…).
    pub algorithm: String,
    /// When the key expires, if it does.
    pub expires: Option<SystemTime>,
    /// The addresses of its valid User IDs.
    pub addresses: Vec<String>,
    /// How their copies fare: bounce score, last failure, stopped or not.
    pub delivery: crate::store::DeliveryHealth,
}

/// One list, opened from its home directory.
pub struct List {
    home: PathBuf,
    store: Store,
    clock: Arc<dyn Clock>,
    cert: Cert,
    address: String,
    keystore: Option<Box<dyn ListKeystore>>,
    /// The key file being unlocked on a thread of its own
    /// ([`List::unlock_with`]), until the key is first needed.
    unlocking: Option<std::thread::JoinHandle<Result<FileKeystore>>>,
    events: Option<crate::events::EventSink>,
    /// Called each time a fan-out has queued more copies.
    queued_hook: Option<QueuedHook>,
    /// What was done to an out-of-date list key at init or unlock.
    renewal: Option<String>,
    /// The key of the replay marks shared through the mailbox, once read
    /// from it ([`replay`]).
    replay_key: Option<zeroize::Zeroizing<Vec<u8>>>,
    /// The replay folder holds no key the list signed: not asked again.
    replay_refused: bool,
}

impl std::fmt::Debug for List {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("List")
            .field("home", &self.home)
            .field("address", &self.address)
            .finish()
    }
}

impl List {
    /// Creates a list in `home`: its store, its key (protected by `passphrase`).
    pub fn init(
        home: &Path,
        address: &str,
        name: &str,
        key: KeySource,
        passphrase: &Password,
        clock: Arc<dyn Clock>,
    ) -> Result<List> {
        let address = address.trim().to_ascii_lowercase();
        if !valid_address(&address) {
            return Err(Error::InvalidInput(format!(
                "{address:?} is not an e-mail address"
            )));
        }
        std::fs::create_dir_all(home).map_err(|e| Error::io("create", home, e))?;
        // The list's folder is its owner's alone (0700), whatever it was.
        crate::private::make_private(home)?;
        if home.join(DB_FILE).exists() || home.join(keystore::KEY_FILE).exists() {
            return Err(Error::AlreadyInitialised(home.to_owned()));
        }
        let now = clock.now();
        // The key must open with this passphrase before anything is written.
        let (cert, ks, renewal) = match key {
            KeySource::Generate => {
                let cert = keystore::generate(&address, name, passphrase, now)?;
                let ks = FileKeystore::unlock(cert.clone(), passphrase)?;
                (cert, ks, None)
            }
            KeySource::Import(bytes) => {
                let cert = keystore::import(&bytes, passphrase)?;
                let mut ks = FileKeystore::unlock(cert.clone(), passphrase)?;
                // An old key (SHA-1 self-signatures, no AEAD preferences) is
                // certified again with its own secret key.
                let public = cert.clone().strip_secret_key_material();
                let (cert, renewal) = match key::renewed(&public, &mut ks, now)? {
                    Some((renewed, line)) => {
                        ks.update_cert(&renewed)?;
                        let cert = cert
                            .merge_public(renewed)
                            .map_err(|e| Error::crypto("update the list key", e))?;
                        (cert, Some(line))
                    }
                    None => (cert, None),
                };
                if !certs::speaks_for(&cert, &address, now) {
                    return Err(Error::BadKey(format!(
                        "the key cannot serve {address}: {}; Thunderbird would not accept the list's signatures",
                        certs::refusal(&cert, &address, now)
                    )));
                }
                (cert, ks, renewal)
            }
        };
        keystore::write_key_file(home, &cert)?;
        let store = Store::open(&home.join(DB_FILE))?;
        let public = cert.clone().strip_secret_key_material();
        store.set_list_key(
            &public.fingerprint().to_hex(),
            &certs::binary(&public)?,
            "file",
        )?;
        store.config_set("list.address", &address)?;
        store.config_set("list.name", &crate::mime::build::clean(name))?;
        store.audit(
            clock.unix(),
            None,
            "init",
            &format!("list {address} created with key {}", public.fingerprint()),
        )?;
        if let Some(line) = &renewal {
            store.audit(clock.unix(), None, "key", line)?;
        }
        Ok(List {
            home: home.to_owned(),
            store,
            clock,
            cert: public,
            address,
            keystore: Some(Box::new(ks)),
            unlocking: None,
            events: None,
            queued_hook: None,
            renewal,
            replay_key: None,
            replay_refused: false,
        })
    }

    /// What [`List::init`] or [`List::unlock`] did to an out-of-date list
    /// key, if they certified it again (the line also in the log).
    pub fn key_renewal(&self) -> Option<&str> {
        self.renewal.as_deref()
    }

    /// Opens the list in `home`.
    pub fn open(home: &Path, clock: Arc<dyn Clock>) -> Result<List> {
        let db = home.join(DB_FILE);
        if !db.exists() {
            return Err(Error::NotInitialised(home.to_owned()));
        }
        crate::private::make_private(home)?;
        let store = Store::open(&db)?;
        let (_, cert, _) = store
            .list_key()?
            .ok_or_else(|| Error::NotInitialised(home.to_owned()))?;
        let cert = certs::parse_public_cert(&cert)?;
        let address = store.config_get("list.address")?.unwrap_or_default();
        let mut list = List {
            home: home.to_owned(),
            store,
            clock,
            cert,
            address,
            keystore: None,
            unlocking: None,
            events: None,
            queued_hook: None,
            renewal: None,
            replay_key: None,
            replay_refused: false,
        };
        list.derive_missing()?;
        Ok(list)
    }

    /// Unlocks the file key with a passphrase. A list key whose
    /// self-signatures are out of date is certified again now, once.
    pub fn unlock(&mut self, passphrase: &Password) -> Result<()> {
        let keystore = FileKeystore::open(&self.home, passphrase)?;
        self.unlocked(keystore);
        Ok(())
    }

    fn unlocked(&mut self, keystore: FileKeystore) {
        self.keystore = Some(Box::new(keystore));
        crate::events::timing("list key unlocked");
        // A key that cannot be renewed (revoked, say) still unlocks: what it
        // cannot do is reported when it is used.
        self.renewal = self.renew_key().ok().flatten();
    }

    /// Takes a key file's unlocking that runs on a thread of its own
    /// ([`Unlocking::start`], started before the list was opened): the
    /// passphrase derivation (deliberately slow) runs while the relay logs
    /// in to the mail host. The first step that needs the key waits for it;
    /// [`List::keystore_ready`] does too, and says whether the passphrase
    /// was right. A key that is not the list's is refused then.
    pub fn unlock_with(&mut self, unlocking: Unlocking) {
        self.unlocking = Some(unlocking.0);
    }

    /// Whether the key is usable or being unlocked.
    pub(crate) fn key_on_its_way(&self) -> Result<()> {
        if self.keystore.is_some() || self.unlocking.is_some() {
            Ok(())
        } else {
            Err(Error::PassphraseRequired)
        }
    }

    /// Whether the list key is usable (unlocked, or on a bound card).
    pub fn is_unlocked(&self) -> bool {
        self.keystore.is_some()
    }

    /// Uses another keystore (an OpenPGP card, say) for the list key.
    pub fn set_keystore(&mut self, ks: Box<dyn ListKeystore>) -> Result<()> {
        if ks.cert().fingerprint() != self.cert.fingerprint() {
            return Err(Error::BadKey(
                "that keystore holds a different key than the list's".into(),
            ));
        }
        self.keystore = Some(ks);
        Ok(())
    }

    /// Where the list reports what happens ([`crate::events::Event`]).
    pub fn set_event_sink(&mut self, sink: Option<crate::events::EventSink>) {
        self.events = sink;
    }

    /// What to call each time a fan-out has committed more copies to the
    /// outbox, before it is done: a delivery pass beside the intake (the
    /// relay's, in `run --once`) can send them while the rest are
    /// encrypted.
    pub fn set_queued_hook(&mut self, hook: Option<QueuedHook>) {
        self.queued_hook = hook;
    }

    pub(crate) fn emit(&self, event: &crate::events::Event) {
        if let Some(sink) = &self.events {
            sink(event);
        }
    }

    /// The list address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The list's certificate.
    pub fn cert(&self) -> &Cert {
        &self.cert
    }

    /// When the list key expires, if it does.
    pub fn key_expiry(&self) -> Result<Option<SystemTime>> {
        let valid = self
            .cert
            .with_policy(crate::crypto::policy(), self.clock.now())
            .map_err(|e| Error::BadKey(format!("the list key is not valid now: {e}")))?;
        Ok(valid.primary_key().key_expiration_time())
    }

    /// The store, for front ends that show its contents.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The list's public key, armored.
    pub fn export_public_key(&self) -> Result<Vec<u8>> {
        certs::armored(&self.cert)
    }

    // ----- configuration -----

    /// Sets an option, after checking its value.
    pub fn config_set(&mut self, key: &str, value: &str) -> Result<()> {
        settings::validate(key, value)?;
        self.store.config_set(key, value)?;
        self.store.audit(
            self.clock.unix(),
            None,
            "config",
            &format!("{key} set to {value}"),
        )
    }

    /// Every option with its value in force.
    pub fn config_show(&self) -> Result<BTreeMap<String, String>> {
        let mut out: BTreeMap<String, String> = settings::SETTINGS
            .iter()
            .map(|o| (o.key.to_owned(), o.default.to_owned()))
            .collect();
        out.insert("list.request_address".into(), self.request_address()?);
        out.insert("list.owner_address".into(), self.owner_address()?);
        out.insert("list.key_address".into(), self.key_address()?);
        for (k, v) in self.store.config_all()? {
            out.insert(k, v);
        }
        Ok(out)
    }

    /// The address for list commands (help, unsubscribe).
    pub fn request_address(&self) -> Result<String> {
        self.sub_address("request")
    }

    /// The address that reaches the owner (`LOCAL+owner@DOMAIN` unless set).
    pub fn owner_address(&self) -> Result<String> {
        self.sub_address("owner")
    }

    /// The address that answers with the list key (`LOCAL+key@DOMAIN`
    /// unless set).
    pub fn key_address(&self) -> Result<String> {
        self.sub_address("key")
    }

    /// The option `list.{what}_address`, or `LOCAL+{what}@DOMAIN`.
    fn sub_address(&self, what: &str) -> Result<String> {
        if let Some(a) = self
            .store
            .config_get(&format!("list.{what}_address"))?
            .filter(|a| !a.is_empty())
        {
            return Ok(a.to_ascii_lowercase());
        }
        let (local, domain) = self.address.split_once('@').unwrap_or((&self.address, ""));
        Ok(format!("{local}+{what}@{domain}"))
    }

    /// Every address of the list, for telling messages apart.
    pub fn addresses(&self) -> Result<classify::Addresses> {
        Ok(classify::Addresses {
            list: self.address.clone(),
            request: self.request_address()?,
            key: self.key_address()?,
            owner: self.owner_address()?,
        })
    }

    /// The list's display name.
    pub fn name(&self) -> Result<String> {
        Ok(self
            .store
            .config_get("list.name")?
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| self.address.clone()))
    }

    pub(crate) fn keystore(&mut self) -> Result<&mut Box<dyn ListKeystore>> {
        if let Some(unlocking) = self.unlocking.take() {
            let keystore = unlocking.join().unwrap_or_else(|_| {
                Err(Error::crypto(
                    "unlock the list key",
                    "the thread unlocking it stopped",
                ))
            })?;
            if keystore.cert().fingerprint() != self.cert.fingerprint() {
                return Err(Error::BadKey(
                    "the key file holds a different key than the list's".into(),
                ));
            }
            self.unlocked(keystore);
        }
        self.keystore.as_mut().ok_or(Error::PassphraseRequired)
    }

    // ----- outbox -----

    /// Writes every queued copy to `dir` as an `.eml` named after its
    /// recipient, and returns the paths written.
    pub fn export_outbox(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        let mut written = Vec::new();
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let mut assembler = fanout::Assembler::new(&self.store);
        for copy in self.store.queued_copies()? {
            let n = seen.entry(copy.recipient.clone()).or_insert(0);
            *n += 1;
            let safe: String = copy
                .recipient
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "@.+-_".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let name = if *n == 1 {
                format!("{safe}.eml")
            } else {
                format!("{safe}.{n}.eml")
            };
            let path = dir.join(name);
            std::fs::write(&path, assembler.assemble(&copy)?)
                .map_err(|e| Error::io("write", &path, e))?;
            written.push(path);
        }
        Ok(written)
    }

    /// A configuration value, or its default.
    pub(crate) fn config_value(&self, key: &str) -> Result<String> {
        let default = settings::default_of(key);
        Ok(self
            .store
            .config_get(key)?
            .unwrap_or_else(|| default.to_owned()))
    }

    /// The list's folder.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The store's file, for a connection of the relay's own.
    pub(crate) fn db_path(&self) -> PathBuf {
        self.home.join(DB_FILE)
    }

    /// The list's clock.
    pub(crate) fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// Where the list reports what happens, if anywhere.
    pub(crate) fn event_sink(&self) -> Option<crate::events::EventSink> {
        self.events.clone()
    }

    /// Fails unless the list key is usable (unlocked, or on a bound card).
    pub fn keystore_ready(&mut self) -> Result<()> {
        self.keystore().map(|_| ())
    }

    /// The card's ident and PIN source, when the list key is on a card: the
    /// relay asks for the PIN with them before it locks the list.
    pub(crate) fn card_pins(&self) -> Option<(String, crate::crypto::card::PinSource)> {
        self.keystore.as_ref().and_then(|ks| ks.card_pins())
    }

    /// The UIDVALIDITY of INBOX the relay saw last, if any.
    pub(crate) fn known_uidvalidity(&self) -> Result<Option<u32>> {
        Ok(self
            .store
            .config_get("state.imap_uidvalidity")?
            .and_then(|v| v.parse().ok()))
    }

    /// Records where a claimed post was found again after INBOX's
    /// UIDVALIDITY changed (its UID now, or None when it is no longer
    /// there), and logs it.
    pub(crate) fn relocated(
        &mut self,
        id: i64,
        found: Option<u32>,
        old: u32,
        current: u32,
    ) -> Result<()> {
        let uid = found.unwrap_or(0);
        self.store.set_post_imap(id, "claimed", i64::from(uid))?;
        self.store.set_post_validity(id, current)?;
        let detail = match found {
            Some(uid) => format!(
                "INBOX's UIDVALIDITY changed from {old} to {current}: the claimed post was found again by its content, at UID {uid}"
            ),
            None => format!(
                "INBOX's UIDVALIDITY changed from {old} to {current}: the claimed post is no longer in INBOX; it is processed without being filed"
            ),
        };
        self.store
            .audit(self.clock.unix(), Some(id), "imap", &detail)
    }

    /// Records the mailbox's UIDVALIDITY; a change is logged.
    pub(crate) fn note_uidvalidity(&mut self, validity: u32) -> Result<()> {
        let known = self.store.config_get("state.imap_uidvalidity")?;
        if known.as_deref() == Some(validity.to_string().as_str()) {
            return Ok(());
        }
        if known.is_some() {
            self.store.audit(
                self.clock.unix(),
                None,
                "imap",
                &format!("UIDVALIDITY of INBOX changed to {validity}"),
            )?;
        }
        self.store
            .config_set("state.imap_uidvalidity", &validity.to_string())
    }

    pub(crate) fn now(&self) -> SystemTime {
        self.clock.now()
    }

    pub(crate) fn unix(&self) -> i64 {
        self.clock.unix()
    }
}

/// Whether `a` looks like an e-mail address.
pub(crate) fn valid_address(a: &str) -> bool {
    match a.split_once('@') {
        Some((l, d)) => {
            !l.is_empty()
                && d.contains('.')
                && !a
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || "<>\",;".contains(c))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unlocking_started_before_the_open_gives_the_lists_key_and_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let pw = Password::from("pw");
        let init = |name: &str| {
            List::init(
                &dir.path().join(name),
                &format!("{name}@example.org"),
                name,
                KeySource::Generate,
                &pw,
                Arc::new(crate::clock::SystemClock),
            )
            .unwrap()
        };
        drop(init("other"));
        drop(init("list"));
        let home = dir.path().join("list");
        let open = || List::open(&home, Arc::new(crate::clock::SystemClock)).unwrap();

        // Another list's key file, with its right passphrase: refused.
        let mut list = open();
        list.unlock_with(Unlocking::start(&dir.path().join("other"), pw.clone()));
        let e = list.keystore_ready().unwrap_err();
        assert!(matches!(e, Error::BadKey(_)), "{e}");
        assert!(!list.is_unlocked());

        // The list's own, with a wrong passphrase: refused as such.
        let mut list = open();
        list.unlock_with(Unlocking::start(&home, Password::from("wrong")));
        let e = list.keystore_ready().unwrap_err();
        assert!(matches!(e, Error::BadPassphrase), "{e}");

        // Started before the list is opened, and taken after: usable.
        let early = Unlocking::start(&home, pw.clone());
        let mut list = open();
        list.unlock_with(early);
        list.keystore_ready().unwrap();
        assert!(list.is_unlocked());
        assert_eq!(
            list.keystore().unwrap().cert().fingerprint(),
            list.cert().fingerprint()
        );
    }
}
