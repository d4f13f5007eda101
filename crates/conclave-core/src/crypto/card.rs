//! The list key on an OpenPGP card (YubiKey, Nitrokey, Gnuk…), through PC/SC.
//!
//! The card holds the signing key (its signature slot) and the decryption
//! subkey (its decryption slot); the list's certificate stays in the store.
//! Each operation opens the card by its ident (`MMMM:SSSSSSSS`, manufacturer
//! and serial), verifies the PIN, and does one PSO: DECIPHER or PSO: COMPUTE
//! DIGITAL SIGNATURE. A post costs one of each, whatever the number of
//! subscribers.
//!
//! PINs come from a [`PinSource`] the caller provides (a file, the GUI's
//! dialog); the engine never prompts, and never writes a PIN anywhere. A
//! wrong PIN is reported with the tries left, and is not tried again.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use card_backend_pcsc::PcscBackend;
use openpgp::crypto::{ecdh, mpi, Password, SessionKey};
use openpgp::packet::key::{Key4, PublicParts, SecretParts, UnspecifiedRole};
use openpgp::packet::Key;
use openpgp::types::{Curve, HashAlgorithm, PublicKeyAlgorithm, SymmetricAlgorithm};
use openpgp_card::ocard::crypto::{
    CardUploadableKey, Cryptogram, EccKey, EccType, HashAlgo, PrivateKeyMaterial,
    PublicKeyMaterial, SigningAlgo,
};
use openpgp_card::ocard::data::{Fingerprint, KeyGenerationTime};
use openpgp_card::ocard::{KeyType, StatusBytes};
use openpgp_card::state::{Open, Transaction};
use openpgp_card::Card;
use secrecy::SecretString;
use sequoia_openpgp as openpgp;

use crate::error::{Error, Result};

use super::keystore::ListKeystore;

/// A public key of the list certificate.
type PublicKey = Key<PublicParts, UnspecifiedRole>;

/// Which PIN the card needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinKind {
    /// The user PIN (PW1): decrypting and signing.
    User,
    /// The admin PIN (PW3): importing and generating keys.
    Admin,
}

/// What the engine asks its caller for.
#[derive(Debug, Clone)]
pub struct PinRequest {
    /// The card, as `MMMM:SSSSSSSS`.
    pub ident: String,
    /// Which PIN.
    pub kind: PinKind,
    /// How many tries the card still allows.
    pub tries_left: u8,
}

/// Answers PIN requests: from a file, the environment, or a dialog. `None`
/// means the owner gave none.
pub type PinSource = Arc<dyn Fn(&PinRequest) -> Option<Password> + Send + Sync>;

/// What `conclave card list` shows of a card.
#[derive(Debug, Clone)]
pub struct CardInfo {
    /// `MMMM:SSSSSSSS`.
    pub ident: String,
    /// The manufacturer's name.
    pub manufacturer: String,
    /// The serial number, in hex.
    pub serial: String,
    /// The fingerprints in the signature, decryption and authentication slots.
    pub slots: [Option<String>; 3],
    /// Tries left for the user PIN, the reset code and the admin PIN.
    pub retries: (u8, u8, u8),
    /// How many signatures the card has made.
    pub signature_count: u32,
}

/// Every OpenPGP card PC/SC can see.
pub fn list_cards() -> Result<Vec<CardInfo>> {
    let backends = PcscBackend::card_backends(None).map_err(|e| {
        Error::Card(
            format!("cannot reach PC/SC ({e}); is pcscd running and a reader plugged in?"),
            None,
        )
    })?;
    let mut out = Vec::new();
    for backend in backends.flatten() {
        // A card without the OpenPGP application is not ours to list.
        let Ok(mut card) = Card::<Open>::new(backend) else {
            continue;
        };
        let Ok(mut tx) = card.transaction() else {
            continue;
        };
        out.push(info(&mut tx)?);
    }
    Ok(out)
}

/// What the card says about itself.
fn info(tx: &mut Card<Transaction<'_>>) -> Result<CardInfo> {
    let aid = tx
        .application_identifier()
        .map_err(|e| card_error("?", e))?;
    let ident = aid.ident();
    let fprs = tx.fingerprints().map_err(|e| card_error(&ident, e))?;
    let pw = tx.pw_status_bytes().map_err(|e| card_error(&ident, e))?;
    let signature_count = tx
        .digital_signature_count()
        .map_err(|e| card_error(&ident, e))?;
    Ok(CardInfo {
        manufacturer: aid.manufacturer_name().to_string(),
        serial: format!("{:08X}", aid.serial()),
        slots: [
            hex(fprs.signature()),
            hex(fprs.decryption()),
            hex(fprs.authentication()),
        ],
        retries: (pw.err_count_pw1(), pw.err_count_rc(), pw.err_count_pw3()),
        signature_count,
        ident,
    })
}

