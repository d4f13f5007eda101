//! Newer copies of a key the list already holds: a subscriber's key that
//! arrives again (an Autocrypt header, an attached key, WKD, a keyserver)
//! with a new expiry, new subkeys or a revocation. Such a copy is merged
//! into the key the list holds only when it is the same key (the same
//! primary fingerprint); a different key is a key change, never an update.
//! Of what it brings, only what the key's own primary key signed is kept:
//! certifications by other keys are dropped, so a flooded copy (thousands
//! of third-party signatures, as in the 2019 keyserver attack) costs
//! nothing. What changed is said in words for the owner.

use std::collections::BTreeMap;
use std::time::SystemTime;

use openpgp::cert::prelude::*;
use openpgp::packet::Packet;
use openpgp::types::RevocationStatus;
use openpgp::KeyHandle;
use sequoia_openpgp as openpgp;

use crate::error::{Error, Result};

use super::policy;

/// A same-key update worth storing, and what it changes.
#[derive(Debug, Clone)]
pub struct SameKeyUpdate {
    /// The key the list holds with the new material merged in.
    pub cert: Cert,
    /// What changed, one phrase each ("now expires on 2028-12-02").
    pub changes: Vec<String>,
}

/// Keeps of `cert` only the signatures its own primary key made
/// (self-signatures, subkey bindings, its own revocations); every
/// certification by another key is dropped.
pub fn own_signatures_only(cert: Cert) -> Result<Cert> {
    let primary = KeyHandle::from(cert.fingerprint());
    let packets: Vec<Packet> = cert
        .into_packets()
        .filter(|p| match p {
            Packet::Signature(sig) => sig.get_issuers().iter().any(|h| h.aliases(&primary)),
            _ => true,
        })
        .collect();
    Cert::from_packets(packets.into_iter()).map_err(|e| Error::crypto("rebuild a key", e))
}

/// Merges `offered` into `current` when it is the same key, keeping only
/// what the key itself signed. `Ok(None)` when it brings nothing new; an
/// error when it is another key (the fingerprints are named).
pub fn update(current: &Cert, offered: Cert, now: SystemTime) -> Result<Option<SameKeyUpdate>> {
    if offered.fingerprint() != current.fingerprint() {
        return Err(Error::BadKey(format!(
            "the key offered is {}, not the key {} the list holds; a different key is a key change",
            offered.fingerprint().to_hex(),
            current.fingerprint().to_hex()
        )));
    }
    let offered = own_signatures_only(offered.strip_secret_key_material())?;
    let merged = current
        .clone()
        .merge_public(offered)
        .map_err(|e| Error::crypto("merge a key", e))?;
    if merged == *current {
        return Ok(None);
    }
    let changes = changes(current, &merged, now);
    if changes.is_empty() {
        // New signatures that change nothing in force (a self-signature
        // made again with the same values): kept, said plainly.
        return Ok(Some(SameKeyUpdate {
            cert: merged,
            changes: vec!["new self-signatures, nothing else changed".into()],
        }));
    }
    Ok(Some(SameKeyUpdate {
        cert: merged,
        changes,
    }))
}

/// What a key looks like in force at one time, as far as the list cares.
#[derive(Debug, PartialEq, Eq)]
struct Shape {
    revoked: bool,
    /// The primary key's expiry (None: never), if the key is valid at all.
    expiry: Option<Option<SystemTime>>,
    /// Encryption subkeys in force: fingerprint → expiry.
    encryption: BTreeMap<String, Option<SystemTime>>,
    /// Valid User IDs.
    userids: Vec<String>,
}

fn shape(cert: &Cert, now: SystemTime) -> Shape {
    let revoked = matches!(
        cert.revocation_status(policy(), now),
        RevocationStatus::Revoked(_)
    );
    let Ok(vc) = cert.with_policy(policy(), now) else {
        return Shape {
            revoked,
            expiry: None,
            encryption: BTreeMap::new(),
            userids: Vec::new(),
        };
    };
    let expiry = Some(vc.primary_key().key_expiration_time());
    let encryption = vc
        .keys()
        .supported()
        .revoked(false)
        .for_transport_encryption()
        .map(|ka| (ka.key().fingerprint().to_hex(), ka.key_expiration_time()))
        .collect();
    let userids = vc
        .userids()
        .map(|ua| String::from_utf8_lossy(ua.userid().value()).into_owned())
        .collect();
    Shape {
        revoked,
        expiry,
        encryption,
        userids,
    }
}

fn when(t: Option<SystemTime>) -> String {
    match t {
        Some(t) => format!("expires on {}", crate::clock::iso_date(t)),
        None => "never expires".into(),
    }
}

