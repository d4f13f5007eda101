//! The list key on an OpenPGP card: binding the list to a card, moving the
//! file key onto one, or generating the list key on one.
//!
//! The binding is recorded with the list certificate as
//! `card:IDENT:SIGNING-FPR:DECRYPTION-FPR`.

use crate::crypto::card::{self, CardKeystore, PinSource};
use crate::crypto::certs;
use crate::crypto::keystore::{self, FileKeystore};
use crate::error::{Error, Result};
use crate::Password;

use super::List;

/// A card binding as recorded in the store.
struct Binding {
    ident: String,
    signing: String,
    decryption: String,
}

impl Binding {
    fn parse(keystore: &str) -> Option<Binding> {
        let rest = keystore.strip_prefix("card:")?;
        let mut parts = rest.rsplitn(3, ':');
        let decryption = parts.next()?.to_string();
        let signing = parts.next()?.to_string();
        let ident = parts.next()?.to_string();
        Some(Binding {
            ident,
            signing,
            decryption,
        })
    }
}

impl List {
    /// The ident of the card that holds the list key, if a card does.
    pub fn card_ident(&self) -> Result<Option<String>> {
        Ok(self.binding()?.map(|b| b.ident))
    }

    fn binding(&self) -> Result<Option<Binding>> {
        Ok(self
            .store
            .list_key()?
            .and_then(|(_, _, ks)| Binding::parse(&ks)))
    }

    /// Uses the list's card for the list key; `pins` answers its PIN
    /// requests. The card is only touched when a post needs it.
    pub fn unlock_card(&mut self, pins: PinSource) -> Result<()> {
        let b = self.binding()?.ok_or_else(|| {
            Error::InvalidInput(
                "the list key is not on a card: unlock it with its passphrase".into(),
            )
        })?;
        let ks = CardKeystore::bound(
            &b.ident,
            &self.cert,
            Some(&b.signing),
            Some(&b.decryption),
            pins,
        )?;
        self.set_keystore(Box::new(ks))
    }

    /// Binds the list to the card `ident`, after checking that the card
    /// holds the list's signing and decryption keys. An old list key
    /// (SHA-1 self-signatures) is certified again through the card at once
    /// ([`List::key_renewal`] says so).
    pub fn card_use(&mut self, ident: &str, pins: PinSource) -> Result<()> {
        let ks = CardKeystore::open(ident, &self.cert, pins)?;
        self.bind(&ks, "bound to")?;
        self.set_keystore(Box::new(ks))?;
        self.renewal = self.renew_key()?;
        Ok(())
    }

    fn bind(&mut self, ks: &CardKeystore, verb: &str) -> Result<()> {
        let (sig, dec) = ks.slots();
        self.store.set_list_key(
            &self.cert.fingerprint().to_hex(),
            &certs::binary(&self.cert)?,
            &format!("card:{}:{sig}:{dec}", ks.ident()),
        )?;
        self.store.audit(
            self.clock.unix(),
            None,
            "card",
            &format!("list key {verb} the card {}", ks.ident()),
        )
    }

    /// Moves the list's file key onto the card `ident` (admin PIN from
    /// `pins`), then binds the list to the card. Unless `keep_file`, the key
    /// file is then deleted, so the secret key lives on the card alone.
    pub fn card_import(
        &mut self,
        ident: &str,
        passphrase: &Password,
        pins: PinSource,
        keep_file: bool,
    ) -> Result<()> {
        if self.binding()?.is_some() {
            return Err(Error::InvalidInput(
                "the list key is already on a card; there is no key file to move".into(),
            ));
        }
        let file = FileKeystore::open(&self.home, passphrase)?;
        card::import(ident, file.unlocked(), &pins)?;
        drop(file);
        let ks = CardKeystore::open(ident, &self.cert, pins)?;
        self.bind(&ks, "moved to")?;
        self.set_keystore(Box::new(ks))?;
        if !keep_file {
            remove_key_file(&self.home)?;
        }
        Ok(())
    }

    /// Generates a new list key on the card `ident` and makes it the list's
    /// key: the list certificate is replaced (subscribers need the new one:
    /// `key export`). A key file of the old key is kept beside, renamed,
    /// still protected by its passphrase. Returns the new fingerprint.
    pub fn card_generate(&mut self, ident: &str, pins: PinSource) -> Result<String> {
        let name = self.name()?;
        let cert = card::generate(ident, &self.address, &name, &pins, self.clock.now())?;
        let old = self.cert.fingerprint().to_hex();
        self.cert = cert;
        let ks = CardKeystore::open(ident, &self.cert, pins)?;
        self.bind(&ks, "generated on")?;
        let file = self.home.join(keystore::KEY_FILE);
        if file.exists() {
            let kept = self.home.join(format!("list-key-{old}.asc"));
            std::fs::rename(&file, &kept).map_err(|e| Error::io("rename", &file, e))?;
        }
        self.store.audit(
            self.clock.unix(),
            None,
            "card",
            &format!(
                "new list key {} generated on the card {ident}; it replaces {old}",
                self.cert.fingerprint().to_hex()
            ),
        )?;
        self.set_keystore(Box::new(ks))?;
        Ok(self.cert.fingerprint().to_hex())
    }
}

/// Overwrites the key file before removing it.
fn remove_key_file(home: &std::path::Path) -> Result<()> {
    use std::io::Write as _;
    let path = home.join(keystore::KEY_FILE);
    let len = std::fs::metadata(&path)
        .map_err(|e| Error::io("read", &path, e))?
        .len();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| Error::io("open", &path, e))?;
    let zeros = vec![0u8; usize::try_from(len).unwrap_or(0)];
    f.write_all(&zeros)
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io("overwrite", &path, e))?;
    drop(f);
    std::fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))
}

#[cfg(test)]
mod tests {
    use super::Binding;

    #[test]
    fn parses_bindings() {
        let b = Binding::parse("card:000F:0000ABCD:AAAA:BBBB").unwrap();
        assert_eq!(
            (b.ident.as_str(), b.signing.as_str(), b.decryption.as_str()),
            ("000F:0000ABCD", "AAAA", "BBBB")
        );
        assert!(Binding::parse("file").is_none());
    }
}
