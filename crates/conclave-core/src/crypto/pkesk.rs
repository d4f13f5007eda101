//! Recipient packets (v3 and v6 PKESK) for Cv25519 ECDH and RSA keys, made
//! fast: a fan-out makes one per subscriber, so they are the hot path.
//!
//! Through the crypto backend, each packet costs more than its public-key
//! work: Nettle seeded a fresh random generator for every packet, Botan
//! builds its key and generator objects for every packet. Here the X25519
//! ephemeral secret comes straight from the operating system's generator
//! and the rest follows RFC 6637 (ECDH with the OpenPGP KDF and AES key
//! wrap), as RFC 9580 section 5.1.6 describes; RSA is Nettle's PKCS#1 v1.5
//! encryption with a generator seeded once per thread. Other keys (NIST
//! curves, X25519 v6 keys) take the backend's path.

use openpgp::crypto::mem::Protected;
use openpgp::crypto::mpi::{self, Ciphertext, MPI};
use openpgp::crypto::SessionKey;
use openpgp::packet::key::{PublicParts, UnspecifiedRole};
use openpgp::packet::pkesk::{PKESK3, PKESK6};
use openpgp::packet::Key;
use openpgp::types::{Curve, PublicKeyAlgorithm, SymmetricAlgorithm};
use sequoia_openpgp as openpgp;

use crate::error::{Error, Result};

const SIZE: usize = 32;

/// A v3 PKESK giving `session_key` (for `sym`) to `key`, or None when `key`
/// is neither a Cv25519 ECDH nor an RSA key (the caller then uses the
/// generic path).
pub fn pkesk3(
    sym: SymmetricAlgorithm,
    session_key: &SessionKey,
    key: &Key<PublicParts, UnspecifiedRole>,
) -> Result<Option<PKESK3>> {
    let Some((algo, esk)) = wrap(Some(sym), session_key, key)? else {
        return Ok(None);
    };
    PKESK3::new(Some(key.keyid()), algo, esk)
        .map(Some)
        .map_err(|e| Error::crypto("encrypt to a subscriber", e))
}

/// A v6 PKESK (for SEIPDv2) giving `session_key` to `key`, or None when
/// `key` is neither a Cv25519 ECDH nor an RSA key.
pub fn pkesk6(
    session_key: &SessionKey,
    key: &Key<PublicParts, UnspecifiedRole>,
) -> Result<Option<PKESK6>> {
    let Some((algo, esk)) = wrap(None, session_key, key)? else {
        return Ok(None);
    };
    PKESK6::new(Some(key.fingerprint()), algo, esk)
        .map(Some)
        .map_err(|e| Error::crypto("encrypt to a subscriber", e))
}

/// The session key, with its algorithm octet (v3 packets) and checksum,
/// encrypted to `key`: ECDH for Cv25519, PKCS#1 v1.5 for RSA.
fn wrap(
    sym: Option<SymmetricAlgorithm>,
    session_key: &SessionKey,
    key: &Key<PublicParts, UnspecifiedRole>,
) -> Result<Option<(PublicKeyAlgorithm, Ciphertext)>> {
    match key.pk_algo() {
        PublicKeyAlgorithm::ECDH => {
            Ok(ecdh(sym, session_key, key)?.map(|c| (PublicKeyAlgorithm::ECDH, c)))
        }
        algo @ PublicKeyAlgorithm::RSAEncryptSign => {
            Ok(rsa(sym, session_key, key)?.map(|c| (algo, c)))
        }
        _ => Ok(None),
    }
}

/// `[algorithm ||] session key || checksum`, what both methods encrypt.
fn session_key_material(sym: Option<SymmetricAlgorithm>, session_key: &SessionKey) -> Vec<u8> {
    let mut m: Vec<u8> = Vec::with_capacity(40);
    if let Some(sym) = sym {
        m.push(sym.into());
    }
    m.extend_from_slice(session_key);
    let checksum = session_key
        .iter()
        .map(|b| u16::from(*b))
        .fold(0u16, u16::wrapping_add);
    m.extend_from_slice(&checksum.to_be_bytes());
    m
}

