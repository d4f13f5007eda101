//! OpenPGP: the one policy, certificates, the list keystore, decrypting and
//! verifying posts, and sealing copies (sign once, encrypt per subscriber).

pub mod card;
pub mod certs;
pub mod decrypt;
pub mod keystore;
pub mod pkesk;
pub mod renew;
pub mod samekey;
pub mod seal;

use sequoia_openpgp::policy::StandardPolicy;

/// The one OpenPGP policy the engine uses, built in one place.
static POLICY: StandardPolicy<'static> = StandardPolicy::new();

/// The engine's OpenPGP policy.
pub fn policy() -> &'static StandardPolicy<'static> {
    &POLICY
}

/// The engine's policy, except that it still accepts SHA-1 self-signatures.
/// Never used to trust a key: only to say why a key is refused, and to read
/// an old list key that the list is about to certify again.
pub fn lenient_policy() -> &'static StandardPolicy<'static> {
    static LENIENT: std::sync::LazyLock<StandardPolicy<'static>> = std::sync::LazyLock::new(|| {
        let mut p = StandardPolicy::new();
        p.accept_hash_property(
            sequoia_openpgp::types::HashAlgorithm::SHA1,
            sequoia_openpgp::policy::HashAlgoSecurity::SecondPreImageResistance,
        );
        p
    });
    &LENIENT
}

pub use crate::hex::hex;