/// Opens the card `ident` and runs `f` in one transaction.
fn with_card<T>(ident: &str, f: impl FnOnce(&mut Card<Transaction<'_>>) -> Result<T>) -> Result<T> {
    let backends = PcscBackend::card_backends(None).map_err(|e| unreachable(ident, e))?;
    let mut card =
        Card::<Open>::open_by_ident(backends, ident).map_err(|e| unreachable(ident, e))?;
    let mut tx = card.transaction().map_err(|e| unreachable(ident, e))?;
    f(&mut tx)
}

/// A slot's fingerprint as `card list` shows it, if the slot holds a key.
fn hex(f: Option<&Fingerprint>) -> Option<String> {
    f.map(|f| super::hex(f.as_bytes()))
}

fn unreachable(ident: &str, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Card(
        format!(
            "the OpenPGP card {ident} cannot be reached ({e}); insert it and check that pcscd runs"
        ),
        Some(Box::new(e)),
    )
}

/// Why a recipient packet cannot be for the card's decryption key `public`,
/// if it cannot: checked before the card sees it.
fn fits(ciphertext: &mpi::Ciphertext, public: &PublicKey) -> std::result::Result<(), String> {
    match (ciphertext, public.mpis()) {
        (mpi::Ciphertext::RSA { c }, mpi::PublicKey::RSA { n, .. }) => {
            let (got, max) = (c.value().len(), n.value().len());
            if got == 0 || got > max {
                return Err(format!("an RSA value of {got} bytes for a {max}-byte key"));
            }
            Ok(())
        }
        (mpi::Ciphertext::ECDH { e, .. }, mpi::PublicKey::ECDH { curve, .. }) => {
            let e = e.value();
            let (prefix, len) = match curve {
                Curve::Cv25519 => (0x40, 33),
                Curve::NistP256 => (0x04, 65),
                Curve::NistP384 => (0x04, 97),
                Curve::NistP521 => (0x04, 133),
                Curve::BrainpoolP256 => (0x04, 65),
                Curve::BrainpoolP384 => (0x04, 97),
                Curve::BrainpoolP512 => (0x04, 129),
                other => return Err(format!("the curve {other} is not one a card uses")),
            };
            if e.len() != len || e.first() != Some(&prefix) {
                return Err(format!(
                    "a {curve} point of {} bytes, where it takes {len} starting with {prefix:#04x}",
                    e.len()
                ));
            }
            Ok(())
        }
        _ => Err("its algorithm does not match the card's decryption key".into()),
    }
}

/// The card refused one operation on a recipient packet. A PIN the card
/// wants, or a card that went away, is the card's failure; anything else
/// means this packet does not decrypt.
fn packet_refused(ident: &str, e: openpgp_card::Error) -> Error {
    match e {
        openpgp_card::Error::CardStatus(
            StatusBytes::PasswordNotChecked(_)
            | StatusBytes::SecurityStatusNotSatisfied
            | StatusBytes::AuthenticationMethodBlocked
            | StatusBytes::ConditionOfUseNotSatisfied
            | StatusBytes::TerminationState
            | StatusBytes::MemoryFailure,
        )
        | openpgp_card::Error::Smartcard(_) => card_error(ident, e),
        other => Error::crypto(
            "decrypt the recipient packet on the card",
            format!("the card {ident} refused it: {other}"),
        ),
    }
}

fn card_error(ident: &str, e: openpgp_card::Error) -> Error {
    match e {
        openpgp_card::Error::Smartcard(e) => unreachable(ident, e),
        other => Error::Card(
            format!("the OpenPGP card {ident} refused: {other}"),
            Some(Box::new(other)),
        ),
    }
}

/// Asks `pins` for the card's user PIN now, with the tries the card has
/// left, so that a source that asks the owner (the app's dialog) has it at
/// hand when the card needs it: the relay calls this before it locks the
/// list, so a PIN dialog never holds the owner's commands. Nothing is sent
/// to the card. A card that cannot be reached is left for the operation
/// itself to report.
pub fn ask_pin_ahead(ident: &str, pins: &PinSource) {
    let tries = with_card(ident, |tx| {
        tx.invalidate_cache().map_err(|e| card_error(ident, e))?;
        let pw = tx.pw_status_bytes().map_err(|e| card_error(ident, e))?;
        Ok(pw.err_count_pw1())
    });
    if let Ok(tries_left @ 1..) = tries {
        let _ = pins(&PinRequest {
            ident: ident.to_string(),
            kind: PinKind::User,
            tries_left,
        });
    }
}

/// Verifies a PIN, asking `pins` for it. Never sends a PIN to a card whose
/// counter is at zero, and says how many tries are left after a wrong one.
fn verify(
    tx: &mut Card<Transaction<'_>>,
    ident: &str,
    pins: &PinSource,
    kind: PinKind,
    for_signing: bool,
) -> Result<()> {
    let left = |tx: &mut Card<Transaction<'_>>| -> Result<u8> {
        // The counters are cached with the application data: read afresh.
        tx.invalidate_cache().map_err(|e| card_error(ident, e))?;
        let pw = tx.pw_status_bytes().map_err(|e| card_error(ident, e))?;
        Ok(match kind {
            PinKind::User => pw.err_count_pw1(),
            PinKind::Admin => pw.err_count_pw3(),
        })
    };
    let name = match kind {
        PinKind::User => "user PIN",
        PinKind::Admin => "admin PIN",
    };
    let tries_left = left(tx)?;
    if tries_left == 0 {
        return Err(blocked(ident, kind));
    }
    let request = PinRequest {
        ident: ident.to_string(),
        kind,
        tries_left,
    };
    let pin = pins(&request).ok_or_else(|| {
        Error::Pin(match kind {
            PinKind::User => format!(
                "the card {ident} needs its user PIN: give --pin-file F or set CONCLAVE_PIN_FILE"
            ),
            PinKind::Admin => format!(
                "the card {ident} needs its admin PIN: give --admin-pin-file F or set CONCLAVE_ADMIN_PIN_FILE"
            ),
        })
    })?;
    let pin = pin.map(|p| SecretString::from(String::from_utf8_lossy(p).into_owned()));
    let result = match (kind, for_signing) {
        (PinKind::User, false) => tx.verify_user_pin(pin),
        (PinKind::User, true) => tx.verify_user_signing_pin(pin),
        (PinKind::Admin, _) => tx.verify_admin_pin(pin),
    };
    match result {
        Ok(()) => Ok(()),
        Err(openpgp_card::Error::CardStatus(
            StatusBytes::PasswordNotChecked(_)
            | StatusBytes::SecurityStatusNotSatisfied
            | StatusBytes::AuthenticationMethodBlocked
            | StatusBytes::IncorrectParametersCommandDataField,
        )) => match left(tx)? {
            0 => Err(blocked(ident, kind)),
            n => Err(Error::Pin(format!(
                "wrong {name} for the card {ident}: {n} {} left; Conclave will not try it again",
                if n == 1 { "try" } else { "tries" }
            ))),
        },
        Err(e) => Err(card_error(ident, e)),
    }
}

