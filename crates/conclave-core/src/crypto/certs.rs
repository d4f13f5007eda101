//! Certificates: parsing subscriber keys, choosing encryption subkeys, and
//! checking that a certificate speaks for an address.

use std::time::SystemTime;

use openpgp::cert::prelude::*;
use openpgp::packet::key::{PublicParts, UnspecifiedRole};
use openpgp::packet::Key;
use openpgp::parse::Parse;
use openpgp::serialize::SerializeInto;
use openpgp::types::RevocationStatus;
use sequoia_openpgp as openpgp;

use crate::error::{Error, Result};

use super::{lenient_policy, policy};

/// Parses exactly one certificate (armored or binary), without secret parts.
pub fn parse_public_cert(bytes: &[u8]) -> Result<Cert> {
    let mut certs = CertParser::from_bytes(bytes)
        .map_err(|e| Error::BadKey(format!("cannot read the key: {e}")))?
        .collect::<Vec<_>>();
    if certs.len() != 1 {
        return Err(Error::BadKey(format!(
            "expected one key, found {}",
            certs.len()
        )));
    }
    let cert = certs
        .pop()
        .ok_or_else(|| Error::BadKey("no key found".into()))?;
    let cert = cert.map_err(|e| Error::BadKey(format!("cannot read the key: {e}")))?;
    Ok(cert.strip_secret_key_material())
}

/// The e-mail addresses in a certificate's valid User IDs, lowercased.
pub fn addresses(cert: &Cert, now: SystemTime) -> Vec<String> {
    addresses_under(cert, policy(), now)
}

/// [`addresses`] under another policy.
fn addresses_under(
    cert: &Cert,
    policy: &dyn openpgp::policy::Policy,
    now: SystemTime,
) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(vc) = cert.with_policy(policy, now) else {
        return out;
    };
    for ua in vc.userids() {
        if let Ok(Some(email)) = ua.userid().email_normalized() {
            out.push(email);
        } else if let Ok(s) = std::str::from_utf8(ua.userid().value()) {
            // A bare address as the whole User ID.
            let s = s
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_ascii_lowercase();
            if s.contains('@') && !s.contains(' ') {
                out.push(s);
            }
        }
    }
    out
}

/// The name in the valid User ID of `cert` that carries `address`
/// (`Alice` of `Alice <alice@example.org>`), cleaned of control characters;
/// None when that User ID has no name.
pub fn name_for(cert: &Cert, address: &str, now: SystemTime) -> Option<String> {
    let address = address.to_ascii_lowercase();
    let vc = cert.with_policy(policy(), now).ok()?;
    vc.userids()
        .filter(|ua| {
            ua.userid()
                .email_normalized()
                .ok()
                .flatten()
                .is_some_and(|e| e == address)
        })
        .find_map(|ua| ua.userid().name().ok().flatten().map(crate::text::clean))
        .filter(|n| !n.is_empty())
}

/// True if a valid User ID of `cert` carries `address`.
pub fn speaks_for(cert: &Cert, address: &str, now: SystemTime) -> bool {
    let address = address.to_ascii_lowercase();
    addresses(cert, now).contains(&address)
}

/// The keys of `cert` that may receive encrypted mail now; otherwise an
/// error that says exactly why not ([`refusal`]).
pub fn encryption_keys(
    cert: &Cert,
    now: SystemTime,
) -> Result<Vec<Key<PublicParts, UnspecifiedRole>>> {
    let keys: Vec<_> = cert
        .with_policy(policy(), now)
        .ok()
        .filter(|vc| !matches!(vc.revocation_status(), RevocationStatus::Revoked(_)))
        .filter(|vc| vc.alive().is_ok())
        .map(|vc| {
            vc.keys()
                .supported()
                .alive()
                .revoked(false)
                .for_transport_encryption()
                .map(|ka| ka.key().clone().role_into_unspecified())
                .collect()
        })
        .unwrap_or_default();
    if keys.is_empty() {
        return Err(Error::BadKey(format!(
            "the key {} cannot be used: {}",
            cert.fingerprint(),
            refusal(cert, "", now)
        )));
    }
    Ok(keys)
}