/// RSA: PKCS#1 v1.5 encryption of the session key material (RFC 9580,
/// section 5.1.4), with Nettle and a generator seeded once per thread.
fn rsa(
    sym: Option<SymmetricAlgorithm>,
    session_key: &SessionKey,
    key: &Key<PublicParts, UnspecifiedRole>,
) -> Result<Option<Ciphertext>> {
    let mpi::PublicKey::RSA { e, n } = key.mpis() else {
        return Ok(None);
    };
    let fail = |e: nettle::Error| Error::crypto("encrypt to a subscriber", e);
    let public = nettle::rsa::PublicKey::new(n.value(), e.value()).map_err(fail)?;
    let m: Protected = session_key_material(sym, session_key).into();
    let mut c = vec![0u8; n.value().len()];
    THREAD_RNG
        .with(|rng| nettle::rsa::encrypt_pkcs1(&public, &mut *rng.borrow_mut(), &m, &mut c))
        .map_err(fail)?;
    Ok(Some(Ciphertext::RSA { c: MPI::new(&c) }))
}

thread_local! {
    /// Nettle's Yarrow, seeded from the operating system once per thread:
    /// the random padding of RSA packets.
    static THREAD_RNG: std::cell::RefCell<nettle::random::Yarrow> =
        std::cell::RefCell::new(nettle::random::Yarrow::default());
}

/// ECDH-wraps the session key; `sym` is the algorithm octet that v3 packets
/// put in front of the key (v6 packets carry none).
fn ecdh(
    sym: Option<SymmetricAlgorithm>,
    session_key: &SessionKey,
    key: &Key<PublicParts, UnspecifiedRole>,
) -> Result<Option<Ciphertext>> {
    let (q, hash, kek) = match key.mpis() {
        mpi::PublicKey::ECDH {
            curve: Curve::Cv25519,
            q,
            hash,
            sym,
        } => (q, *hash, *sym),
        _ => return Ok(None),
    };
    let raw = Cv25519Key {
        point: q.value(),
        hash,
        kek,
        fingerprint: key.fingerprint(),
    };
    ecdh_raw(sym, session_key, &raw).map(Some)
}

/// A Cv25519 ECDH encryption key as the fan-out keeps it: its point
/// (`0x40` and 32 bytes), KDF parameters and fingerprint, read straight
/// from its packet without building a Sequoia key.
#[derive(Debug, Clone)]
pub struct Cv25519Key<'a> {
    /// The point as the key's MPI holds it.
    pub point: &'a [u8],
    /// The KDF's hash.
    pub hash: openpgp::types::HashAlgorithm,
    /// The key-wrapping cipher.
    pub kek: SymmetricAlgorithm,
    /// The subkey's fingerprint.
    pub fingerprint: openpgp::Fingerprint,
}

impl Cv25519Key<'_> {
    /// A v3 PKESK giving `session_key` (for `sym`) to this key.
    pub fn pkesk3(&self, sym: SymmetricAlgorithm, session_key: &SessionKey) -> Result<PKESK3> {
        let esk = ecdh_raw(Some(sym), session_key, self)?;
        PKESK3::new(
            Some(openpgp::KeyID::from(&self.fingerprint)),
            PublicKeyAlgorithm::ECDH,
            esk,
        )
        .map_err(|e| Error::crypto("encrypt to a subscriber", e))
    }

    /// A v6 PKESK (for SEIPDv2) giving `session_key` to this key.
    pub fn pkesk6(&self, session_key: &SessionKey) -> Result<PKESK6> {
        let esk = ecdh_raw(None, session_key, self)?;
        PKESK6::new(
            Some(self.fingerprint.clone()),
            PublicKeyAlgorithm::ECDH,
            esk,
        )
        .map_err(|e| Error::crypto("encrypt to a subscriber", e))
    }
}