fn blocked(ident: &str, kind: PinKind) -> Error {
    Error::Pin(match kind {
        PinKind::User => format!(
            "the user PIN of the card {ident} is blocked; unblock it with the admin PIN or the reset code \
             (for example `gpg --card-edit`, then `admin`, `passwd`, `2`), then try again"
        ),
        PinKind::Admin => format!(
            "the admin PIN of the card {ident} is blocked; the card must be reset (factory reset), which erases its keys"
        ),
    })
}

// ---------------------------------------------------------------------------
// The keystore.

/// The list key on a card.
pub struct CardKeystore {
    ident: String,
    cert: openpgp::Cert,
    signing: Key<PublicParts, UnspecifiedRole>,
    decryption: Key<PublicParts, UnspecifiedRole>,
    pins: PinSource,
    failure: Arc<Mutex<Option<Error>>>,
}

impl std::fmt::Debug for CardKeystore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardKeystore")
            .field("ident", &self.ident)
            .finish_non_exhaustive()
    }
}

impl CardKeystore {
    /// Opens the card `ident` for the list certificate `cert`, after checking
    /// that its signature slot holds a signing key of `cert` and its
    /// decryption slot an encryption key of `cert`.
    pub fn open(ident: &str, cert: &openpgp::Cert, pins: PinSource) -> Result<Self> {
        let ident = ident.trim().to_ascii_uppercase();
        let (sig, dec) = with_card(&ident, |tx| {
            let fprs = tx.fingerprints().map_err(|e| card_error(&ident, e))?;
            Ok((hex(fprs.signature()), hex(fprs.decryption())))
        })?;
        Self::bound(&ident, cert, sig.as_deref(), dec.as_deref(), pins)
    }

