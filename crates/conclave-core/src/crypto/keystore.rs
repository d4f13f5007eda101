//! Where the list's secret key lives, behind one trait: a passphrase-protected
//! file here, an OpenPGP card later. The engine never prompts: it is handed a
//! passphrase (or PIN) by its caller.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use openpgp::cert::prelude::*;
use openpgp::crypto::{self, Password};
use openpgp::packet::signature::SignatureBuilder;
use openpgp::packet::UserID;
use openpgp::parse::Parse;
use openpgp::serialize::SerializeInto;
use openpgp::types::{KeyFlags, SignatureType};
use openpgp::Profile;
use sequoia_openpgp as openpgp;

use crate::error::{Error, Result};

use super::policy;

/// A signer and decryptors for the list key, whatever holds it.
pub trait ListKeystore: Send {
    /// The list's certificate (public parts).
    fn cert(&self) -> &openpgp::Cert;
    /// One decryptor per encryption-capable secret key.
    fn decryptors(&mut self) -> Result<Vec<Box<dyn crypto::Decryptor + Send + Sync>>>;
    /// The signer that signs the list's copies.
    fn signer(&mut self) -> Result<Box<dyn crypto::Signer + Send + Sync>>;
    /// The primary key's signer, which makes the key's own self-signatures,
    /// whatever the policy thinks of the signatures there are now.
    fn certifier(&mut self) -> Result<Box<dyn crypto::Signer + Send + Sync>> {
        self.signer()
    }
    /// A signer for the subkey `fpr`, where the keystore holds it (for the
    /// back-signature of a signing subkey).
    fn subkey_signer(
        &mut self,
        _fpr: &openpgp::Fingerprint,
    ) -> Option<Box<dyn crypto::Signer + Send + Sync>> {
        None
    }
    /// A short name for the keystore kind (`file`, `card`).
    fn kind(&self) -> &'static str;
    /// The keystore's own failure behind the last failed decryption or
    /// signature (a card that was pulled, a wrong PIN), if there was one.
    /// Sequoia reports a failing decryptor as "no key", so the engine asks
    /// here before it blames the post.
    fn take_failure(&mut self) -> Option<Error> {
        None
    }
    /// The card's ident and PIN source, for a keystore on a card: the relay
    /// asks for the PIN ahead, before it locks the list
    /// ([`super::card::ask_pin_ahead`]).
    fn card_pins(&self) -> Option<(String, super::card::PinSource)> {
        None
    }
    /// Takes new public signatures of the same key (a longer expiry, say):
    /// `cert` is the list certificate with them merged in.
    fn update_cert(&mut self, cert: &openpgp::Cert) -> Result<()>;
}

/// The file name of the list key inside the list home.
pub const KEY_FILE: &str = "list-key.asc";

/// How long a generated list key is valid before it must be extended.
pub(crate) const VALIDITY: Duration = Duration::from_secs(3 * 365 * 24 * 3600);

/// Generates a v4 list key: an Ed25519 primary key that certifies and signs,
/// and a Cv25519 encryption subkey, with the list's name and address as its
/// User ID ([`list_user_id`]), advertising what the list reads
/// ([`super::renew::with_list_preferences`]). The secret parts are encrypted
/// with `passphrase`.
pub fn generate(
    address: &str,
    name: &str,
    passphrase: &Password,
    now: SystemTime,
) -> Result<openpgp::Cert> {
    let (cert, _rev) = CertBuilder::new()
        .set_profile(Profile::RFC4880)
        .map_err(|e| Error::crypto("choose the key version", e))?
        .set_cipher_suite(CipherSuite::Cv25519)
        .set_creation_time(now - Duration::from_secs(60))
        .set_validity_period(VALIDITY)
        .set_primary_key_flags(KeyFlags::empty().set_certification().set_signing())
        .add_subkey(
            KeyFlags::empty()
                .set_transport_encryption()
                .set_storage_encryption(),
            None,
            None,
        )
        .set_features(super::renew::list_features())
        .map_err(|e| Error::crypto("generate the list key", e))?
        .add_userid_with(
            list_user_id(name, address),
            super::renew::with_list_preferences(SignatureBuilder::new(
                SignatureType::PositiveCertification,
            ))
            .map_err(|e| Error::crypto("generate the list key", e))?,
        )
        .map_err(|e| Error::crypto("generate the list key", e))?
        .set_password(Some(passphrase.clone()))
        .generate()
        .map_err(|e| Error::crypto("generate the list key", e))?;
    Ok(cert)
}

