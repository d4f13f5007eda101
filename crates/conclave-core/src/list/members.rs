//! The subscribers: adding one (their key must speak for their address and
//! be usable, or the refusal says exactly why), removing one, listing them
//! with what is wrong with their keys, and the parsed certificates kept in
//! memory across posts.

use std::time::SystemTime;

use sequoia_openpgp::Cert;

use crate::crypto::certs;
use crate::error::{Error, Result};

use super::{valid_address, List, SubscriberInfo};

/// Which keys a message's signatures are checked against, besides every
/// subscriber's own: keys waiting for a request's proof, and a subscriber's
/// key as newer copies the message carried extend it (in memory only).
#[derive(Debug, Default, Clone)]
pub(crate) struct Candidates {
    /// Keys to consider besides the subscribers'.
    pub(crate) extra: Vec<Cert>,
    /// A subscriber's key to use in place of the stored one of the same
    /// fingerprint.
    pub(crate) replace: Option<Cert>,
}

/// The subscribers' keys as a signature names them: only the certificates
/// holding the issuer's key are read from the store and parsed.
pub(crate) struct Subscribed<'a> {
    pub(crate) store: &'a crate::store::Store,
    pub(crate) candidates: &'a Candidates,
}

impl crate::crypto::decrypt::CertLookup for Subscribed<'_> {
    fn lookup(&self, ids: &[sequoia_openpgp::KeyHandle]) -> Vec<Cert> {
        use sequoia_openpgp::{KeyHandle, KeyID};
        let key_ids: Vec<String> = ids
            .iter()
            .map(|id| match id {
                KeyHandle::KeyID(k) => k.to_hex(),
                KeyHandle::Fingerprint(f) => KeyID::from(f).to_hex(),
            })
            .collect();
        // A store that cannot be read finds no key: the signature is then
        // reported as made by an unknown key, never taken as good.
        let stored = self
            .store
            .subscribers_with_key_ids(&key_ids)
            .unwrap_or_default();
        let mut out: Vec<Cert> = Vec::new();
        for (_, bytes) in stored {
            let Ok(cert) = certs::parse_public_cert(&bytes) else {
                continue;
            };
            let cert = match &self.candidates.replace {
                Some(r) if r.fingerprint() == cert.fingerprint() => r.clone(),
                _ => cert,
            };
            if !out.iter().any(|c| c.fingerprint() == cert.fingerprint()) {
                out.push(cert);
            }
        }
        for cert in &self.candidates.extra {
            if !out.iter().any(|c| c.fingerprint() == cert.fingerprint()) {
                out.push(cert.clone());
            }
        }
        out.retain(|c| crate::crypto::decrypt::holds_any(c, ids));
        out
    }
}

impl List {
    /// Adds a subscriber with their public key, or takes a newer copy of
    /// the key they have (new expiry, new subkeys). A different key never
    /// replaces theirs here: that is [`List::replace_subscriber_key`].
    pub fn add_subscriber(&mut self, address: &str, key: &[u8]) -> Result<SubscriberInfo> {
        let (address, cert) = self.usable_key(address, key)?;
        let fpr = cert.fingerprint().to_hex();
        match self.subscriber_key(&address)? {
            Some(old) if old != fpr => {
                return Err(Error::InvalidInput(format!(
                    "{address} is subscribed with key {old}; a different key ({fpr}) replaces it only on purpose: `conclave subscriber add {address} --key FILE --replace`, or Replace key in the app"
                )))
            }
            Some(_) => self.store_key(&address, &cert, &format!("{address}: key {fpr} updated"))?,
            None => self.store_key(&address, &cert, &format!("{address} added with key {fpr}"))?,
        }
        Ok(subscriber_info(address, fpr, Ok(cert), self.clock.now()))
    }