    /// The keystore for a card bound earlier, whose signature and decryption
    /// slots held the keys `sig` and `dec` of `cert`. The card is not
    /// touched until it is needed, so a relay can start while it is out.
    pub fn bound(
        ident: &str,
        cert: &openpgp::Cert,
        sig: Option<&str>,
        dec: Option<&str>,
        pins: PinSource,
    ) -> Result<Self> {
        let ident = ident.trim().to_ascii_uppercase();
        let (signing, decryption) = matching_keys(cert, sig, dec).map_err(|why| {
            Error::BadKey(format!(
                "the card {ident} does not hold the list key: {why}"
            ))
        })?;
        Ok(CardKeystore {
            ident,
            cert: cert.clone(),
            signing,
            decryption,
            pins,
            failure: Arc::new(Mutex::new(None)),
        })
    }

    /// The fingerprints of the keys in the signature and decryption slots.
    pub fn slots(&self) -> (String, String) {
        (
            self.signing.fingerprint().to_hex(),
            self.decryption.fingerprint().to_hex(),
        )
    }

    /// The card's ident.
    pub fn ident(&self) -> &str {
        &self.ident
    }
}

/// The keys of `cert` whose fingerprints are in the card's signature and
/// decryption slots, or why they are not there.
fn matching_keys(
    cert: &openpgp::Cert,
    sig: Option<&str>,
    dec: Option<&str>,
) -> std::result::Result<(PublicKey, PublicKey), String> {
    let find =
        |fpr: Option<&str>,
         what: &str,
         usable: &dyn Fn(&openpgp::Cert, &Key<PublicParts, UnspecifiedRole>) -> bool| {
            let fpr = fpr.ok_or_else(|| format!("its {what} slot is empty"))?;
            cert.keys()
                .map(|ka| ka.key().clone().role_into_unspecified())
                .find(|k| k.fingerprint().to_hex() == fpr)
                .filter(|k| usable(cert, k))
                .ok_or_else(|| {
                    format!("its {what} key {fpr} is not a {what} key of the list certificate")
                })
        };
    // An old list key (SHA-1 self-signatures) still binds: the list certifies
    // it again through the card right after.
    let policy = super::lenient_policy();
    let can = |sign: bool| {
        move |cert: &openpgp::Cert, k: &Key<PublicParts, UnspecifiedRole>| {
            cert.keys()
                .with_policy(policy, None)
                .filter(|ka| ka.key().fingerprint() == k.fingerprint())
                .any(|ka| {
                    if sign {
                        ka.for_signing()
                    } else {
                        ka.for_transport_encryption() || ka.for_storage_encryption()
                    }
                })
        }
    };
    let signing = find(sig, "signature", &can(true))?;
    let decryption = find(dec, "decryption", &can(false))?;
    Ok((signing, decryption))
}

impl ListKeystore for CardKeystore {
    fn cert(&self) -> &openpgp::Cert {
        &self.cert
    }

    fn decryptors(&mut self) -> Result<Vec<Box<dyn openpgp::crypto::Decryptor + Send + Sync>>> {
        // Each operation starts with no failure left from an earlier one.
        self.take_failure();
        Ok(vec![Box::new(CardOp {
            ident: self.ident.clone(),
            public: self.decryption.clone(),
            pins: self.pins.clone(),
            failure: self.failure.clone(),
        })])
    }

    fn signer(&mut self) -> Result<Box<dyn openpgp::crypto::Signer + Send + Sync>> {
        self.take_failure();
        Ok(Box::new(CardOp {
            ident: self.ident.clone(),
            public: self.signing.clone(),
            pins: self.pins.clone(),
            failure: self.failure.clone(),
        }))
    }

