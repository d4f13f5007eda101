//! OpenPGP: the one policy, certificates, the list keystore, decrypting and
//! verifying posts, and sealing copies (sign once, encrypt per subscriber).

pub mod card;
pub mod certs;
pub mod decrypt;
pub mod keystore;
pub mod seal;
pub mod x25519;

use sequoia_openpgp::policy::StandardPolicy;

/// The one OpenPGP policy the engine uses, built in one place.
static POLICY: StandardPolicy<'static> = StandardPolicy::new();

/// The engine's OpenPGP policy.
pub fn policy() -> &'static StandardPolicy<'static> {
    &POLICY
}

/// Upper-case hex of bytes, the way fingerprints are shown.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02X}");
    }
    s
}
