//! Looking after the list key: extending its expiry and making an encrypted
//! backup of it.

use std::path::Path;
use std::time::SystemTime;

use openpgp::parse::Parse;
use sequoia_openpgp as openpgp;

use crate::crypto::{certs, keystore, policy};
use crate::error::{Error, Result};

use super::List;

impl List {
    /// Moves the list key's expiry (its primary key and every subkey) to
    /// `until`, signing the new expiry with the list key itself, on a card
    /// too. The list key must be unlocked. Subscribers' clients learn the new
    /// date from the public key: send it to them again (`key export`).
    pub fn extend_key(&mut self, until: SystemTime) -> Result<()> {
        let now = self.clock.now();
        if until <= now {
            return Err(Error::InvalidInput(
                "the new expiry must lie in the future".into(),
            ));
        }
        let cert = self.cert.clone();
        let primary = cert.fingerprint();
        let mut signer = self.keystore()?.signer()?;
        if signer.public().fingerprint() != primary {
            return Err(Error::BadKey(
                "the list's signing key is a subkey, so the expiry cannot be moved here; use the tool that made the key".into(),
            ));
        }
        let valid = cert
            .with_policy(policy(), now)
            .map_err(|e| Error::BadKey(format!("the list key is not valid now: {e}")))?;
        let mut sigs: Vec<openpgp::Packet> = valid
            .primary_key()
            .set_expiration_time(signer.as_mut(), Some(until))
            .map_err(|e| self.signing_failed("sign the new expiry", e))?
            .into_iter()
            .map(Into::into)
            .collect();
        for ka in valid.keys().subkeys() {
            let sig = ka
                .set_expiration_time(signer.as_mut(), None, Some(until))
                .map_err(|e| self.signing_failed("sign the new expiry", e))?;
            sigs.extend(sig.into_iter().map(openpgp::Packet::from));
        }
        drop(signer);
        let (cert, _) = cert
            .insert_packets(sigs)
            .map_err(|e| Error::crypto("update the list key", e))?;
        // The key file (secret parts still under the passphrase) takes the
        // new signatures too, so a backup or a later unlock has them.
        let file = self.home.join(keystore::KEY_FILE);
        if file.exists() {
            let bytes = std::fs::read(&file).map_err(|e| Error::io("read", &file, e))?;
            let tsk = openpgp::Cert::from_bytes(&bytes)
                .map_err(|e| Error::BadKey(format!("cannot read {}: {e}", file.display())))?
                .merge_public(cert.clone())
                .map_err(|e| Error::crypto("update the list key", e))?;
            keystore::write_key_file(&self.home, &tsk)?;
        }
        let holder = self
            .store
            .list_key()?
            .map(|(_, _, ks)| ks)
            .unwrap_or_else(|| "file".into());
        self.store
            .set_list_key(&primary.to_hex(), &certs::binary(&cert)?, &holder)?;
        self.keystore()?.update_cert(&cert)?;
        self.cert = cert;
        self.store.audit(
            self.clock.unix(),
            None,
            "key",
            &format!(
                "list key {} now expires {}",
                primary.to_hex(),
                crate::clock::rfc5322(until)
            ),
        )
    }

    /// [`List::extend_key`] to `years` years (1 to 10) and a day from now,
    /// as the CLI and the app offer it.
    pub fn extend_key_by_years(&mut self, years: u64) -> Result<()> {
        if !(1..=10).contains(&years) {
            return Err(Error::InvalidInput("choose 1 to 10 years".into()));
        }
        let days = years * 365 + 1;
        self.extend_key(self.clock.now() + std::time::Duration::from_secs(days * 24 * 3600))
    }

    /// A card's own failure (a wrong PIN, a pulled card) explains a failed
    /// signature better than Sequoia's error.
    fn signing_failed(&mut self, what: &'static str, e: openpgp::anyhow::Error) -> Error {
        match self.keystore().ok().and_then(|ks| ks.take_failure()) {
            Some(failure) => failure,
            None => Error::crypto(what, e),
        }
    }

    /// Writes an encrypted backup of the list's secret key to `to`: the
    /// key file as it is kept, its secret parts encrypted with the list's
    /// passphrase, armored, mode 0600. A key on a card has no backup to
    /// make: it cannot leave the card.
    pub fn backup_key(&self, to: &Path) -> Result<()> {
        if self.card_ident()?.is_some() {
            return Err(Error::InvalidInput(
                "the list key lives on an OpenPGP card and cannot leave it; there is no key file to back up".into(),
            ));
        }
        let file = self.home.join(keystore::KEY_FILE);
        let bytes = std::fs::read(&file).map_err(|e| Error::io("read", &file, e))?;
        let cert = openpgp::Cert::from_bytes(&bytes)
            .map_err(|e| Error::BadKey(format!("cannot read {}: {e}", file.display())))?;
        if cert
            .keys()
            .secret()
            .any(|k| !k.key().secret().is_encrypted())
        {
            return Err(Error::BadKey(
                "the key file holds a secret key in clear; refusing to copy it".into(),
            ));
        }
        if to.exists() {
            return Err(Error::InvalidInput(format!(
                "{} exists already; choose a new file name",
                to.display()
            )));
        }
        keystore::write_private(to, &bytes)?;
        self.store.audit(
            self.clock.unix(),
            None,
            "key",
            &format!(
                "encrypted backup of the list key written to {}",
                to.display()
            ),
        )
    }
}