    fn kind(&self) -> &'static str {
        "card"
    }

    fn card_pins(&self) -> Option<(String, PinSource)> {
        Some((self.ident.clone(), self.pins.clone()))
    }

    fn take_failure(&mut self) -> Option<Error> {
        self.failure.lock().ok().and_then(|mut f| f.take())
    }

    fn update_cert(&mut self, cert: &openpgp::Cert) -> Result<()> {
        self.cert = cert.clone().strip_secret_key_material();
        Ok(())
    }
}

/// One card operation: a decryption or a signature with one slot's key.
struct CardOp {
    ident: String,
    public: Key<PublicParts, UnspecifiedRole>,
    pins: PinSource,
    failure: Arc<Mutex<Option<Error>>>,
}

impl CardOp {
    /// Runs `f`, remembering a card failure for the engine: Sequoia's
    /// decryption loop turns a failing decryptor into "no key", which must
    /// not make the engine reject a post because a card was unplugged.
    ///
    /// Only a card that cannot be reached or a PIN counts as a card failure
    /// (`Error::Card`, `Error::Pin`); the card refusing one recipient packet,
    /// or a session key that does not unwrap, means only that this packet
    /// does not decrypt, and the post is refused for it like any other.
    fn run<T>(
        &self,
        f: impl FnOnce(&mut Card<Transaction<'_>>) -> Result<T>,
    ) -> openpgp::Result<T> {
        match with_card(&self.ident, f) {
            Ok(v) => Ok(v),
            Err(e) => {
                let text = e.to_string();
                if matches!(e, Error::Card(..) | Error::Pin(_)) {
                    if let Ok(mut slot) = self.failure.lock() {
                        *slot = Some(e);
                    }
                }
                Err(openpgp::anyhow::anyhow!(text))
            }
        }
    }
}

impl openpgp::crypto::Decryptor for CardOp {
    fn public(&self) -> &Key<PublicParts, UnspecifiedRole> {
        &self.public
    }

    fn decrypt(
        &mut self,
        ciphertext: &mpi::Ciphertext,
        plaintext_len: Option<usize>,
    ) -> openpgp::Result<SessionKey> {
        let ident = self.ident.clone();
        let public = self.public.clone();
        // A packet that cannot fit the key never reaches the card.
        if let Err(why) = fits(ciphertext, &public) {
            return Err(openpgp::anyhow::anyhow!(
                "the recipient packet for the list key is malformed: {why}"
            ));
        }
        self.run(|tx| {
            verify(tx, &ident, &self.pins, PinKind::User, false)?;
            match (ciphertext, public.mpis()) {
                (mpi::Ciphertext::RSA { c }, mpi::PublicKey::RSA { .. }) => {
                    let out = tx
                        .card()
                        .decipher(Cryptogram::RSA(c.value()))
                        .map_err(|e| packet_refused(&ident, e))?;
                    Ok(SessionKey::from(&out[..]))
                }
                (mpi::Ciphertext::ECDH { e, .. }, mpi::PublicKey::ECDH { curve, .. }) => {
                    // Cv25519 points travel without their 0x40 prefix.
                    let point = match (curve, e.value().split_first()) {
                        (Curve::Cv25519, Some((0x40, rest))) => rest,
                        _ => e.value(),
                    };
                    let mut shared = tx
                        .card()
                        .decipher(Cryptogram::ECDH(point))
                        .map_err(|e| packet_refused(&ident, e))?;
                    // Some cards answer a NIST P-256 point (0x04 || x || y):
                    // the shared secret is x.
                    if *curve == Curve::NistP256 && shared.len() == 65 {
                        shared = shared.get(1..33).map(<[u8]>::to_vec).unwrap_or_default();
                    }
                    ecdh::decrypt_unwrap(&public, &shared.into(), ciphertext, plaintext_len)
                        .map_err(|e| Error::crypto("unwrap the session key", e))
                }
                _ => Err(Error::BadKey(
                    "the card's decryption key does not fit this message".into(),
                )),
            }
        })
    }
}

impl openpgp::crypto::Signer for CardOp {
    fn public(&self) -> &Key<PublicParts, UnspecifiedRole> {
        &self.public
    }

    fn acceptable_hashes(&self) -> &[HashAlgorithm] {
        &[
            HashAlgorithm::SHA512,
            HashAlgorithm::SHA384,
            HashAlgorithm::SHA256,
        ]
    }

