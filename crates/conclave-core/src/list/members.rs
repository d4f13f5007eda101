//! The subscribers: adding one (their key must speak for their address and
//! be usable, or the refusal says exactly why), removing one, listing them
//! with what is wrong with their keys, and the parsed certificates kept in
//! memory across posts.

use std::sync::Arc;
use std::time::SystemTime;

use sequoia_openpgp::Cert;

use crate::crypto::certs;
use crate::error::{Error, Result};

use super::{valid_address, List, SubscriberInfo};

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
        self.members = None;
        Ok(())
    }

    /// Stores a subscriber's key, as [`List::store_key`] does, without the
    /// audit line and without dropping the subscribers kept in memory: for
    /// a caller that stores many keys (an import), audits once and drops
    /// the cached members itself.
    pub(super) fn store_key_quiet(&self, address: &str, cert: &Cert) -> Result<()> {
        let fpr = cert.fingerprint().to_hex();
        self.store
            .put_subscriber(address, &fpr, &certs::binary(cert)?, self.clock.unix())?;
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
        self.members = None;
        let dropped = self.store.drop_queued_for(&address)?;
        self.store.audit(
            self.clock.unix(),
            None,
            "subscriber",
            &format!("{address} removed; {dropped} copies still queued for them dropped"),
        )?;
        Ok(dropped)
    }

    /// Every subscriber, with a warning when their key cannot be used.
    pub fn subscribers(&self) -> Result<Vec<SubscriberInfo>> {
        let now = self.clock.now();
        let mut health = self.store.delivery_health_all()?.into_iter();
        let mut out = Vec::new();
        for s in self.store.subscribers()? {
            let mut info = subscriber_info(
                s.address,
                s.fingerprint,
                certs::parse_public_cert(&s.cert),
                now,
            );
            // Both are sorted by address.
            if let Some(h) = health.by_ref().find(|h| h.address == info.address) {
                info.delivery = h;
            }
            out.push(info);
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