/// Why `cert` cannot receive the list's mail for `address` (or for any
/// address, when `address` is empty), in words the owner can pass on:
/// revoked, expired, bound with SHA-1, no encryption subkey, no User ID for
/// the address. Only meant for a key that was refused.
pub fn refusal(cert: &Cert, address: &str, now: SystemTime) -> String {
    let fpr = cert.fingerprint().to_hex();
    let renew = |what: &str, extra: &str| {
        format!(
            "{what} is bound with SHA-1, which is no longer accepted; the subscriber can renew it with `gpg --quick-set-expire {fpr} 2y{extra}`"
        )
    };
    let vc = match cert.with_policy(policy(), now) {
        Ok(vc) => vc,
        Err(e) => {
            if let RevocationStatus::Revoked(_) = cert.revocation_status(policy(), now) {
                return "it is revoked".into();
            }
            if cert.primary_key().key().creation_time() > now {
                return "it was made in the future (the subscriber's clock is wrong)".into();
            }
            if cert.with_policy(lenient_policy(), now).is_ok() {
                return renew("its User ID", "");
            }
            return format!("it is not valid: {e}");
        }
    };
    if let RevocationStatus::Revoked(_) = vc.revocation_status() {
        return "it is revoked".into();
    }
    if vc.alive().is_err() {
        return match vc.primary_key().key_expiration_time() {
            Some(t) => format!("it expired on {}", crate::clock::rfc5322(t)),
            None => "it has expired".into(),
        };
    }
    if !address.is_empty() && !speaks_for(cert, address, now) {
        let address = address.to_ascii_lowercase();
        if addresses_under(cert, lenient_policy(), now).contains(&address) {
            return renew(&format!("its User ID for {address}"), "");
        }
        let found = addresses(cert, now);
        return format!(
            "it has no valid User ID for {address} (it has: {})",
            if found.is_empty() {
                "none".to_string()
            } else {
                found.join(", ")
            }
        );
    }
    let encrypting = |p: &dyn openpgp::policy::Policy| {
        cert.keys()
            .with_policy(p, now)
            .for_transport_encryption()
            .map(|ka| ka.key().fingerprint())
            .collect::<Vec<_>>()
    };
    let bound = encrypting(policy());
    if bound.is_empty() {
        if !encrypting(lenient_policy()).is_empty() {
            return renew("its encryption subkey", " '*'");
        }
        return "it has no encryption subkey".into();
    }
    let usable = vc
        .keys()
        .for_transport_encryption()
        .revoked(false)
        .collect::<Vec<_>>();
    if usable.is_empty() {
        return "its encryption subkey is revoked".into();
    }
    if usable.iter().all(|ka| ka.alive().is_err()) {
        return match usable
            .iter()
            .filter_map(|ka| ka.key_expiration_time())
            .max()
        {
            Some(t) => format!(
                "its encryption subkey expired on {}",
                crate::clock::rfc5322(t)
            ),
            None => "its encryption subkey has expired".into(),
        };
    }
    "its encryption subkey uses an algorithm the list cannot encrypt to".into()
}

/// True if the certificate advertises SEIPDv2 (RFC 9580 AEAD encryption).
pub fn wants_seipd_v2(cert: &Cert, now: SystemTime) -> bool {
    cert.with_policy(policy(), now)
        .ok()
        .and_then(|vc| vc.features())
        .map(|f| f.supports_seipdv2())
        .unwrap_or(false)
}

/// A certificate's armored form.
pub fn armored(cert: &Cert) -> Result<Vec<u8>> {
    cert.armored()
        .to_vec()
        .map_err(|e| Error::crypto("serialise a key", e))
}

/// A certificate's binary form.
pub fn binary(cert: &Cert) -> Result<Vec<u8>> {
    cert.to_vec()
        .map_err(|e| Error::crypto("serialise a key", e))
}