    fn sign(&mut self, hash: HashAlgorithm, digest: &[u8]) -> openpgp::Result<mpi::Signature> {
        let ident = self.ident.clone();
        let public = self.public.clone();
        self.run(|tx| {
            verify(tx, &ident, &self.pins, PinKind::User, true)?;
            let sign = |tx: &mut Card<Transaction<'_>>, algo: SigningAlgo, d: &[u8]| {
                tx.card()
                    .signature_for_hash(algo, d)
                    .map_err(|e| card_error(&ident, e))
            };
            let halves = |sig: &[u8]| {
                let (r, s) = sig.split_at(sig.len() / 2);
                (mpi::MPI::new(r), mpi::MPI::new(s))
            };
            #[allow(deprecated)]
            match (public.pk_algo(), public.mpis()) {
                (
                    PublicKeyAlgorithm::RSAEncryptSign | PublicKeyAlgorithm::RSASign,
                    mpi::PublicKey::RSA { .. },
                ) => {
                    let algo = match hash {
                        HashAlgorithm::SHA256 => HashAlgo::SHA256,
                        HashAlgorithm::SHA384 => HashAlgo::SHA384,
                        HashAlgorithm::SHA512 => HashAlgo::SHA512,
                        other => {
                            return Err(Error::BadKey(format!(
                                "the card cannot sign a {other} digest with RSA"
                            )))
                        }
                    };
                    let sig = sign(tx, SigningAlgo::RSA(algo), digest)?;
                    Ok(mpi::Signature::RSA {
                        s: mpi::MPI::new(&sig),
                    })
                }
                (PublicKeyAlgorithm::EdDSA, mpi::PublicKey::EdDSA { .. }) => {
                    let (r, s) = halves(&sign(tx, SigningAlgo::ECC, digest)?);
                    Ok(mpi::Signature::EdDSA { r, s })
                }
                (PublicKeyAlgorithm::ECDSA, mpi::PublicKey::ECDSA { curve, .. }) => {
                    // The card signs the digest cut to the curve's size.
                    let size = match curve {
                        Curve::NistP256 => 32,
                        Curve::NistP384 => 48,
                        _ => 64,
                    };
                    let d = digest.get(..size).unwrap_or(digest);
                    let (r, s) = halves(&sign(tx, SigningAlgo::ECC, d)?);
                    Ok(mpi::Signature::ECDSA { r, s })
                }
                (algo, _) => Err(Error::BadKey(format!(
                    "the card's signing key ({algo}) is not supported"
                ))),
            }
        })
    }
}

// ---------------------------------------------------------------------------
// Putting keys on a card.

/// Moves the list's secret keys onto the card `ident`: the signing key into
/// the signature slot, the encryption subkey into the decryption slot. Needs
/// the admin PIN. `cert` must carry the secret parts, decrypted.
pub fn import(ident: &str, cert: &openpgp::Cert, pins: &PinSource) -> Result<()> {
    let ident = ident.trim().to_ascii_uppercase();
    let policy = super::policy();
    let pick = |sign: bool| -> Result<Key<SecretParts, UnspecifiedRole>> {
        cert.keys()
            .with_policy(policy, None)
            .secret()
            .find(|ka| {
                if sign {
                    ka.for_signing()
                } else {
                    ka.for_transport_encryption() || ka.for_storage_encryption()
                }
            })
            .map(|ka| ka.key().clone().role_into_unspecified())
            .ok_or_else(|| {
                Error::BadKey(format!(
                    "the list key has no secret {} key to move",
                    if sign { "signing" } else { "encryption" }
                ))
            })
    };
    let signing = Uploadable::new(pick(true)?)?;
    let decryption = Uploadable::new(pick(false)?)?;
    with_card(&ident, |tx| {
        verify(tx, &ident, pins, PinKind::Admin, false)?;
        let mut admin = tx.as_admin_card(None).map_err(|e| card_error(&ident, e))?;
        admin
            .import_key(&signing, KeyType::Signing)
            .map_err(|e| card_error(&ident, e))?;
        admin
            .import_key(&decryption, KeyType::Decryption)
            .map_err(|e| card_error(&ident, e))?;
        Ok(())
    })
}

/// A Sequoia secret key in the shape the card's key import wants.
struct Uploadable {
    key: Key<SecretParts, UnspecifiedRole>,
    curve: Curve,
    private: openpgp::crypto::mem::Protected,
    public: Vec<u8>,
    ecc_type: EccType,
}