/// The User ID of a list key: `Name <address>`, so a client that lists keys
/// (or Mutt's signature line) shows the list's name; the address alone when
/// the name is empty, the address itself, or not fit for a User ID.
pub fn list_user_id(name: &str, address: &str) -> UserID {
    let name = crate::text::clean(name);
    let name = name.trim();
    if name.is_empty() || name.eq_ignore_ascii_case(address) || name.contains(['<', '>', '@']) {
        return UserID::from(address);
    }
    UserID::from_address(Some(name), None, address).unwrap_or_else(|_| UserID::from(address))
}

/// Reads an armored secret key for import, and makes sure every secret part
/// ends up encrypted with `passphrase`. Secret parts that are already
/// encrypted must open with that same passphrase.
pub fn import(bytes: &[u8], passphrase: &Password) -> Result<openpgp::Cert> {
    let cert = openpgp::Cert::from_bytes(bytes)
        .map_err(|e| Error::BadKey(format!("cannot read the key file: {e}")))?;
    if !cert.is_tsk() {
        return Err(Error::BadKey(
            "the file holds a public key only; import needs the secret key".into(),
        ));
    }
    let mut packets: Vec<openpgp::Packet> = Vec::new();
    for ka in cert.keys().secret() {
        let key = ka.key().clone();
        let key = if key.secret().is_encrypted() {
            key.decrypt_secret(passphrase).map_err(|_| {
                Error::BadKey(
                    "the imported key is protected by another passphrase than the one given".into(),
                )
            })?
        } else {
            key
        };
        let key = key
            .encrypt_secret(passphrase)
            .map_err(|e| Error::crypto("protect the imported key", e))?;
        if ka.primary() {
            packets.push(key.role_into_primary().into());
        } else {
            packets.push(key.role_into_subordinate().into());
        }
    }
    let (cert, _) = cert
        .insert_packets(packets)
        .map_err(|e| Error::crypto("protect the imported key", e))?;
    Ok(cert)
}

/// Writes the protected secret key to the list home, readable by the owner only.
pub fn write_key_file(home: &Path, cert: &openpgp::Cert) -> Result<PathBuf> {
    let path = home.join(KEY_FILE);
    let armored = cert
        .as_tsk()
        .armored()
        .to_vec()
        .map_err(|e| Error::crypto("serialise the list key", e))?;
    write_private(&path, &armored)?;
    Ok(path)
}

pub use crate::private::write_private;

/// The list key held in a passphrase-protected file.
pub struct FileKeystore {
    /// The certificate with its secret parts unlocked in memory.
    unlocked: openpgp::Cert,
    public: openpgp::Cert,
}

impl std::fmt::Debug for FileKeystore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileKeystore")
            .field("fingerprint", &self.public.fingerprint())
            .finish()
    }
}

impl FileKeystore {
    /// Opens the key file in `home` and unlocks it with `passphrase`.
    pub fn open(home: &Path, passphrase: &Password) -> Result<FileKeystore> {
        let path = home.join(KEY_FILE);
        let bytes = std::fs::read(&path).map_err(|e| Error::io("read the list key", &path, e))?;
        let cert = openpgp::Cert::from_bytes(&bytes)
            .map_err(|e| Error::BadKey(format!("cannot read {}: {e}", path.display())))?;
        FileKeystore::unlock(cert, passphrase)
    }

    /// Unlocks every secret part of `cert` with `passphrase`. Each part has
    /// its own deliberately slow passphrase derivation (iterated and salted
    /// S2K), so the parts are opened side by side, one thread each.
    pub fn unlock(cert: openpgp::Cert, passphrase: &Password) -> Result<FileKeystore> {
        let parts: Vec<_> = cert
            .keys()
            .secret()
            .map(|ka| (ka.primary(), ka.key().clone()))
            .collect();
        let opened: Vec<Result<openpgp::Packet>> = std::thread::scope(|s| {
            let handles: Vec<_> = parts
                .into_iter()
                .map(|(primary, key)| {
                    s.spawn(move || {
                        let key = if key.secret().is_encrypted() {
                            key.decrypt_secret(passphrase)
                                .map_err(|_| Error::BadPassphrase)?
                        } else {
                            key
                        };
                        Ok(if primary {
                            key.role_into_primary().into()
                        } else {
                            key.role_into_subordinate().into()
                        })
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(Error::crypto(
                            "unlock the list key",
                            "a secret key part could not be opened",
                        ))
                    })
                })
                .collect()
        });
        let packets = opened.into_iter().collect::<Result<Vec<_>>>()?;
        let public = cert.clone().strip_secret_key_material();
        let (unlocked, _) = cert
            .insert_packets(packets)
            .map_err(|e| Error::crypto("unlock the list key", e))?;
        Ok(FileKeystore { unlocked, public })
    }

