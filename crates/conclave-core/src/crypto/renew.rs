//! Keeping the list key's self-signatures current: what the list key
//! advertises (SEIPDv1 and SEIPDv2, the AEAD modes Conclave reads), and
//! certifying a key again when its self-signatures are out of date (made
//! with SHA-1, which the policy no longer accepts, or silent on AEAD).
//!
//! Only the list key is renewed here, with the secret key the list holds.
//! A subscriber's key is never changed by the list: [`super::certs`] says
//! why it is refused, and its holder renews it.

use std::time::SystemTime;

use openpgp::cert::prelude::*;
use openpgp::crypto::Signer;
use openpgp::packet::signature::SignatureBuilder;
use openpgp::policy::{HashAlgoSecurity, Policy};
use openpgp::types::{
    AEADAlgorithm, Features, HashAlgorithm, RevocationStatus, SymmetricAlgorithm,
};
use openpgp::{Cert, Packet};
use sequoia_openpgp as openpgp;

use crate::error::{Error, Result};

use super::{lenient_policy, policy};

/// The features a list key advertises: SEIPDv1 (every v4 client) and
/// SEIPDv2 (RFC 9580 AEAD).
pub fn list_features() -> Features {
    Features::empty().set_seipdv1().set_seipdv2()
}

/// The AEAD ciphersuites a list key advertises, best first. OCB is the
/// mode RFC 9580 makes mandatory; GCM is what WebCrypto-based clients
/// prefer. Conclave reads EAX too, but does not ask for it.
pub fn list_aead_suites() -> Vec<(SymmetricAlgorithm, AEADAlgorithm)> {
    vec![
        (SymmetricAlgorithm::AES256, AEADAlgorithm::OCB),
        (SymmetricAlgorithm::AES128, AEADAlgorithm::OCB),
        (SymmetricAlgorithm::AES256, AEADAlgorithm::GCM),
        (SymmetricAlgorithm::AES128, AEADAlgorithm::GCM),
    ]
}

/// Puts the list's preferences (features, AEAD ciphersuites, symmetric and
/// hash algorithms) on a self-signature about to be made.
pub fn with_list_preferences(builder: SignatureBuilder) -> openpgp::Result<SignatureBuilder> {
    builder
        .set_features(list_features())?
        .set_preferred_aead_ciphersuites(list_aead_suites())?
        .set_preferred_symmetric_algorithms(vec![
            SymmetricAlgorithm::AES256,
            SymmetricAlgorithm::AES128,
        ])?
        .set_preferred_hash_algorithms(vec![HashAlgorithm::SHA512, HashAlgorithm::SHA256])
}