    /// Replaces a subscriber's key `old` (its fingerprint, as the owner saw
    /// it) with `key`: an act of its own, audited with both fingerprints.
    /// Copies still queued for them, encrypted to the old key, are dropped.
    /// Returns the subscriber and how many copies were dropped.
    pub fn replace_subscriber_key(
        &mut self,
        address: &str,
        old: &str,
        key: &[u8],
    ) -> Result<(SubscriberInfo, usize)> {
        let (address, cert) = self.usable_key(address, key)?;
        let fpr = cert.fingerprint().to_hex();
        let old = old.trim().replace(' ', "").to_ascii_uppercase();
        match self.subscriber_key(&address)? {
            None => return Err(Error::NotFound(format!("{address} is not a subscriber"))),
            Some(current) if current != old => {
                return Err(Error::InvalidInput(format!(
                    "{address} is subscribed with key {current}, not {old}; nothing was changed"
                )))
            }
            Some(_) => {}
        }
        let dropped = if fpr == old {
            self.store_key(&address, &cert, &format!("{address}: key {fpr} updated"))?;
            0
        } else {
            let dropped = self.store.drop_queued_for(&address)?;
            self.store_key(
                &address,
                &cert,
                &format!(
                    "{address}: key {old} replaced with {fpr} by the owner; {dropped} copies queued for the old key dropped"
                ),
            )?;
            dropped
        };
        Ok((
            subscriber_info(address, fpr, Ok(cert), self.clock.now()),
            dropped,
        ))
    }

    /// Takes a newer copy of a subscriber's own key (`offered`, from
    /// `source`: "an Autocrypt header in post #12", "WKD", …): merged in
    /// only when it is the same key, keeping only what the key itself
    /// signed ([`crate::crypto::samekey`]). A revocation or an expiry is
    /// taken too, usable or not: the key is theirs. Returns what changed
    /// (audited with the source), or None when the copy brings nothing new.
    /// A different key is refused (that is a key change); so is an address
    /// that is not subscribed.
    pub fn update_subscriber_key(
        &mut self,
        address: &str,
        offered: Cert,
        source: &str,
    ) -> Result<Option<Vec<String>>> {
        let address = address.trim().to_ascii_lowercase();
        let Some((_, stored)) = self.store.subscriber(&address)? else {
            return Err(Error::NotFound(format!("{address} is not a subscriber")));
        };
        let current = certs::parse_public_cert(&stored)?;
        let Some(update) = crate::crypto::samekey::update(&current, offered, self.clock.now())?
        else {
            return Ok(None);
        };
        let fpr = current.fingerprint().to_hex();
        self.store_key(
            &address,
            &update.cert,
            &format!(
                "{address}: key {fpr} updated from {source}: {}",
                update.changes.join("; ")
            ),
        )?;
        Ok(Some(update.changes))
    }

    /// The fingerprint of a subscriber's key, if they are subscribed.
    pub(super) fn subscriber_key(&self, address: &str) -> Result<Option<String>> {
        Ok(self.store.subscriber(address)?.map(|(fpr, _)| fpr))
    }

    /// The address, normalised, and the key, if the key speaks for it and
    /// can be encrypted to; otherwise exactly why not.
    pub(super) fn usable_key(&self, address: &str, key: &[u8]) -> Result<(String, Cert)> {
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
        Ok((address, cert))
    }

    /// Stores a subscriber's key and audits it.
    pub(super) fn store_key(&mut self, address: &str, cert: &Cert, audit: &str) -> Result<()> {
        self.store_key_quiet(address, cert)?;
        self.store
            .audit(self.clock.unix(), None, "subscriber", audit)?;
        Ok(())
    }

    /// Stores a subscriber's key, as [`List::store_key`] does, without the
    /// audit line: for a caller that stores many keys (an import) and
    /// audits once.
    pub(super) fn store_key_quiet(&self, address: &str, cert: &Cert) -> Result<()> {
        let fpr = cert.fingerprint().to_hex();
        // What a fan-out needs of the key is derived now, once.
        let recipient = certs::recipient(cert, self.clock.now())?;
        // (Storing the key clears what was derived from the old one.)
        self.store
            .put_subscriber(address, &fpr, &certs::binary(cert)?, self.clock.unix())?;
        self.store
            .set_recipient(address, &row(recipient), &certs::key_ids(cert))?;
        if certs::encryption_keys(cert, self.clock.now()).is_ok() {
            self.store.clear_missed_posts(address)?;
        }
        Ok(())
    }

