//! The list: subscribers, policy, moderation, and `receive(bytes) -> Outcome`,
//! the seam through which every post enters.

pub mod card;
pub mod fanout;
pub mod key;
pub mod policy;
mod resign;

pub use resign::RESIGN_AFTER;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use openpgp::crypto::Password;
use openpgp::Cert;
use sequoia_openpgp as openpgp;

use crate::clock::Clock;
use crate::crypto::decrypt::{self, SigStatus};
use crate::crypto::keystore::{self, FileKeystore, ListKeystore};
use crate::crypto::{certs, seal};
use crate::error::{Error, Result};
use crate::mime::parse::{self, Content, Incoming, Payload, Protected};
use crate::store::{PostState, Store, StoredPost};

pub use crate::events::Outcome;
pub use policy::{Action, Policy, SignatureMode};

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
}

/// The subscribers with their parsed certificates. The certificates sit in
/// one vector so that verification can borrow them all without a copy.
#[derive(Debug, Default)]
pub(crate) struct Members {
    addresses: Vec<String>,
    certs: Vec<Cert>,
}

/// One subscriber, borrowed from [`Members`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Member<'a> {
    pub(crate) address: &'a str,
    pub(crate) cert: &'a Cert,
}

impl Members {
    /// Every subscriber.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Member<'_>> {
        self.addresses
            .iter()
            .zip(&self.certs)
            .map(|(address, cert)| Member { address, cert })
    }

    /// Every subscriber's certificate.
    pub(crate) fn certs(&self) -> &[Cert] {
        &self.certs
    }
}

/// One list, opened from its home directory.
pub struct List {
    home: PathBuf,
    store: Store,
    clock: Arc<dyn Clock>,
    cert: Cert,
    address: String,
    keystore: Option<Box<dyn ListKeystore>>,
    members: Option<Arc<Members>>,
    events: Option<crate::events::EventSink>,
    /// What was done to an out-of-date list key at init or unlock.
    renewal: Option<String>,
}

impl std::fmt::Debug for List {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("List")
            .field("home", &self.home)
            .field("address", &self.address)
            .finish()
    }
}

/// What `decide` concluded.
enum Decision {
    Distribute {
        signer: String,
        post: Box<Opened>,
    },
    Stop {
        state: PostState,
        reason: String,
        signer: String,
    },
}