/// The smallest form of the list certificate fit for an Autocrypt header:
/// the primary key, the User ID with the address, and the encryption subkeys.
pub fn autocrypt_keydata(cert: &Cert, address: &str, now: SystemTime) -> Result<Vec<u8>> {
    let address = address.to_ascii_lowercase();
    let minimal = cert.clone().retain_userids(|ua| {
        ua.userid()
            .email_normalized()
            .ok()
            .flatten()
            .map(|e| e == address)
            .unwrap_or(false)
            || String::from_utf8_lossy(ua.userid().value())
                .trim()
                .eq_ignore_ascii_case(&address)
    });
    let vc_ok = minimal.with_policy(policy(), now).is_ok();
    let minimal = if vc_ok {
        minimal.retain_subkeys(|ka| {
            ka.clone()
                .with_policy(policy(), now)
                .map(|vka| vka.for_transport_encryption())
                .unwrap_or(false)
        })
    } else {
        cert.clone()
    };
    binary(&minimal)
}

/// What a fan-out needs of a subscriber's key, derived from the
/// certificate once, when the key is stored, so that a post to many
/// subscribers neither parses nor holds their certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The public encryption subkeys to use, as OpenPGP public subkey
    /// packets (empty: the key cannot be encrypted to).
    pub keys: Vec<u8>,
    /// Whether the key asks for SEIPDv2.
    pub seipd_v2: bool,
    /// From when this choice holds (Unix seconds): when it was derived.
    pub usable_from: i64,
    /// Until when it holds: the first expiry among the certificate and the
    /// chosen subkeys (None: no end).
    pub usable_until: Option<i64>,
}

/// Derives what a fan-out needs of `cert` at `now`.
pub fn recipient(cert: &Cert, now: SystemTime) -> Result<Recipient> {
    use openpgp::serialize::Marshal;
    let keys = encryption_keys(cert, now).unwrap_or_default();
    let unix = crate::clock::unix;
    let mut until: Option<SystemTime> = None;
    let mut earliest = |t: Option<SystemTime>| {
        if let Some(t) = t {
            until = Some(until.map_or(t, |u| u.min(t)));
        }
    };
    let mut out = Vec::with_capacity(keys.len() * 96);
    if !keys.is_empty() {
        if let Ok(vc) = cert.with_policy(policy(), now) {
            earliest(vc.primary_key().key_expiration_time());
            for ka in vc.keys().for_transport_encryption() {
                if keys
                    .iter()
                    .any(|k| k.fingerprint() == ka.key().fingerprint())
                {
                    earliest(ka.key_expiration_time());
                }
            }
        }
        for key in &keys {
            let packet = openpgp::Packet::PublicSubkey(key.clone().role_into_subordinate());
            let mut bytes = Vec::with_capacity(64);
            packet
                .serialize(&mut bytes)
                .map_err(|e| Error::crypto("keep a subscriber's encryption keys", e))?;
            keep_key(&mut out, &key.fingerprint(), &bytes)?;
        }
    }
    Ok(Recipient {
        keys: out,
        seipd_v2: wants_seipd_v2(cert, now),
        usable_from: unix(now),
        usable_until: until.map(unix),
    })
}

/// Appends one key to a [`Recipient`]'s keys: its fingerprint (version,
/// length, bytes) and its packet (length, bytes), so that a fan-out reads
/// both without parsing OpenPGP or hashing.
fn keep_key(out: &mut Vec<u8>, fingerprint: &openpgp::Fingerprint, packet: &[u8]) -> Result<()> {
    let version = match fingerprint {
        openpgp::Fingerprint::V4(_) => 4,
        openpgp::Fingerprint::V6(_) => 6,
        _ => {
            return Err(Error::BadKey(format!(
                "the key {fingerprint} has a fingerprint of an unknown version"
            )))
        }
    };
    let fpr = fingerprint.as_bytes();
    let (Ok(fpr_len), Ok(len)) = (u8::try_from(fpr.len()), u16::try_from(packet.len())) else {
        return Err(Error::BadKey(format!(
            "the key {fingerprint} is too large to keep"
        )));
    };
    out.push(version);
    out.push(fpr_len);
    out.extend_from_slice(fpr);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(packet);
    Ok(())
}

/// One encryption key kept in a [`Recipient`]: its fingerprint and its
/// public subkey packet.
#[derive(Debug, Clone)]
pub struct KeptKey<'a> {
    /// The key's fingerprint.
    pub fingerprint: openpgp::Fingerprint,
    /// The key as a public subkey packet (header included).
    pub packet: &'a [u8],
}