/// The differences between two forms of one key, in words.
fn changes(before: &Cert, after: &Cert, now: SystemTime) -> Vec<String> {
    let (b, a) = (shape(before, now), shape(after, now));
    let mut out = Vec::new();
    if a.revoked && !b.revoked {
        out.push("the key is now revoked".to_string());
    }
    if a.expiry != b.expiry {
        if let Some(expiry) = a.expiry {
            out.push(format!("the key now {}", when(expiry)));
        }
    }
    for (fpr, expiry) in &a.encryption {
        match b.encryption.get(fpr) {
            None => out.push(format!(
                "new encryption subkey {fpr}, which {}",
                when(*expiry)
            )),
            Some(old) if old != expiry => {
                out.push(format!("encryption subkey {fpr} now {}", when(*expiry)))
            }
            Some(_) => {}
        }
    }
    for fpr in b.encryption.keys() {
        if !a.encryption.contains_key(fpr) {
            out.push(format!(
                "encryption subkey {fpr} is revoked or no longer valid"
            ));
        }
    }
    for uid in &a.userids {
        if !b.userids.contains(uid) {
            out.push(format!("new User ID {}", crate::text::clean(uid)));
        }
    }
    for uid in &b.userids {
        if !a.userids.contains(uid) {
            out.push(format!(
                "User ID {} is revoked or no longer valid",
                crate::text::clean(uid)
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use openpgp::packet::signature::SignatureBuilder;
    use openpgp::types::SignatureType;
    use std::time::Duration;

    fn key(addr: &str, now: SystemTime, valid: Duration) -> Cert {
        CertBuilder::general_purpose(Some(addr))
            .set_cipher_suite(CipherSuite::Cv25519)
            .set_creation_time(now - Duration::from_secs(60))
            .set_validity_period(valid)
            .generate()
            .unwrap()
            .0
    }

    /// The same key with its primary key's and subkeys' expiry moved.
    fn extended(cert: &Cert, now: SystemTime, until: SystemTime) -> Cert {
        let mut signer = cert
            .primary_key()
            .key()
            .clone()
            .parts_into_secret()
            .unwrap()
            .into_keypair()
            .unwrap();
        let vc = cert.with_policy(policy(), now).unwrap();
        let mut sigs = vc
            .primary_key()
            .set_expiration_time(&mut signer, Some(until))
            .unwrap();
        for ka in vc.keys().subkeys().for_transport_encryption() {
            sigs.extend(
                ka.set_expiration_time(&mut signer, None, Some(until))
                    .unwrap(),
            );
        }
        cert.clone().insert_packets(sigs).unwrap().0
    }

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn a_new_expiry_is_taken_and_said() {
        // The new self-signatures are made at the real time.
        let made = SystemTime::now();
        let cert = key("alice@example.org", made, 10 * DAY);
        let public = cert.clone().strip_secret_key_material();
        let until = made + 400 * DAY;
        let newer = extended(&cert, made, until).strip_secret_key_material();
        let now = made + Duration::from_secs(10);
        let up = update(&public, newer.clone(), now).unwrap().unwrap();
        let date = crate::clock::iso_date(until);
        assert!(
            up.changes
                .iter()
                .any(|c| c == &format!("the key now expires on {date}")),
            "{:?}",
            up.changes
        );
        assert!(up
            .changes
            .iter()
            .any(|c| c.starts_with("encryption subkey")));
        // Taken once: the same copy again brings nothing.
        assert!(update(&up.cert, newer, now).unwrap().is_none());
        // Still the usable key after the old expiry.
        let later = now + 30 * DAY;
        assert!(super::super::certs::encryption_keys(&public, later).is_err());
        assert!(super::super::certs::encryption_keys(&up.cert, later).is_ok());
    }

    #[test]
    fn a_revocation_is_taken_and_another_key_is_refused() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let (cert, rev) = CertBuilder::general_purpose(Some("bob@example.org"))
            .set_creation_time(now - Duration::from_secs(60))
            .generate()
            .unwrap();
        let public = cert.clone().strip_secret_key_material();
        let revoked = public.clone().insert_packets(Some(rev)).unwrap().0;
        let up = update(&public, revoked, now).unwrap().unwrap();
        assert!(
            up.changes.contains(&"the key is now revoked".to_string()),
            "{:?}",
            up.changes
        );
        let other = key("bob@example.org", now, 10 * DAY);
        let e = update(&public, other.clone(), now).unwrap_err().to_string();
        assert!(e.contains(&other.fingerprint().to_hex()), "{e}");
        assert!(e.contains(&public.fingerprint().to_hex()), "{e}");
    }

    #[test]
    fn certifications_by_other_keys_are_dropped() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let cert = key("carol@example.org", now, 100 * DAY);
        let public = cert.clone().strip_secret_key_material();
        let userid = public.userids().next().unwrap().userid().clone();
        let mut flooded = public.clone();
        for _ in 0..50 {
            let stranger = key("x@example.net", now, 100 * DAY);
            let mut signer = stranger
                .primary_key()
                .key()
                .clone()
                .parts_into_secret()
                .unwrap()
                .into_keypair()
                .unwrap();
            let sig = SignatureBuilder::new(SignatureType::GenericCertification)
                .set_signature_creation_time(now - Duration::from_secs(30))
                .unwrap()
                .sign_userid_binding(&mut signer, public.primary_key().key(), &userid)
                .unwrap();
            flooded = flooded
                .insert_packets(vec![Packet::from(userid.clone()), Packet::from(sig)])
                .unwrap()
                .0;
        }
        let certifications = |c: &Cert| {
            c.userids()
                .map(|ua| ua.certifications().count())
                .sum::<usize>()
        };
        assert_eq!(certifications(&flooded), 50);
        assert_eq!(
            certifications(&own_signatures_only(flooded.clone()).unwrap()),
            0
        );
        // Nothing but certifications: no update at all.
        assert!(update(&public, flooded, now).unwrap().is_none());
    }
}
