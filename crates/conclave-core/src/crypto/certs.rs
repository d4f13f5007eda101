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

use super::policy;

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
    let mut out = Vec::new();
    let Ok(vc) = cert.with_policy(policy(), now) else {
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

/// True if a valid User ID of `cert` carries `address`.
pub fn speaks_for(cert: &Cert, address: &str, now: SystemTime) -> bool {
    let address = address.to_ascii_lowercase();
    addresses(cert, now).contains(&address)
}

/// The keys of `cert` that may receive encrypted mail now.
pub fn encryption_keys(
    cert: &Cert,
    now: SystemTime,
) -> Result<Vec<Key<PublicParts, UnspecifiedRole>>> {
    let vc = cert
        .with_policy(policy(), now)
        .map_err(|e| Error::BadKey(format!("{} is not valid: {e}", cert.fingerprint())))?;
    if let RevocationStatus::Revoked(_) = vc.revocation_status() {
        return Err(Error::BadKey(format!("{} is revoked", cert.fingerprint())));
    }
    vc.alive()
        .map_err(|e| Error::BadKey(format!("{} has expired: {e}", cert.fingerprint())))?;
    let keys: Vec<_> = vc
        .keys()
        .supported()
        .alive()
        .revoked(false)
        .for_transport_encryption()
        .map(|ka| ka.key().clone().role_into_unspecified())
        .collect();
    if keys.is_empty() {
        return Err(Error::BadKey(format!(
            "{} has no usable encryption key",
            cert.fingerprint()
        )));
    }
    Ok(keys)
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