impl Uploadable {
    fn new(key: Key<SecretParts, UnspecifiedRole>) -> Result<Self> {
        let secret = match key.optional_secret() {
            Some(openpgp::packet::key::SecretKeyMaterial::Unencrypted(u)) => u.map(|m| m.clone()),
            _ => {
                return Err(Error::BadKey(
                    "the list key is still locked: unlock it before moving it".into(),
                ))
            }
        };
        let (curve, scalar, q, ecc_type) = match (key.mpis(), secret) {
            (mpi::PublicKey::EdDSA { curve, q }, mpi::SecretKeyMaterial::EdDSA { scalar }) => {
                (curve.clone(), scalar, q.clone(), EccType::EdDSA)
            }
            (mpi::PublicKey::ECDH { curve, q, .. }, mpi::SecretKeyMaterial::ECDH { scalar }) => {
                (curve.clone(), scalar, q.clone(), EccType::ECDH)
            }
            (mpi::PublicKey::ECDSA { curve, q }, mpi::SecretKeyMaterial::ECDSA { scalar }) => {
                (curve.clone(), scalar, q.clone(), EccType::ECDSA)
            }
            _ => {
                return Err(Error::BadKey(format!(
                    "`card import` moves Ed25519, Cv25519 and NIST keys; this key is {} \
                     (move it with `gpg --edit-key` and `keytocard`, then `conclave card use`)",
                    key.pk_algo()
                )))
            }
        };
        let size = match curve {
            Curve::NistP384 => 48,
            Curve::NistP521 => 66,
            _ => 32,
        };
        Ok(Uploadable {
            private: scalar.value_padded(size),
            public: q.value().to_vec(),
            key,
            curve,
            ecc_type,
        })
    }
}

impl CardUploadableKey for Uploadable {
    fn private_key(&self) -> std::result::Result<PrivateKeyMaterial, openpgp_card::Error> {
        Ok(PrivateKeyMaterial::E(Box::new(EccParts {
            oid: self.curve.oid().to_vec(),
            private: self.private.clone(),
            public: self.public.clone(),
            ecc_type: self.ecc_type,
        })))
    }

    fn timestamp(&self) -> KeyGenerationTime {
        let secs = self
            .key
            .creation_time()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        KeyGenerationTime::from(u32::try_from(secs).unwrap_or(u32::MAX))
    }

    fn fingerprint(&self) -> std::result::Result<Fingerprint, openpgp_card::Error> {
        Fingerprint::try_from(self.key.fingerprint().as_bytes())
    }
}

struct EccParts {
    oid: Vec<u8>,
    private: openpgp::crypto::mem::Protected,
    public: Vec<u8>,
    ecc_type: EccType,
}

impl EccKey for EccParts {
    fn oid(&self) -> &[u8] {
        &self.oid
    }
    fn private(&self) -> &[u8] {
        &self.private
    }
    fn public(&self) -> &[u8] {
        &self.public
    }
    fn ecc_type(&self) -> EccType {
        self.ecc_type
    }
}

// ---------------------------------------------------------------------------
// Generating keys on a card.

/// The ECDH parameters of a Cv25519 key made on a card (as GnuPG uses).
const KDF_HASH: HashAlgorithm = HashAlgorithm::SHA256;
const KDF_SYM: SymmetricAlgorithm = SymmetricAlgorithm::AES128;

/// The OpenPGP key for a Curve25519 public key a card generated.
fn public_key(
    material: &PublicKeyMaterial,
    time: KeyGenerationTime,
    slot: KeyType,
) -> std::result::Result<Key<PublicParts, UnspecifiedRole>, String> {
    let PublicKeyMaterial::E(ecc) = material else {
        return Err("the card made an RSA key; Conclave generates Curve25519 keys".into());
    };
    let ctime = UNIX_EPOCH + Duration::from_secs(u64::from(time.get()));
    let key = match slot {
        KeyType::Signing => {
            Key4::<PublicParts, UnspecifiedRole>::import_public_ed25519(ecc.data(), ctime)
        }
        _ => Key4::<PublicParts, UnspecifiedRole>::import_public_cv25519(
            ecc.data(),
            KDF_HASH,
            KDF_SYM,
            ctime,
        ),
    }
    .map_err(|e| e.to_string())?;
    Ok(key.into())
}

/// For the card's key generation: the fingerprint it stores in the slot.
fn fingerprint_of(
    material: &PublicKeyMaterial,
    time: KeyGenerationTime,
    slot: KeyType,
) -> std::result::Result<Fingerprint, openpgp_card::Error> {
    let key = public_key(material, time, slot).map_err(openpgp_card::Error::InternalError)?;
    Fingerprint::try_from(key.fingerprint().as_bytes())
}