    /// Removes a subscriber. Copies still queued for them are dropped.
    pub fn remove_subscriber(&mut self, address: &str) -> Result<usize> {
        let address = address.trim().to_ascii_lowercase();
        if !self.store.remove_subscriber(&address)? {
            return Err(Error::NotFound(format!("{address} is not a subscriber")));
        }
        let dropped = self.store.drop_queued_for(&address)?;
        self.store.audit(
            self.clock.unix(),
            None,
            "subscriber",
            &format!("{address} removed; {dropped} copies still queued for them dropped"),
        )?;
        Ok(dropped)
    }

    /// Derives what a fan-out needs of every key stored before that was
    /// kept (migration 0013), once.
    pub(super) fn derive_missing(&mut self) -> Result<()> {
        if self.store.underived_subscribers()? == 0 {
            return Ok(());
        }
        let now = self.clock.now();
        let stored = self.store.subscribers()?;
        self.store.transaction(|store| {
            for s in stored {
                let (recipient, ids) = match certs::parse_public_cert(&s.cert) {
                    Ok(cert) => (row(certs::recipient(&cert, now)?), certs::key_ids(&cert)),
                    // Unreadable: no copy, and the fan-out says why.
                    Err(_) => (
                        crate::store::RecipientRow {
                            keys: Vec::new(),
                            seipd_v2: false,
                            usable_from: crate::clock::unix(now),
                            usable_until: None,
                        },
                        Vec::new(),
                    ),
                };
                store.set_recipient(&s.address, &recipient, &ids)?;
            }
            Ok(())
        })
    }
}

/// What the store keeps of what was derived from a key.
pub(crate) fn row(r: certs::Recipient) -> crate::store::RecipientRow {
    crate::store::RecipientRow {
        keys: r.keys,
        seipd_v2: r.seipd_v2,
        usable_from: r.usable_from,
        usable_until: r.usable_until,
    }
}