/// The object identifier of Curve25519 for ECDH (RFC 6637).
const CV25519_OID: [u8; 10] = [0x2b, 0x06, 0x01, 0x04, 0x01, 0x97, 0x55, 0x01, 0x05, 0x01];

impl KeptKey<'_> {
    /// The key as a Cv25519 ECDH key, read straight from a v4 packet laid
    /// out as Sequoia and GnuPG write it; None for any other key or layout
    /// (the caller then parses the packet).
    pub fn cv25519(&self) -> Option<super::pkesk::Cv25519Key<'_>> {
        // A new-format header for a public subkey (tag 14), one-octet length.
        let (&ctb, rest) = self.packet.split_first()?;
        let (&len, body) = rest.split_first()?;
        if ctb != 0xc0 | 14 || usize::from(len) != body.len() || len >= 192 {
            return None;
        }
        // version 4, creation time, ECDH (18), the curve's OID.
        let (head, rest) = body.split_at_checked(6)?;
        if head.first() != Some(&4) || head.get(5) != Some(&18) {
            return None;
        }
        let (&oid_len, rest) = rest.split_first()?;
        let (oid, rest) = rest.split_at_checked(usize::from(oid_len))?;
        if oid != CV25519_OID {
            return None;
        }
        // The point: an MPI of 263 bits, 0x40 and 32 bytes.
        let (bits, rest) = rest.split_at_checked(2)?;
        if bits != [0x01, 0x07] {
            return None;
        }
        let (point, rest) = rest.split_at_checked(33)?;
        // The KDF parameters: length 3, reserved 1, hash, cipher.
        let [3, 1, hash, kek] = *rest else {
            return None;
        };
        let fingerprint = match &self.fingerprint {
            f @ openpgp::Fingerprint::V4(_) => f.clone(),
            _ => return None,
        };
        Some(super::pkesk::Cv25519Key {
            point,
            hash: hash.into(),
            kek: kek.into(),
            fingerprint,
        })
    }

    /// The key, parsed.
    pub fn key(&self) -> Result<Key<PublicParts, UnspecifiedRole>> {
        use openpgp::parse::Parse;
        let bad =
            |e: openpgp::anyhow::Error| Error::crypto("read a subscriber's encryption keys", e);
        match openpgp::Packet::from_bytes(self.packet).map_err(bad)? {
            openpgp::Packet::PublicSubkey(k) => Ok(k.role_into_unspecified()),
            other => Err(Error::crypto(
                "read a subscriber's encryption keys",
                format!("unexpected {} packet", other.tag()),
            )),
        }
    }
}

/// The keys kept in a [`Recipient`] (see [`keep_key`]).
pub fn kept_keys(bytes: &[u8]) -> Result<Vec<KeptKey<'_>>> {
    let bad = || {
        Error::crypto(
            "read a subscriber's encryption keys",
            "the kept keys are cut short",
        )
    };
    let mut keys = Vec::with_capacity(1);
    let mut rest = bytes;
    while let Some((&version, r)) = rest.split_first() {
        let (&fpr_len, r) = r.split_first().ok_or_else(bad)?;
        let (fpr, r) = r.split_at_checked(usize::from(fpr_len)).ok_or_else(bad)?;
        let (len, r) = r.split_at_checked(2).ok_or_else(bad)?;
        let len = u16::from_be_bytes([
            len.first().copied().unwrap_or(0),
            len.get(1).copied().unwrap_or(0),
        ]);
        let (packet, r) = r.split_at_checked(usize::from(len)).ok_or_else(bad)?;
        let fingerprint = openpgp::Fingerprint::from_bytes(version, fpr)
            .map_err(|e| Error::crypto("read a subscriber's encryption keys", e))?;
        keys.push(KeptKey {
            fingerprint,
            packet,
        });
        rest = r;
    }
    Ok(keys)
}

/// Every key ID of `cert` (primary key and subkeys), in hex: a signature
/// names one of them as its issuer.
pub fn key_ids(cert: &Cert) -> Vec<String> {
    let mut ids: Vec<String> = cert.keys().map(|k| k.key().keyid().to_hex()).collect();
    ids.sort();
    ids.dedup();
    ids
}