/// The ECDH wrap of the session key for a Cv25519 key (RFC 6637).
fn ecdh_raw(
    sym: Option<SymmetricAlgorithm>,
    session_key: &SessionKey,
    key: &Cv25519Key<'_>,
) -> Result<Ciphertext> {
    let (hash, kek) = (key.hash, key.kek);
    // The recipient's point: 0x40 followed by 32 bytes.
    let recipient = match key.point.split_first() {
        Some((0x40, rest)) if rest.len() == SIZE => rest,
        _ => {
            return Err(Error::BadKey(format!(
                "{} has a malformed Cv25519 point",
                key.fingerprint
            )))
        }
    };

    // The ephemeral secret, clamped as X25519 requires.
    let mut v: Protected = vec![0u8; SIZE].into();
    getrandom::getrandom(&mut v).map_err(|e| Error::crypto("draw random bytes", e))?;
    if let Some(b) = v.first_mut() {
        *b &= 0b1111_1000;
    }
    if let Some(b) = v.last_mut() {
        *b = (*b & 0b0111_1111) | 0b0100_0000;
    }
    let mut ephemeral = [0u8; SIZE];
    nettle::curve25519::mul_g(&mut ephemeral, &v)
        .map_err(|e| Error::crypto("encrypt to a subscriber", e))?;
    let mut shared: Protected = vec![0u8; SIZE].into();
    nettle::curve25519::mul(&mut shared, &v, recipient)
        .map_err(|e| Error::crypto("encrypt to a subscriber", e))?;
    if shared.iter().all(|b| *b == 0) {
        return Err(Error::BadKey(format!(
            "{} has a Cv25519 point of low order",
            key.fingerprint
        )));
    }

    // m = [algorithm ||] session key || checksum, padded to 40 bytes (PKCS#5).
    let mut m = session_key_material(sym, session_key);
    let pad = 40usize
        .checked_sub(m.len())
        .filter(|p| *p > 0)
        .ok_or_else(|| Error::crypto("encrypt to a subscriber", "session key too long"))?;
    m.resize(40, u8::try_from(pad).unwrap_or(0));
    let m: Protected = m.into();

    // Z = KDF(S, param), the key-encryption key (RFC 6637, section 7).
    let fpr = &key.fingerprint;
    let oid = Curve::Cv25519.oid();
    let mut param = Vec::with_capacity(1 + oid.len() + 1 + 4 + 20 + fpr.as_bytes().len());
    param.push(u8::try_from(oid.len()).unwrap_or(0));
    param.extend_from_slice(oid);
    param.push(PublicKeyAlgorithm::ECDH.into());
    param.extend_from_slice(&[3, 1, hash.into(), kek.into()]);
    param.extend_from_slice(b"Anonymous Sender    ");
    param.extend_from_slice(fpr.as_bytes());
    let key_size = kek
        .key_size()
        .map_err(|e| Error::crypto("encrypt to a subscriber", e))?;
    let mut ctx = hash
        .context()
        .map_err(|e| Error::crypto("encrypt to a subscriber", e))?
        .for_digest();
    if key_size > ctx.digest_size() {
        return Err(Error::crypto(
            "encrypt to a subscriber",
            "KDF hash too short for the wrapping cipher",
        ));
    }
    ctx.update(&[0, 0, 0, 1]);
    ctx.update(&shared);
    ctx.update(&param);
    let mut z: Protected = vec![0u8; key_size].into();
    ctx.digest(&mut z)
        .map_err(|e| Error::crypto("encrypt to a subscriber", e))?;

    let wrapped = openpgp::crypto::ecdh::aes_key_wrap(kek, &z, &m)
        .map_err(|e| Error::crypto("encrypt to a subscriber", e))?;
    let mut e = Vec::with_capacity(SIZE + 1);
    e.push(0x40);
    e.extend_from_slice(&ephemeral);
    Ok(Ciphertext::ECDH {
        e: MPI::new(&e),
        key: wrapped.into_boxed_slice(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use openpgp::cert::prelude::*;
    use openpgp::packet::PKESK;

    /// Both packet versions open with the recipient's secret key, for
    /// Cv25519 and for RSA.
    #[test]
    fn round_trips_with_the_recipient_key() {
        for suite in [CipherSuite::Cv25519, CipherSuite::RSA3k] {
            let (cert, _) = CertBuilder::general_purpose(Some("r@example.test"))
                .set_cipher_suite(suite)
                .generate()
                .unwrap();
            let p = openpgp::policy::StandardPolicy::new();
            let ka = cert
                .keys()
                .with_policy(&p, None)
                .secret()
                .for_transport_encryption()
                .next()
                .unwrap();
            let public = ka.key().clone().parts_into_public().role_into_unspecified();
            let sk = SessionKey::new(32).unwrap();
            for _ in 0..20 {
                let pkesk = pkesk3(SymmetricAlgorithm::AES256, &sk, &public)
                    .unwrap()
                    .unwrap();
                let mut pair = ka.key().clone().into_keypair().unwrap();
                let (algo, got) = PKESK::from(pkesk)
                    .decrypt(&mut pair, None)
                    .expect("the recipient opens it");
                assert_eq!(algo, Some(SymmetricAlgorithm::AES256), "{suite:?}");
                assert_eq!(&got[..], &sk[..]);
                let pkesk = pkesk6(&sk, &public).unwrap().unwrap();
                let (algo, got) = PKESK::from(pkesk)
                    .decrypt(&mut pair, None)
                    .expect("v6 opens too");
                assert_eq!(algo, None);
                assert_eq!(&got[..], &sk[..]);
            }
        }
    }

    #[test]
    fn other_keys_go_the_generic_way() {
        let (cert, _) = CertBuilder::general_purpose(Some("r@example.test"))
            .set_cipher_suite(CipherSuite::P256)
            .generate()
            .unwrap();
        let p = openpgp::policy::StandardPolicy::new();
        let key = cert
            .keys()
            .with_policy(&p, None)
            .for_transport_encryption()
            .next()
            .unwrap()
            .key()
            .clone()
            .role_into_unspecified();
        assert!(pkesk3(
            SymmetricAlgorithm::AES256,
            &SessionKey::new(32).unwrap(),
            &key
        )
        .unwrap()
        .is_none());
    }

    /// What a fan-out keeps of a key reads back as the same key: a
    /// Cv25519 key straight from its packet, with the fingerprint that
    /// names it, and the packets made that way open with the secret key;
    /// an RSA key is left to the parser.
    #[test]
    fn kept_keys_read_back_as_the_same_keys() {
        use crate::crypto::certs;
        let now = std::time::SystemTime::now();
        for suite in [CipherSuite::Cv25519, CipherSuite::RSA3k] {
            let (cert, _) = CertBuilder::general_purpose(Some("r@example.test"))
                .set_cipher_suite(suite)
                .generate()
                .unwrap();
            let derived = certs::recipient(&cert, now).unwrap();
            let kept = certs::kept_keys(&derived.keys).unwrap();
            assert_eq!(kept.len(), 1);
            let parsed = kept[0].key().unwrap();
            assert_eq!(parsed.fingerprint(), kept[0].fingerprint);
            let p = openpgp::policy::StandardPolicy::new();
            let ka = cert
                .keys()
                .with_policy(&p, None)
                .secret()
                .for_transport_encryption()
                .next()
                .unwrap();
            assert_eq!(ka.key().fingerprint(), kept[0].fingerprint);
            let fast = kept[0].cv25519();
            if suite == CipherSuite::RSA3k {
                assert!(fast.is_none());
                continue;
            }
            let fast = fast.expect("a Cv25519 key is read straight from its packet");
            let mpi::PublicKey::ECDH { q, hash, sym, .. } = parsed.mpis() else {
                panic!("not ECDH");
            };
            assert_eq!(fast.point, q.value());
            assert_eq!((fast.hash, fast.kek), (*hash, *sym));
            let sk = SessionKey::new(32).unwrap();
            let mut pair = ka.key().clone().into_keypair().unwrap();
            let (algo, got) = PKESK::from(fast.pkesk3(SymmetricAlgorithm::AES256, &sk).unwrap())
                .decrypt(&mut pair, None)
                .expect("the recipient opens it");
            assert_eq!(algo, Some(SymmetricAlgorithm::AES256));
            assert_eq!(&got[..], &sk[..]);
            let (_, got) = PKESK::from(fast.pkesk6(&sk).unwrap())
                .decrypt(&mut pair, None)
                .expect("v6 opens too");
            assert_eq!(&got[..], &sk[..]);
        }
        // Cut short or padded, the kept keys are refused, never misread.
        let (cert, _) = CertBuilder::general_purpose(Some("r@example.test"))
            .generate()
            .unwrap();
        let derived = certs::recipient(&cert, now).unwrap();
        for cut in 1..derived.keys.len() {
            assert!(certs::kept_keys(&derived.keys[..cut]).is_err(), "{cut}");
        }
    }
}