/// What the owner is shown of a subscriber and their key.
pub(crate) fn subscriber_info(
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
                delivery: Default::default(),
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
        delivery: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use sequoia_openpgp::cert::prelude::*;

    use super::*;
    use crate::clock::{Clock, ManualClock};

    const DAY: u64 = 86_400;

    fn list_at(dir: &std::path::Path, clock: Arc<ManualClock>) -> List {
        List::init(
            &dir.join("list"),
            "list@example.org",
            "Test",
            super::super::KeySource::Generate,
            &sequoia_openpgp::crypto::Password::from("pw"),
            clock as Arc<dyn Clock>,
        )
        .unwrap()
    }

    fn now_unix() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    /// Fans a fresh post out; returns the recipients that got a copy.
    fn fan_out(list: &mut List, n: u32) -> Vec<String> {
        let raw = format!("Subject: post {n}\r\n\r\nbody {n}\r\n").into_bytes();
        let (id, digest) = list.record_post(&raw, "a@example.org").unwrap();
        let now = list.clock.now();
        list.fan_out(id, &digest, &raw, now).unwrap();
        let mut r: Vec<String> = list
            .store
            .queued_copies()
            .unwrap()
            .into_iter()
            .filter(|c| c.post_id == id && !c.plain)
            .map(|c| c.recipient)
            .collect();
        r.sort();
        r
    }

    /// A fresh fan-out commits its copies as it makes them, and calls the
    /// queued hook each time: another connection sees the first copies
    /// before the last are made (a delivery pass beside it sends them
    /// meanwhile). Fanned out again (the process stopped before the post
    /// was marked processed), the post queues no copy twice.
    #[test]
    fn a_fan_out_commits_its_copies_as_it_goes_and_never_queues_one_twice() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::at_unix(now_unix()));
        let mut list = list_at(dir.path(), clock.clone());
        const N: usize = 100;
        for i in 0..N {
            let address = format!("s{i:03}@example.org");
            let (cert, _) = CertBuilder::general_purpose(Some(address.as_str()))
                .set_creation_time(clock.now() - Duration::from_secs(60))
                .generate()
                .unwrap();
            list.add_subscriber(&address, &certs::armored(&cert).unwrap())
                .unwrap();
        }
        let other = std::sync::Mutex::new(crate::store::Store::open(&list.db_path()).unwrap());
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let saw = seen.clone();
        list.set_queued_hook(Some(Arc::new(move || {
            let queued = other.lock().unwrap().queued_copies().unwrap().len();
            saw.lock().unwrap().push(queued);
        })));
        let raw = b"Subject: post\r\n\r\nbody\r\n".to_vec();
        let (id, digest) = list.record_post(&raw, "s000@example.org").unwrap();
        let now = list.clock.now();
        assert_eq!(list.fan_out(id, &digest, &raw, now).unwrap(), N);
        let seen = std::mem::take(&mut *seen.lock().unwrap());
        assert!(seen.len() >= 3, "{seen:?}");
        assert!(seen[0] > 0 && seen[0] < N, "{seen:?}");
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
        assert_eq!(seen.last(), Some(&N));
        // Again, as after a crash: nothing more is queued.
        assert_eq!(list.fan_out(id, &digest, &raw, now).unwrap(), 0);
        let queued = list.store.queued_copies().unwrap();
        let mut to: Vec<&str> = queued.iter().map(|c| c.recipient.as_str()).collect();
        to.sort_unstable();
        to.dedup();
        assert_eq!((queued.len(), to.len()), (N, N));
    }

    #[test]
    fn a_copy_goes_only_while_the_derived_keys_hold() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::at_unix(now_unix()));
        let mut list = list_at(dir.path(), clock.clone());
        let now = clock.now();
        // The encryption subkey expires in two days, the key itself never.
        let (short, _) = CertBuilder::new()
            .add_userid("a@example.org")
            .set_creation_time(now - Duration::from_secs(60))
            .add_signing_subkey()
            .add_subkey(
                sequoia_openpgp::types::KeyFlags::empty().set_transport_encryption(),
                Duration::from_secs(2 * DAY),
                None,
            )
            .generate()
            .unwrap();
        let (long, _) = CertBuilder::general_purpose(Some("b@example.org"))
            .set_creation_time(now - Duration::from_secs(60))
            .generate()
            .unwrap();
        list.add_subscriber("a@example.org", &certs::armored(&short).unwrap())
            .unwrap();
        list.add_subscriber("b@example.org", &certs::armored(&long).unwrap())
            .unwrap();
        let mut until = None;
        list.store
            .each_recipient(|r| {
                if r.address == "a@example.org" {
                    until = r.recipient.and_then(|r| r.usable_until);
                }
                Ok(())
            })
            .unwrap();
        assert_eq!(
            until,
            Some(crate::clock::unix(now - Duration::from_secs(60)) + 2 * DAY as i64)
        );
        assert_eq!(fan_out(&mut list, 1), ["a@example.org", "b@example.org"]);
        // Three days on, a's stored choice no longer holds: the key is read
        // again, it has no encryption key left, and a gets no copy (but a
        // notice that they missed it).
        clock.advance(3 * DAY);
        assert_eq!(fan_out(&mut list, 2), ["b@example.org"]);
        let log = list.store.audit_tail(20).unwrap();
        assert!(
            log.iter()
                .any(|e| e.detail.starts_with("no copy for a@example.org")),
            "{log:?}"
        );
    }

    #[test]
    fn keys_stored_before_their_state_was_kept_are_derived_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::at_unix(now_unix()));
        let mut list = list_at(dir.path(), clock.clone());
        let (cert, _) = CertBuilder::general_purpose(Some("a@example.org"))
            .set_creation_time(clock.now() - Duration::from_secs(60))
            .generate()
            .unwrap();
        list.add_subscriber("a@example.org", &certs::armored(&cert).unwrap())
            .unwrap();
        // As a store from before migration 0013 has it.
        list.store
            .conn()
            .execute_batch("DELETE FROM recipients; DELETE FROM subscriber_keys;")
            .unwrap();
        assert_eq!(list.store.underived_subscribers().unwrap(), 1);
        drop(list);
        let list = List::open(&dir.path().join("list"), clock.clone()).unwrap();
        assert_eq!(list.store.underived_subscribers().unwrap(), 0);
        // The signer's key is found by any of its key IDs again.
        let ids: Vec<String> = cert.keys().map(|k| k.key().keyid().to_hex()).collect();
        for id in ids {
            let found = list
                .store
                .subscribers_with_key_ids(std::slice::from_ref(&id))
                .unwrap();
            assert_eq!(found.len(), 1, "{id}");
            assert_eq!(found[0].0, "a@example.org");
        }
    }

    #[test]
    fn a_copy_row_keeps_its_recipient_packets_and_not_the_shared_headers() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::at_unix(now_unix()));
        let mut list = list_at(dir.path(), clock.clone());
        for a in ["a@example.org", "b@example.org"] {
            let (cert, _) = CertBuilder::general_purpose(Some(a))
                .set_creation_time(clock.now() - Duration::from_secs(60))
                .generate()
                .unwrap();
            list.add_subscriber(a, &certs::armored(&cert).unwrap())
                .unwrap();
        }
        fan_out(&mut list, 1);
        let copies = list.store.queued_copies().unwrap();
        assert_eq!(copies.len(), 2);
        let mut assembler = crate::list::fanout::Assembler::new(&list.store);
        for c in &copies {
            assert!(c.headers.is_empty(), "{}", c.headers);
            assert!(c.pkesks.len() < 200, "{} bytes", c.pkesks.len());
            let message = String::from_utf8(assembler.assemble(c).unwrap()).unwrap();
            assert!(message.contains(&format!("To: <{}>\r\n", c.recipient)));
            assert!(message.contains("List-Id: "), "{message}");
            assert!(message.contains("Autocrypt: addr=list@example.org"));
        }
        // The shared headers are kept once per body.
        let (_, shared) = list.store.body_and_headers(copies[0].body_id).unwrap();
        assert!(shared.contains("List-Post: <mailto:list@example.org>"));
        assert!(!shared.contains("To: "));
    }

    #[test]
    fn sent_copies_leave_the_outbox_after_the_retention_period() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::at_unix(now_unix()));
        let mut list = list_at(dir.path(), clock.clone());
        let (cert, _) = CertBuilder::general_purpose(Some("a@example.org"))
            .set_creation_time(clock.now() - Duration::from_secs(60))
            .generate()
            .unwrap();
        list.add_subscriber("a@example.org", &certs::armored(&cert).unwrap())
            .unwrap();
        fan_out(&mut list, 1);
        fan_out(&mut list, 2);
        let copies = list.store.queued_copies().unwrap();
        // One copy sent now, one still queued.
        list.store.mark_sent(copies[0].id, clock.unix()).unwrap();
        let count = |list: &List, table: &str| -> i64 {
            list.store
                .conn()
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(list.prune_sent_copies().unwrap(), 0);
        clock.advance(29 * DAY);
        assert_eq!(list.prune_sent_copies().unwrap(), 0);
        clock.advance(2 * DAY);
        assert_eq!(list.apply_retention().unwrap(), 0);
        assert_eq!(count(&list, "outbox"), 1, "the queued copy stays");
        // Only the queued copy's body is left.
        assert_eq!(count(&list, "bodies"), 1);
        assert!(list.store.audit_tail(5).unwrap().iter().any(|e| e
            .detail
            .starts_with("removed 1 copy sent more than 30 days ago")));
        // 0 keeps them for ever.
        list.store
            .config_set("store.sent_retention_days", "0")
            .unwrap();
        list.store.mark_sent(copies[1].id, clock.unix()).unwrap();
        clock.advance(400 * DAY);
        assert_eq!(list.prune_sent_copies().unwrap(), 0);
        assert_eq!(count(&list, "outbox"), 1);
    }
}
