//! Looking after the list key: extending its expiry and making an encrypted
//! backup of it.

use std::path::Path;
use std::time::SystemTime;

use openpgp::parse::Parse;
use sequoia_openpgp as openpgp;

use crate::crypto::keystore::{self, ListKeystore};
use crate::crypto::{certs, policy, renew};
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
        // An old key is certified again first, so its expiry can be moved.
        self.renew_key()?;
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
        self.replace_cert(cert)?;
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

    /// Certifies the list key again when its self-signatures are out of
    /// date (SHA-1, which the policy no longer accepts, or no word of the
    /// AEAD modes the list reads), with the key the list holds (on a card
    /// too). Says so once in the log, and returns that line; `None` when
    /// the key needed nothing.
    pub fn renew_key(&mut self) -> Result<Option<String>> {
        let now = self.clock.now();
        let cert = self.cert.clone();
        let renewed = match self.keystore.as_mut() {
            Some(ks) => renewed(&cert, ks.as_mut(), now),
            None => return Err(Error::PassphraseRequired),
        };
        let (cert, line) = match renewed {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(None),
            Err(e) => {
                return Err(
                    match self.keystore.as_mut().and_then(|ks| ks.take_failure()) {
                        Some(failure) => failure,
                        None => e,
                    },
                )
            }
        };
        self.replace_cert(cert)?;
        self.store.audit(self.clock.unix(), None, "key", &line)?;
        Ok(Some(line))
    }

    /// Whether [`List::renew_key`] has something to do.
    pub fn key_needs_renewal(&self) -> bool {
        renew::reasons(&self.cert, self.clock.now()).is_ok_and(|r| !r.is_empty())
    }

    /// Puts new public signatures of the list key everywhere the key is
    /// kept: the key file (its secret parts still under the passphrase), the
    /// store, the keystore in use, and the list in memory.
    fn replace_cert(&mut self, cert: openpgp::Cert) -> Result<()> {
        let primary = cert.fingerprint();
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
        Ok(())
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
        crate::private::write_private_new(to, &bytes)?;
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

/// `cert` certified again by the keystore, with the line for the log, if
/// its self-signatures are out of date ([`renew::reasons`]).
pub(crate) fn renewed(
    cert: &openpgp::Cert,
    ks: &mut dyn ListKeystore,
    now: SystemTime,
) -> Result<Option<(openpgp::Cert, String)>> {
    let why = renew::reasons(cert, now)?;
    // A key certified this very second waits for the next unlock.
    if why.is_empty() || !renew::can_follow(cert, now) {
        return Ok(None);
    }
    let mut certifier = ks.certifier()?;
    let cert = renew::recertify(
        cert,
        certifier.as_mut(),
        &mut |fpr| ks.subkey_signer(fpr),
        now,
    )?;
    let line = format!(
        "the list key {} was certified again with SHA-512: {}; subscribers can fetch the renewed public key (key export)",
        cert.fingerprint(),
        why.join("; ")
    );
    Ok(Some((cert, line)))
}

/// One file of the list key's Web Key Directory ([`List::write_wkd`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WkdFile {
    /// Where it was written.
    pub path: std::path::PathBuf,
    /// The URL it must be served at.
    pub url: String,
}

impl List {
    /// Writes the list key's Web Key Directory under `dir`, for the owner's
    /// web server, in both layouts of the WKD draft: the direct one
    /// (`dir/.well-known/openpgpkey/`, the document root of `DOMAIN`) and
    /// the advanced one (`dir/openpgpkey/DOMAIN/.well-known/openpgpkey/DOMAIN/`,
    /// the document root of `openpgpkey.DOMAIN`), each with its key file
    /// (binary, public parts only) and an empty `policy` file. Returns each
    /// file with the URL it must be served at.
    pub fn write_wkd(&self, dir: &Path) -> Result<Vec<WkdFile>> {
        let address = self.address().to_string();
        let (local, domain) = crate::net::wkd::split(&address).ok_or_else(|| {
            Error::InvalidInput(format!(
                "the list address {address} has no domain on the internet for a Web Key Directory"
            ))
        })?;
        let hash = crate::net::wkd::hash(&local);
        let key = certs::binary(&self.cert.clone().strip_secret_key_material())?;
        let direct = dir.join(".well-known").join("openpgpkey");
        let advanced = dir
            .join("openpgpkey")
            .join(&domain)
            .join(".well-known")
            .join("openpgpkey")
            .join(&domain);
        let files = [
            (
                direct.join("hu").join(&hash),
                format!("https://{domain}/.well-known/openpgpkey/hu/{hash}"),
                key.as_slice(),
            ),
            (
                direct.join("policy"),
                format!("https://{domain}/.well-known/openpgpkey/policy"),
                &[][..],
            ),
            (
                advanced.join("hu").join(&hash),
                format!("https://openpgpkey.{domain}/.well-known/openpgpkey/{domain}/hu/{hash}"),
                key.as_slice(),
            ),
            (
                advanced.join("policy"),
                format!("https://openpgpkey.{domain}/.well-known/openpgpkey/{domain}/policy"),
                &[][..],
            ),
        ];
        let mut out = Vec::new();
        for (path, url, bytes) in files {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| Error::io("create", parent, e))?;
            }
            std::fs::write(&path, bytes).map_err(|e| Error::io("write", &path, e))?;
            out.push(WkdFile { path, url });
        }
        Ok(out)
    }
}