/// Why the list key needs new self-signatures, in words for the log; empty
/// when it needs none. A key that is not valid even when SHA-1 is allowed
/// (expired, revoked, broken) is not something new signatures mend, and
/// gets an error instead.
pub fn reasons(cert: &Cert, now: SystemTime) -> Result<Vec<String>> {
    let lenient = lenient_policy();
    let vc = cert
        .with_policy(lenient, now)
        .map_err(|e| Error::BadKey(format!("the list key is not valid: {e}")))?;
    let mut out = Vec::new();
    let weak = self_signatures(&vc)
        .into_iter()
        .filter(|sig| {
            policy()
                .signature(sig, HashAlgoSecurity::SecondPreImageResistance)
                .is_err()
        })
        .map(|sig| sig.hash_algo().to_string())
        .collect::<std::collections::BTreeSet<_>>();
    if !weak.is_empty() {
        out.push(format!(
            "its self-signatures use {}, which is no longer accepted",
            weak.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    let advertises = vc
        .primary_userid()
        .map(|ua| ua.binding_signature().clone())
        .or_else(|_| vc.direct_key_signature().cloned())
        .map(|sig| {
            sig.features().is_some_and(|f| f.supports_seipdv2())
                && sig
                    .preferred_aead_ciphersuites()
                    .is_some_and(|s| s.iter().any(|(_, a)| *a == AEADAlgorithm::OCB))
        })
        .unwrap_or(false);
    if !advertises {
        out.push("it does not advertise the AEAD encryption (SEIPDv2, OCB) the list reads".into());
    }
    Ok(out)
}

/// When the newest self-signature in force was made. A key certified in
/// this very second cannot be certified again before the next one: a new
/// signature must be strictly newer to take over.
pub fn newest_self_signature(cert: &Cert, now: SystemTime) -> Option<SystemTime> {
    let vc = cert.with_policy(lenient_policy(), now).ok()?;
    self_signatures(&vc)
        .iter()
        .filter_map(|s| s.signature_creation_time())
        .max()
}

/// Whether a self-signature made at `now` would take over from those in
/// force: signature times have whole seconds, so the newest must be at
/// least a second older (a key certified this very second waits).
pub fn can_follow(cert: &Cert, now: SystemTime) -> bool {
    newest_self_signature(cert, now).is_none_or(|t| t + std::time::Duration::from_secs(1) <= now)
}

/// The self-signatures in force: the direct-key signature, each User ID's
/// binding that is not revoked, each subkey's binding.
fn self_signatures<'a>(vc: &'a ValidCert<'a>) -> Vec<&'a openpgp::packet::Signature> {
    let mut sigs = Vec::new();
    if let Ok(sig) = vc.direct_key_signature() {
        sigs.push(sig);
    }
    for ua in vc.userids() {
        if !matches!(ua.revocation_status(), RevocationStatus::Revoked(_)) {
            sigs.push(ua.binding_signature());
        }
    }
    for ka in vc.keys().subkeys() {
        if !matches!(ka.revocation_status(), RevocationStatus::Revoked(_)) {
            sigs.push(ka.binding_signature());
        }
    }
    sigs
}

/// Certifies `cert` again with `certifier` (its primary key): every User ID
/// and subkey binding in force, and the direct-key signature if it has one,
/// is made anew with SHA-512 at `now`, keeping what it said (flags, expiry)
/// and carrying the list's preferences. Returns the certificate with the
/// new signatures merged in. A signing subkey's binding also needs a new
/// back-signature by that subkey, which only `subkey_signer` can give; a
/// signing subkey it cannot sign for keeps its old binding.
pub fn recertify(
    cert: &Cert,
    certifier: &mut dyn Signer,
    subkey_signer: &mut dyn FnMut(&openpgp::Fingerprint) -> Option<Box<dyn Signer + Send + Sync>>,
    now: SystemTime,
) -> Result<Cert> {
    let fail = |e: openpgp::anyhow::Error| Error::crypto("certify the list key again", e);
    if certifier.public().fingerprint() != cert.fingerprint() {
        return Err(Error::BadKey(
            "the list key's primary key is not where the list can use it, so its self-signatures cannot be made again; use the tool that made the key".into(),
        ));
    }
    let lenient = lenient_policy();
    let vc = cert
        .with_policy(lenient, now)
        .map_err(|e| Error::BadKey(format!("the list key is not valid: {e}")))?;
    // A new signature must be newer than the one it replaces, and not in
    // the future, or the old one stays in force.
    if !can_follow(cert, now) {
        return Err(Error::BadKey(
            "the list key's self-signatures are not older than this machine's clock; try again in a moment".into(),
        ));
    }
    let at = now;
    let renew = |sig: &openpgp::packet::Signature| -> openpgp::Result<SignatureBuilder> {
        SignatureBuilder::from(sig.clone())
            .set_hash_algo(HashAlgorithm::SHA512)
            .set_signature_creation_time(at)
    };
    let mut packets: Vec<Packet> = Vec::new();
    if let Ok(sig) = vc.direct_key_signature() {
        let b = with_list_preferences(renew(sig).map_err(fail)?).map_err(fail)?;
        packets.push(b.sign_direct_key(certifier, None).map_err(fail)?.into());
    }
    for ua in vc.userids() {
        if matches!(ua.revocation_status(), RevocationStatus::Revoked(_)) {
            continue;
        }
        let b =
            with_list_preferences(renew(ua.binding_signature()).map_err(fail)?).map_err(fail)?;
        packets.push(ua.userid().bind(certifier, cert, b).map_err(fail)?.into());
    }
    for ka in vc.keys().subkeys() {
        if matches!(ka.revocation_status(), RevocationStatus::Revoked(_)) {
            continue;
        }
        let mut b = renew(ka.binding_signature()).map_err(fail)?;
        if ka.for_signing() {
            let Some(mut sub) = subkey_signer(&ka.key().fingerprint()) else {
                continue;
            };
            let backsig = SignatureBuilder::new(openpgp::types::SignatureType::PrimaryKeyBinding)
                .set_hash_algo(HashAlgorithm::SHA512)
                .set_signature_creation_time(at)
                .map_err(fail)?
                .sign_primary_key_binding(sub.as_mut(), cert.primary_key().key(), ka.key())
                .map_err(fail)?;
            b = b.set_embedded_signature(backsig).map_err(fail)?;
        }
        packets.push(ka.key().bind(certifier, cert, b).map_err(fail)?.into());
    }
    let (cert, _) = cert.clone().insert_packets(packets).map_err(fail)?;
    cert.with_policy(policy(), now).map_err(|e| {
        Error::BadKey(format!(
            "the list key is still not valid after it was certified again: {e}"
        ))
    })?;
    Ok(cert)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openpgp::packet::UserID;

    fn primary_signer(cert: &Cert) -> openpgp::crypto::KeyPair {
        cert.primary_key()
            .key()
            .clone()
            .parts_into_secret()
            .unwrap()
            .into_keypair()
            .unwrap()
    }

    /// A key like GnuPG made in 2016: every self-signature SHA-1.
    fn sha1_key(now: SystemTime) -> Cert {
        let created = now - std::time::Duration::from_secs(3600 * 24 * 365 * 9);
        let (cert, _) = CertBuilder::new()
            .set_cipher_suite(CipherSuite::Cv25519)
            .set_creation_time(created)
            .add_transport_encryption_subkey()
            .generate()
            .unwrap();
        let mut signer = primary_signer(&cert);
        let uid = UserID::from("old@example.test");
        let sig = SignatureBuilder::new(openpgp::types::SignatureType::PositiveCertification)
            .set_hash_algo(HashAlgorithm::SHA1)
            .set_signature_creation_time(created)
            .unwrap()
            .set_key_flags(
                openpgp::types::KeyFlags::empty()
                    .set_certification()
                    .set_signing(),
            )
            .unwrap();
        let sig = uid.bind(&mut signer, &cert, sig).unwrap();
        let sub = cert.keys().subkeys().next().unwrap().key().clone();
        let subsig = SignatureBuilder::new(openpgp::types::SignatureType::SubkeyBinding)
            .set_hash_algo(HashAlgorithm::SHA1)
            .set_signature_creation_time(created)
            .unwrap()
            .set_key_flags(openpgp::types::KeyFlags::empty().set_transport_encryption())
            .unwrap();
        let subsig = sub.bind(&mut signer, &cert, subsig).unwrap();
        // Only the SHA-1 signatures: drop what CertBuilder made.
        let primary = cert.primary_key().key().clone();
        Cert::try_from(vec![
            Packet::from(primary.role_into_primary()),
            uid.into(),
            sig.into(),
            sub.role_into_subordinate().into(),
            subsig.into(),
        ])
        .unwrap()
    }

    #[test]
    fn a_sha1_key_is_certified_again_with_sha512_and_the_aead_preferences() {
        let now = SystemTime::now();
        let cert = sha1_key(now);
        assert!(cert.with_policy(policy(), now).is_err(), "SHA-1 refused");
        let why = reasons(&cert.clone().strip_secret_key_material(), now).unwrap();
        assert!(why.iter().any(|w| w.contains("SHA1")), "{why:?}");
        let mut signer = primary_signer(&cert);
        let public = cert.clone().strip_secret_key_material();
        let renewed = recertify(&public, &mut signer, &mut |_| None, now).unwrap();
        let vc = renewed.with_policy(policy(), now).unwrap();
        assert!(crate::crypto::certs::speaks_for(
            &renewed,
            "old@example.test",
            now
        ));
        let uid_sig = vc.primary_userid().unwrap().binding_signature().clone();
        assert_eq!(uid_sig.hash_algo(), HashAlgorithm::SHA512);
        assert!(uid_sig.features().unwrap().supports_seipdv2());
        assert_eq!(
            uid_sig.preferred_aead_ciphersuites().unwrap(),
            &list_aead_suites()[..]
        );
        assert_eq!(vc.keys().subkeys().for_transport_encryption().count(), 1);
        assert!(reasons(&renewed, now).unwrap().is_empty());
    }

    #[test]
    fn a_generated_list_key_needs_no_renewal() {
        let now = SystemTime::now();
        let cert =
            crate::crypto::keystore::generate("l@example.test", "List", &"pw".into(), now).unwrap();
        assert_eq!(reasons(&cert, now).unwrap(), Vec::<String>::new());
    }
}