    /// The certificate with its secret parts decrypted, for moving them to
    /// a card.
    pub(crate) fn unlocked(&self) -> &openpgp::Cert {
        &self.unlocked
    }
}

impl ListKeystore for FileKeystore {
    fn cert(&self) -> &openpgp::Cert {
        &self.public
    }

    fn decryptors(&mut self) -> Result<Vec<Box<dyn crypto::Decryptor + Send + Sync>>> {
        let mut out: Vec<Box<dyn crypto::Decryptor + Send + Sync>> = Vec::new();
        // Any secret key flagged for encryption, even if expired: old posts
        // must still open.
        for ka in self.unlocked.keys().unencrypted_secret() {
            let flagged = ka
                .clone()
                .with_policy(policy(), None)
                .map(|vka| vka.for_transport_encryption() || vka.for_storage_encryption())
                .unwrap_or(false);
            if flagged {
                let pair = ka
                    .key()
                    .clone()
                    .into_keypair()
                    .map_err(|e| Error::crypto("use the list key", e))?;
                out.push(Box::new(pair));
            }
        }
        if out.is_empty() {
            return Err(Error::BadKey(
                "the list key has no secret encryption key".into(),
            ));
        }
        Ok(out)
    }

    fn signer(&mut self) -> Result<Box<dyn crypto::Signer + Send + Sync>> {
        let ka = self
            .unlocked
            .keys()
            .with_policy(policy(), None)
            .unencrypted_secret()
            .alive()
            .revoked(false)
            .for_signing()
            .next()
            .ok_or_else(|| Error::BadKey("the list key has no usable signing key".into()))?;
        let pair = ka
            .key()
            .clone()
            .into_keypair()
            .map_err(|e| Error::crypto("use the list key", e))?;
        Ok(Box::new(pair))
    }

    fn certifier(&mut self) -> Result<Box<dyn crypto::Signer + Send + Sync>> {
        let pair = self
            .unlocked
            .primary_key()
            .key()
            .clone()
            .parts_into_secret()
            .and_then(|k| k.into_keypair())
            .map_err(|e| Error::crypto("use the list's primary key", e))?;
        Ok(Box::new(pair))
    }

    fn subkey_signer(
        &mut self,
        fpr: &openpgp::Fingerprint,
    ) -> Option<Box<dyn crypto::Signer + Send + Sync>> {
        let ka = self
            .unlocked
            .keys()
            .unencrypted_secret()
            .find(|ka| &ka.key().fingerprint() == fpr)?;
        let pair = ka.key().clone().into_keypair().ok()?;
        Some(Box::new(pair))
    }

    fn kind(&self) -> &'static str {
        "file"
    }

    fn update_cert(&mut self, cert: &openpgp::Cert) -> Result<()> {
        let public = cert.clone().strip_secret_key_material();
        self.unlocked = self
            .unlocked
            .clone()
            .merge_public(public.clone())
            .map_err(|e| Error::crypto("update the list key", e))?;
        self.public = public;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_is_v4_with_address_and_protected() {
        let pw = Password::from("correct horse");
        let cert = generate("list@example.test", "List", &pw, SystemTime::now()).unwrap();
        assert_eq!(cert.primary_key().key().version(), 4);
        assert!(cert
            .keys()
            .secret()
            .all(|ka| ka.key().secret().is_encrypted()));
        assert!(crate::crypto::certs::speaks_for(
            &cert,
            "list@example.test",
            SystemTime::now()
        ));
        assert!(matches!(
            FileKeystore::unlock(cert.clone(), &Password::from("wrong")),
            Err(Error::BadPassphrase)
        ));
        let mut ks = FileKeystore::unlock(cert, &pw).unwrap();
        assert_eq!(ks.decryptors().unwrap().len(), 1);
        assert!(ks.signer().is_ok());
    }
}