/// A post opened and checked, ready to fan out.
pub(crate) struct Opened {
    pub(crate) incoming: Incoming,
    pub(crate) content: Content,
    pub(crate) protected: Protected,
    /// The raw decrypted bytes (for reconstructing encapsulated signatures).
    pub(crate) plaintext: Vec<u8>,
    pub(crate) sig_packets: Vec<openpgp::packet::Signature>,
    /// The verified author: (address, fingerprint), if signed by the sender.
    pub(crate) author: Option<(String, String)>,
    /// Whether the text is cleartext-signed (inline).
    pub(crate) cleartext_signed: bool,
    pub(crate) digest: String,
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
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o700));
        }
        if home.join(DB_FILE).exists() || home.join(keystore::KEY_FILE).exists() {
            return Err(Error::AlreadyInitialised(home.to_owned()));
        }
        let now = clock.now();
        // The key must open with this passphrase before anything is written.
        let (cert, ks, renewal) = match key {
            KeySource::Generate => {
                let cert = keystore::generate(&address, passphrase, now)?;
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
            members: None,
            events: None,
            renewal,
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
        let store = Store::open(&db)?;
        let (_, cert, _) = store
            .list_key()?
            .ok_or_else(|| Error::NotInitialised(home.to_owned()))?;
        let cert = certs::parse_public_cert(&cert)?;
        let address = store.config_get("list.address")?.unwrap_or_default();
        Ok(List {
            home: home.to_owned(),
            store,
            clock,
            cert,
            address,
            keystore: None,
            members: None,
            events: None,
            renewal: None,
        })
    }

    /// Unlocks the file key with a passphrase. A list key whose
    /// self-signatures are out of date is certified again now, once.
    pub fn unlock(&mut self, passphrase: &Password) -> Result<()> {
        self.keystore = Some(Box::new(FileKeystore::open(&self.home, passphrase)?));
        // A key that cannot be renewed (revoked, say) still unlocks: what it
        // cannot do is reported when it is used.
        self.renewal = self.renew_key().ok().flatten();
        Ok(())
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
        policy::validate(key, value)?;
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
        let mut out: BTreeMap<String, String> = policy::OPTIONS
            .iter()
            .map(|o| (o.0.to_owned(), o.1.to_owned()))
            .collect();
        out.insert("list.request_address".into(), self.request_address()?);
        for (k, v) in self.store.config_all()? {
            out.insert(k, v);
        }
        Ok(out)
    }

    /// The address for list commands (help, unsubscribe).
    pub fn request_address(&self) -> Result<String> {
        if let Some(a) = self
            .store
            .config_get("list.request_address")?
            .filter(|a| !a.is_empty())
        {
            return Ok(a);
        }
        let (local, domain) = self.address.split_once('@').unwrap_or((&self.address, ""));
        Ok(format!("{local}+request@{domain}"))
    }

    /// The list's display name.
    pub fn name(&self) -> Result<String> {
        Ok(self
            .store
            .config_get("list.name")?
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| self.address.clone()))
    }

    // ----- subscribers -----

    /// Adds (or updates) a subscriber with their public key.
    pub fn add_subscriber(&mut self, address: &str, key: &[u8]) -> Result<SubscriberInfo> {
        let address = address.trim().to_ascii_lowercase();
        if !valid_address(&address) {
            return Err(Error::InvalidInput(format!(
                "{address:?} is not an e-mail address"
            )));
        }
        let cert = certs::parse_public_cert(key)?;
        let now = self.clock.now();
        if !certs::speaks_for(&cert, &address, now) {
            return Err(Error::BadKey(format!(
                "the key {} cannot be used for {address}: {}",
                cert.fingerprint(),
                certs::refusal(&cert, &address, now)
            )));
        }
        certs::encryption_keys(&cert, now)?;
        let fpr = cert.fingerprint().to_hex();
        self.store
            .put_subscriber(&address, &fpr, &certs::binary(&cert)?, self.clock.unix())?;
        self.store.audit(
            self.clock.unix(),
            None,
            "subscriber",
            &format!("{address} added with key {fpr}"),
        )?;
        self.members = None;
        Ok(subscriber_info(address, fpr, Ok(cert), now))
    }

    /// Removes a subscriber.
    pub fn remove_subscriber(&mut self, address: &str) -> Result<()> {
        let address = address.trim().to_ascii_lowercase();
        if !self.store.remove_subscriber(&address)? {
            return Err(Error::NotFound(format!("{address} is not a subscriber")));
        }
        self.members = None;
        self.store.audit(
            self.clock.unix(),
            None,
            "subscriber",
            &format!("{address} removed"),
        )
    }

    /// Every subscriber, with a warning when their key cannot be used.
    pub fn subscribers(&self) -> Result<Vec<SubscriberInfo>> {
        let now = self.clock.now();
        let mut out = Vec::new();
        for s in self.store.subscribers()? {
            out.push(subscriber_info(
                s.address,
                s.fingerprint,
                certs::parse_public_cert(&s.cert),
                now,
            ));
        }
        Ok(out)
    }

    /// The subscribers with parsed certificates, kept in memory across posts.
    pub(crate) fn members(&mut self) -> Result<Arc<Members>> {
        if let Some(m) = &self.members {
            return Ok(m.clone());
        }
        let mut members = Members::default();
        for s in self.store.subscribers()? {
            if let Ok(cert) = certs::parse_public_cert(&s.cert) {
                members.addresses.push(s.address);
                members.certs.push(cert);
            }
        }
        let members = Arc::new(members);
        self.members = Some(members.clone());
        Ok(members)
    }

    pub(crate) fn keystore(&mut self) -> Result<&mut Box<dyn ListKeystore>> {
        self.keystore.as_mut().ok_or(Error::PassphraseRequired)
    }

    // ----- intake -----

    /// Takes one message as it arrived and decides what becomes of it. The
    /// message is recorded (as ciphertext) before anything else happens, and
    /// every outcome is logged with its reason.
    pub fn receive(&mut self, raw: &[u8]) -> Result<Outcome> {
        self.keystore()?;
        let sender = parse::incoming(raw)
            .ok()
            .and_then(|i| i.from)
            .unwrap_or_default();
        let (post_id, _) = self.record_post(raw, &sender)?;
        self.process_post(post_id, raw)
    }

    /// Decides what becomes of a recorded post and logs it.
    pub(crate) fn process_post(&mut self, post_id: i64, raw: &[u8]) -> Result<Outcome> {
        let ts = self.clock.unix();
        let incoming = parse::incoming(raw);
        let sender = incoming
            .as_ref()
            .ok()
            .and_then(|i| i.from.clone())
            .unwrap_or_default();
        let from = if sender.is_empty() {
            "an unknown sender".to_string()
        } else {
            sender
        };
        self.store.audit(
            ts,
            Some(post_id),
            "received",
            &format!("{} bytes from {from}", raw.len()),
        )?;
        let decision = self.decide(post_id, raw, incoming, false);
        self.conclude(post_id, decision)
    }

    /// Records a message as it arrived, sealed to the list key, and returns
    /// its id and digest. Even an encrypted post carries clear outer headers
    /// (a Subject the client did not protect, say), so the exact bytes are
    /// kept, but never in clear.
    pub fn record_post(&mut self, raw: &[u8], sender: &str) -> Result<(i64, String)> {
        let sealed = seal::encrypt_to(&self.cert, raw, self.clock.now())?;
        let digest = crate::hex::sha256_hex(raw);
        let id = self.store.insert_sealed_post(
            &sealed,
            raw.len(),
            &digest,
            sender,
            self.clock.unix(),
        )?;
        Ok((id, digest))
    }

    fn conclude(&mut self, post_id: i64, decision: Result<Decision>) -> Result<Outcome> {
        let ts = self.clock.unix();
        let decision = match decision {
            Ok(d) => d,
            Err(
                e @ (Error::PassphraseRequired
                | Error::Store { .. }
                | Error::Io { .. }
                | Error::Card(_)
                | Error::Pin(_)),
            ) => return Err(e),
            Err(e) => Decision::Stop {
                state: PostState::Rejected,
                reason: e.to_string(),
                signer: String::new(),
            },
        };
        let outcome = match decision {
            Decision::Distribute { signer, post } => {
                let copies = self.distribute(post_id, &post)?;
                self.store
                    .set_post_state(post_id, PostState::Distributed, "", &signer, ts)?;
                Outcome::Distributed {
                    post: post_id,
                    copies,
                }
            }
            Decision::Stop {
                state,
                reason,
                signer,
            } => {
                self.store
                    .set_post_state(post_id, state, &reason, &signer, ts)?;
                match state {
                    PostState::Held => Outcome::Held {
                        post: post_id,
                        reason,
                    },
                    PostState::Discarded => Outcome::Discarded {
                        post: post_id,
                        reason,
                    },
                    _ => Outcome::Rejected {
                        post: post_id,
                        reason,
                    },
                }
            }
        };
        let (event, detail) = match &outcome {
            Outcome::Distributed { copies, .. } => {
                ("distributed", format!("{copies} copies queued"))
            }
            Outcome::Held { reason, .. } => ("held", reason.clone()),
            Outcome::Rejected { reason, .. } => ("rejected", reason.clone()),
            Outcome::Discarded { reason, .. } => ("discarded", reason.clone()),
        };
        self.store.audit(ts, Some(post_id), event, &detail)?;
        self.emit(&crate::events::Event::Post(outcome.clone()));
        Ok(outcome)
    }

    /// Opens and checks a post, and applies the policy unless the owner
    /// already approved it.
    fn decide(
        &mut self,
        post_id: i64,
        raw: &[u8],
        incoming: std::result::Result<Incoming, String>,
        approved: bool,
    ) -> Result<Decision> {
        let policy = Policy::load(&self.store)?;
        let stop = |state: PostState, reason: String| {
            Ok(Decision::Stop {
                state,
                reason,
                signer: String::new(),
            })
        };
        if !approved && raw.len() > policy.max_size && policy.max_size_action != Action::Distribute
        {
            let reason = format!(
                "too large: {} KiB, the limit is {} KiB",
                raw.len().div_ceil(1024),
                policy.max_size / 1024
            );
            return stop(action_state(policy.max_size_action), reason);
        }
        let incoming = match incoming {
            Ok(i) => i,
            Err(e) => return stop(PostState::Rejected, format!("cannot read the message: {e}")),
        };
        let from = incoming.from.clone().unwrap_or_default();
        let members = self.members()?;
        let certs = members.certs();
        let now = self.clock.now();

        let (plaintext, pgp_mime, inline_sigs, sig_packets) = match &incoming.payload {
            Payload::Clear => {
                if !approved && policy.encrypted_only != Action::Distribute {
                    return stop(
                        action_state(policy.encrypted_only),
                        "not encrypted: this list accepts encrypted posts only".into(),
                    );
                }
                (
                    crate::mime::split_head(raw).1.to_vec(),
                    true,
                    Vec::new(),
                    Vec::new(),
                )
            }
            Payload::PgpMime(data) | Payload::Inline(data) => {
                let decryptors = self.keystore()?.decryptors()?;
                match decrypt::open(data, decryptors, certs, now, policy.plaintext_limit()) {
                    Ok(o) => (
                        o.plaintext,
                        matches!(incoming.payload, Payload::PgpMime(_)),
                        o.sigs,
                        o.sig_packets,
                    ),
                    Err(e) => {
                        // A card that was pulled is not the post's fault.
                        if let Some(failure) = self.keystore()?.take_failure() {
                            return Err(failure);
                        }
                        return stop(PostState::Rejected, e.to_string());
                    }
                }
            }
        };
        // For a clear post, the whole message is the entity.
        let entity_source: Vec<u8> = if matches!(incoming.payload, Payload::Clear) {
            raw.to_vec()
        } else {
            plaintext.clone()
        };
        let (content, protected) = parse::content(&entity_source, pgp_mime);

        let mut sigs = inline_sigs;
        let mut cleartext_signed = false;
        match &content {
            Content::MimeSigned {
                signed, signature, ..
            } => sigs.extend(decrypt::verify_detached(signed, signature, certs, now).0),
            Content::Text { text } if text.starts_with(b"-----BEGIN PGP SIGNED MESSAGE-----") => {
                cleartext_signed = true;
                sigs.extend(decrypt::verify_cleartext(text, certs, now));
            }
            _ => {}
        }

        if let Some(inner_from) = &protected.from {
            if !from.is_empty() && *inner_from != from {
                return stop(
                    PostState::Rejected,
                    format!("the From inside the encryption ({inner_from}) differs from the outer From ({from})"),
                );
            }
        }

        // Who signed it?
        let mut author: Option<(String, String)> = None;
        let mut replay_digest = None;
        let mut notes = Vec::new();
        for s in &sigs {
            match s {
                SigStatus::Good {
                    cert,
                    replay_digest: d,
                } => {
                    let owners: Vec<&str> = members
                        .iter()
                        .filter(|m| m.cert.fingerprint() == *cert)
                        .map(|m| m.address)
                        .collect();
                    if owners.contains(&from.as_str()) {
                        author = Some((from.clone(), cert.to_hex()));
                        replay_digest = Some(d.clone());
                    } else {
                        let who = owners.first().copied().unwrap_or("a non-subscriber");
                        return stop(
                            PostState::Rejected,
                            format!(
                                "signed by {who} (key {cert}), but From: says {}",
                                if from.is_empty() { "nobody" } else { &from }
                            ),
                        );
                    }
                }
                SigStatus::Bad { issuer, error } => {
                    return stop(
                        PostState::Rejected,
                        format!("bad signature by key {issuer}: {error}"),
                    );
                }
                SigStatus::UnknownKey { issuer } => {
                    notes.push(format!("signed by unknown key {issuer}"))
                }
            }
        }
        let signer = author.as_ref().map(|a| a.1.clone()).unwrap_or_default();

        if let Some(d) = &replay_digest {
            if let Some((first, at)) = self.store.replay_seen(d)? {
                if first != post_id {
                    return Ok(Decision::Stop {
                        state: PostState::Rejected,
                        reason: format!(
                            "replayed: the same signed post arrived before as post #{first} ({})",
                            crate::clock::rfc5322(
                                std::time::UNIX_EPOCH
                                    + std::time::Duration::from_secs(
                                        u64::try_from(at).unwrap_or(0)
                                    )
                            )
                        ),
                        signer,
                    });
                }
            }
            self.store.replay_remember(d, post_id, self.clock.unix())?;
        }

        if !approved {
            let mut violations: Vec<(Action, String)> = Vec::new();
            let is_member = members.iter().any(|m| m.address == from);
            if !is_member && policy.subscribers_only != Action::Distribute {
                let who = if from.is_empty() {
                    "the sender".to_string()
                } else {
                    from.clone()
                };
                violations.push((
                    policy.subscribers_only,
                    format!("{who} is not a subscriber"),
                ));
            }
            if author.is_none() && policy.signed_only != Action::Distribute {
                let mut reason =
                    "not signed by the sender's key: this list accepts signed posts only"
                        .to_string();
                if !notes.is_empty() {
                    reason.push_str(&format!(" ({})", notes.join("; ")));
                }
                violations.push((policy.signed_only, reason));
            }
            if let Some(worst) = violations.iter().map(|v| v.0).max() {
                let reason = violations
                    .iter()
                    .filter(|v| v.0 == worst)
                    .map(|v| v.1.clone())
                    .collect::<Vec<_>>()
                    .join("; ");
                return Ok(Decision::Stop {
                    state: action_state(worst),
                    reason,
                    signer,
                });
            }
        }

        let digest = crate::hex::sha256_hex(raw);
        Ok(Decision::Distribute {
            signer,
            post: Box::new(Opened {
                incoming,
                content,
                protected,
                plaintext,
                sig_packets,
                author,
                cleartext_signed,
                digest,
            }),
        })
    }

    // ----- moderation -----

    /// The posts waiting for the owner.
    pub fn held(&self) -> Result<Vec<StoredPost>> {
        self.store.posts_in_state(PostState::Held)
    }

    fn held_post(&self, id: i64) -> Result<StoredPost> {
        match self.store.post(id)? {
            Some(p) if p.state == PostState::Held => Ok(p),
            Some(p) => Err(Error::NotFound(format!(
                "post #{id} is not held (it was {})",
                p.state.as_str()
            ))),
            None => Err(Error::NotFound(format!("no post #{id}"))),
        }
    }

    /// The message as it arrived, unsealing it if it was stored sealed.
    pub(crate) fn original(&mut self, post: &StoredPost) -> Result<Vec<u8>> {
        if !post.sealed {
            return Ok(post.raw.clone());
        }
        let decryptors = self.keystore()?.decryptors()?;
        let limit = usize::try_from(post.size)
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        match decrypt::open(&post.raw, decryptors, &[], self.clock.now(), limit) {
            Ok(o) => Ok(o.plaintext),
            Err(e) => Err(self
                .keystore()?
                .take_failure()
                .unwrap_or_else(|| Error::crypto("unseal the stored post", e))),
        }
    }

    /// Opens a held post in memory for the owner to read.
    pub fn held_show(&mut self, id: i64) -> Result<HeldView> {
        let post = self.held_post(id)?;
        let raw = self.original(&post)?;
        let incoming = parse::incoming(&raw);
        let subject_outer = incoming
            .as_ref()
            .ok()
            .and_then(|i| i.subject.clone())
            .unwrap_or_default();
        let mut keys = Vec::new();
        let (text, subject, signature) = match self.decide(post.id, &raw, incoming, true)? {
            Decision::Distribute {
                post: opened,
                signer,
            } => {
                let subject = opened
                    .protected
                    .subject
                    .clone()
                    .filter(|s| s != "...")
                    .unwrap_or(subject_outer);
                let text = match &opened.content {
                    Content::MimeSigned { signed, .. } => parse::first_text(signed),
                    Content::Mime { entity } => parse::first_text(entity),
                    Content::Text { text } => Some(String::from_utf8_lossy(text).into_owned()),
                }
                .unwrap_or_default();
                if let Content::MimeSigned { signed: entity, .. } | Content::Mime { entity } =
                    &opened.content
                {
                    let now = self.clock.now();
                    for bytes in parse::attached_keys(entity) {
                        let Ok(cert) = certs::parse_public_cert(&bytes) else {
                            continue;
                        };
                        keys.push(AttachedKey {
                            fingerprint: cert.fingerprint().to_hex(),
                            addresses: certs::addresses(&cert, now),
                            armored: String::from_utf8_lossy(&certs::armored(&cert)?).into_owned(),
                        });
                    }
                }
                let signature = if signer.is_empty() {
                    "not signed by the sender".into()
                } else {
                    format!("signed by {} (key {signer})", post.sender)
                };
                (text, subject, signature)
            }
            Decision::Stop { reason, .. } => (
                String::new(),
                subject_outer,
                format!("cannot be opened: {reason}"),
            ),
        };
        Ok(HeldView {
            id,
            sender: post.sender,
            reason: post.reason,
            subject,
            signature,
            text,
            keys,
        })
    }

    /// Approves a held post: it is distributed whatever the policy said.
    pub fn held_approve(&mut self, id: i64) -> Result<Outcome> {
        let post = self.held_post(id)?;
        let raw = self.original(&post)?;
        let incoming = parse::incoming(&raw);
        self.store.audit(
            self.clock.unix(),
            Some(id),
            "approved",
            "approved by the owner",
        )?;
        let decision = self.decide(id, &raw, incoming, true);
        self.conclude(id, decision)
    }

    /// Rejects a held post with the owner's reason.
    pub fn held_reject(&mut self, id: i64, reason: &str) -> Result<Outcome> {
        self.held_post(id)?;
        let reason = format!(
            "rejected by the owner: {}",
            crate::mime::build::clean(reason)
        );
        self.conclude(
            id,
            Ok(Decision::Stop {
                state: PostState::Rejected,
                reason,
                signer: String::new(),
            }),
        )
    }

    /// Discards a held post (its ciphertext stays in the store).
    pub fn held_discard(&mut self, id: i64) -> Result<Outcome> {
        self.held_post(id)?;
        let reason = "discarded by the owner".to_string();
        self.conclude(
            id,
            Ok(Decision::Stop {
                state: PostState::Discarded,
                reason,
                signer: String::new(),
            }),
        )
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
        let default = policy::OPTIONS
            .iter()
            .find(|o| o.0 == key)
            .map(|o| o.1)
            .unwrap_or("");
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
    pub(crate) fn keystore_ready(&mut self) -> Result<()> {
        self.keystore().map(|_| ())
    }

    /// The card's ident and PIN source, when the list key is on a card: the
    /// relay asks for the PIN with them before it locks the list.
    pub(crate) fn card_pins(&self) -> Option<(String, crate::crypto::card::PinSource)> {
        self.keystore.as_ref().and_then(|ks| ks.card_pins())
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

fn action_state(a: Action) -> PostState {
    match a {
        Action::Hold => PostState::Held,
        Action::Discard => PostState::Discarded,
        Action::Reject => PostState::Rejected,
        Action::Distribute => PostState::Received,
    }
}

fn valid_address(a: &str) -> bool {
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

/// What the owner is shown of a subscriber and their key.
fn subscriber_info(
    address: String,
    fingerprint: String,
    cert: Result<sequoia_openpgp::Cert>,
    now: SystemTime,
) -> SubscriberInfo {
    use sequoia_openpgp::types::PublicKeyAlgorithm as Algo;
    let soon = now + std::time::Duration::from_secs(30 * 24 * 3600);
    let cert = match cert {
        Ok(cert) => cert,
        Err(e) => {
            return SubscriberInfo {
                address,
                fingerprint,
                warning: Some(e.to_string()),
                algorithm: String::new(),
                expires: None,
                addresses: Vec::new(),
            }
        }
    };
    let warning = match certs::encryption_keys(&cert, now) {
        Err(e) => Some(e.to_string()),
        Ok(_) if certs::encryption_keys(&cert, soon).is_err() => {
            Some("the key expires within 30 days".into())
        }
        Ok(_) => None,
    };
    let key = cert.primary_key().key();
    let algorithm = match key.mpis().bits() {
        Some(bits) if !matches!(key.pk_algo(), Algo::EdDSA | Algo::Ed25519 | Algo::Ed448) => {
            format!("{} {bits}", key.pk_algo())
        }
        _ => key.pk_algo().to_string(),
    };
    let expires = cert
        .with_policy(crate::crypto::policy(), now)
        .ok()
        .and_then(|vc| vc.primary_key().key_expiration_time());
    let addresses = certs::addresses(&cert, now);
    SubscriberInfo {
        address,
        fingerprint,
        warning,
        algorithm,
        expires,
        addresses,
    }
}
