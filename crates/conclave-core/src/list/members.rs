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