/// Generates an Ed25519 signing key and a Cv25519 decryption key on the card
/// `ident` (admin PIN), and builds the list certificate around them, its
/// self-signatures made by the card (user PIN). The card keeps the secrets.
pub fn generate(
    ident: &str,
    address: &str,
    name: &str,
    pins: &PinSource,
    now: SystemTime,
) -> Result<openpgp::Cert> {
    use openpgp_card::ocard::algorithm::AlgoSimple;
    let ident = ident.trim().to_ascii_uppercase();
    let ((sig_material, sig_time), (dec_material, dec_time)) = with_card(&ident, |tx| {
        verify(tx, &ident, pins, PinKind::Admin, false)?;
        let mut admin = tx.as_admin_card(None).map_err(|e| card_error(&ident, e))?;
        let mut make = |slot: KeyType| {
            admin
                .set_algorithm(slot, AlgoSimple::Curve25519)
                .map_err(|e| card_error(&ident, e))?;
            admin
                .generate_key(fingerprint_of, slot)
                .map_err(|e| card_error(&ident, e))
        };
        Ok((make(KeyType::Signing)?, make(KeyType::Decryption)?))
    })?;
    let primary = public_key(&sig_material, sig_time, KeyType::Signing).map_err(Error::BadKey)?;
    let subkey = public_key(&dec_material, dec_time, KeyType::Decryption).map_err(Error::BadKey)?;
    let keystore_cert = certify_card_keys(
        primary.clone(),
        subkey.clone(),
        address,
        name,
        now,
        &mut CardOp {
            ident: ident.clone(),
            public: primary,
            pins: pins.clone(),
            failure: Arc::new(Mutex::new(None)),
        },
    )?;
    Ok(keystore_cert)
}

/// Builds the list certificate around keys that live elsewhere (on a card):
/// `primary` certifies and signs, `subkey` encrypts, the User ID is the list
/// address, and `signer` (the primary key's) makes the self-signatures.
fn certify_card_keys(
    primary: PublicKey,
    subkey: PublicKey,
    address: &str,
    name: &str,
    now: SystemTime,
    signer: &mut dyn openpgp::crypto::Signer,
) -> Result<openpgp::Cert> {
    use openpgp::packet::signature::SignatureBuilder;
    use openpgp::types::SignatureType;
    let fail = |e: openpgp::anyhow::Error| Error::crypto("certify the card's keys", e);
    // A self-signature may not predate the keys it binds.
    let at = now.max(primary.creation_time()).max(subkey.creation_time());
    let primary = primary.role_into_primary();
    let subkey = subkey.role_into_subordinate();
    let cert = openpgp::Cert::try_from(vec![openpgp::Packet::from(primary)]).map_err(fail)?;
    let uid = super::keystore::list_user_id(name, address);
    let uid_sig = uid
        .bind(
            signer,
            &cert,
            super::renew::with_list_preferences(SignatureBuilder::new(
                SignatureType::PositiveCertification,
            ))
            .map_err(fail)?
            .set_signature_creation_time(at)
            .map_err(fail)?
            .set_key_flags(
                openpgp::types::KeyFlags::empty()
                    .set_certification()
                    .set_signing(),
            )
            .map_err(fail)?
            .set_key_validity_period(super::keystore::VALIDITY)
            .map_err(fail)?
            .set_primary_userid(true)
            .map_err(fail)?,
        )
        .map_err(fail)?;
    let sub_sig = subkey
        .bind(
            signer,
            &cert,
            openpgp::packet::signature::SignatureBuilder::new(SignatureType::SubkeyBinding)
                .set_signature_creation_time(at)
                .map_err(fail)?
                .set_key_flags(
                    openpgp::types::KeyFlags::empty()
                        .set_transport_encryption()
                        .set_storage_encryption(),
                )
                .map_err(fail)?
                .set_key_validity_period(super::keystore::VALIDITY)
                .map_err(fail)?,
        )
        .map_err(fail)?;
    let (cert, _) = cert
        .insert_packets(vec![
            openpgp::Packet::from(uid),
            uid_sig.into(),
            subkey.into(),
            sub_sig.into(),
        ])
        .map_err(fail)?;
    Ok(cert)
}
