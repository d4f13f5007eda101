//! Sealing copies: sign once per post, encrypt the body once, and give each
//! subscriber only the recipient packets (PKESKs) for their own keys.
//!
//! Every copy of one post shares a session key and an encrypted body. A copy
//! is that subscriber's PKESKs followed by the shared SEIPD packet, so making
//! a copy costs one public-key operation per subscriber key and nothing more.
//! See ARCHITECTURE.md, "Shared session key", for why this is safe.

use std::io::Write;
use std::time::SystemTime;

use base64::Engine as _;
use openpgp::crypto::{self, SessionKey};
use openpgp::packet::key::{PublicParts, UnspecifiedRole};
use openpgp::packet::pkesk::{PKESK3, PKESK6};
use openpgp::packet::Key;
use openpgp::serialize::stream::{Armorer, Encryptor, LiteralWriter, Message, Signer};
use openpgp::serialize::Serialize;
use openpgp::types::{AEADAlgorithm, HashAlgorithm, SymmetricAlgorithm};
use openpgp::Packet;
use sequoia_openpgp as openpgp;

use crate::error::{Error, Result};

/// The symmetric cipher for every copy.
const SYM: SymmetricAlgorithm = SymmetricAlgorithm::AES256;

/// The hash for the list signature (`micalg=pgp-sha256`).
pub const HASH: HashAlgorithm = HashAlgorithm::SHA256;

/// Makes one armored detached signature over `data`, dated `time`.
///
/// A v4 key's signature is made here rather than by Sequoia's signer, which
/// adds a random `salt@notations.sequoia-pgp.org` notation to every v4
/// signature: Mutt prints every notation of a signature it checks, so each
/// copy showed a line of binary data. The salt guards a signer against
/// chosen-message attacks on weak hashes; the list signs SHA-256 over an
/// entity it builds itself, so it gives that up. A v6 key's signature has
/// its salt in the packet, as RFC 9580 wants, and no notation.
pub fn sign_detached(
    mut signer: Box<dyn crypto::Signer + Send + Sync>,
    data: &[u8],
    time: SystemTime,
) -> Result<Vec<u8>> {
    if signer.public().version() == 4 {
        return sign_detached_v4(signer.as_mut(), data, time);
    }
    let mut out = Vec::new();
    {
        let message = Message::new(&mut out);
        let message = Armorer::new(message)
            .kind(openpgp::armor::Kind::Signature)
            .build()
            .map_err(|e| Error::crypto("sign the post", e))?;
        let mut signer = Signer::new(message, signer)
            .map_err(|e| Error::crypto("sign the post", e))?
            .detached()
            .hash_algo(HASH)
            .map_err(|e| Error::crypto("sign the post", e))?
            .creation_time(time)
            .build()
            .map_err(|e| Error::crypto("sign the post", e))?;
        signer
            .write_all(data)
            .map_err(|e| Error::crypto("sign the post", e))?;
        signer
            .finalize()
            .map_err(|e| Error::crypto("sign the post", e))?;
    }
    Ok(out)
}

/// A v4 binary signature over `data` whose hashed area holds only the
/// creation time and the issuer, armored.
fn sign_detached_v4(
    signer: &mut (dyn crypto::Signer + Send + Sync),
    data: &[u8],
    time: SystemTime,
) -> Result<Vec<u8>> {
    use openpgp::crypto::hash::Hash as _;
    use openpgp::packet::signature::{Signature4, SignatureBuilder};
    use openpgp::types::SignatureType;
    let fail = |e: openpgp::anyhow::Error| Error::crypto("sign the post", e);
    let public = signer.public().clone();
    let template = SignatureBuilder::new(SignatureType::Binary)
        .set_signature_creation_time(time)
        .and_then(|b| b.set_issuer_fingerprint(public.fingerprint()))
        .and_then(|b| b.set_issuer(public.keyid()))
        .map_err(fail)?;
    let unsigned = |prefix: [u8; 2], mpis| {
        Signature4::new(
            SignatureType::Binary,
            public.pk_algo(),
            HASH,
            template.hashed_area().clone(),
            template.unhashed_area().clone(),
            prefix,
            mpis,
        )
    };
    let mut hash = HASH.context().map_err(fail)?.for_signature(4);
    hash.update(data);
    let fields = unsigned(
        [0, 0],
        openpgp::crypto::mpi::Signature::Unknown {
            mpis: Box::new([]),
            rest: Box::new([]),
        },
    );
    fields.hash(&mut hash).map_err(fail)?;
    let digest = hash.into_digest().map_err(fail)?;
    let mpis = signer.sign(HASH, &digest).map_err(fail)?;
    let prefix = [
        digest.first().copied().unwrap_or_default(),
        digest.get(1).copied().unwrap_or_default(),
    ];
    let sig = openpgp::packet::Signature::from(unsigned(prefix, mpis));
    let mut out = Vec::new();
    {
        let mut w = openpgp::armor::Writer::new(&mut out, openpgp::armor::Kind::Signature)
            .map_err(|e| fail(e.into()))?;
        Packet::from(sig).serialize(&mut w).map_err(fail)?;
        w.finalize().map_err(|e| fail(e.into()))?;
    }
    Ok(out)
}

/// An armored signed OpenPGP message made of `sigs` over `data`: one-pass
/// signature packets, `data` as binary literal data, the signatures. This
/// is the form a signer's own message had inside its encryption, so a
/// signature made over exactly `data` verifies in it whatever its type.
pub fn signed_message(data: &[u8], sigs: &[openpgp::packet::Signature]) -> Result<Vec<u8>> {
    use openpgp::packet::{Literal, OnePassSig};
    let fail = |e: openpgp::anyhow::Error| Error::crypto("carry the author's signed message", e);
    let mut out = Vec::with_capacity(data.len() * 4 / 3 + 1024);
    {
        let mut w = openpgp::armor::Writer::new(&mut out, openpgp::armor::Kind::Message)
            .map_err(|e| fail(e.into()))?;
        let count = sigs.len();
        for (i, sig) in sigs.iter().enumerate() {
            let mut ops = OnePassSig::try_from(sig).map_err(fail)?;
            ops.set_last(i + 1 == count);
            Packet::from(ops).serialize(&mut w).map_err(fail)?;
        }
        let mut literal = Literal::new(openpgp::types::DataFormat::Binary);
        literal.set_body(data.to_vec());
        Packet::from(literal).serialize(&mut w).map_err(fail)?;
        // The signature of the last one-pass packet comes first.
        for sig in sigs.iter().rev() {
            Packet::from(sig.clone()).serialize(&mut w).map_err(fail)?;
        }
        w.finalize().map_err(|e| fail(e.into()))?;
    }
    Ok(out)
}

/// A post's body, encrypted once under a fresh session key.
pub struct SealedBody {
    /// The SEIPD packet (binary), shared by every copy.
    pub seipd: Vec<u8>,
    session_key: SessionKey,
    v2: bool,
}

impl std::fmt::Debug for SealedBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedBody")
            .field("len", &self.seipd.len())
            .field("v2", &self.v2)
            .finish()
    }
}

impl SealedBody {
    /// Encrypts `plaintext` as a literal data packet, without compression,
    /// in SEIPDv1, or SEIPDv2 when `v2` (OCB, or GCM or EAX where the crypto
    /// backend lacks OCB).
    pub fn new(plaintext: &[u8], v2: bool) -> Result<SealedBody> {
        // OCB is the mode RFC 9580 requires, but not every crypto backend has
        // it; without any AEAD mode, SEIPDv1 is what every v4 key accepts.
        let aead = [AEADAlgorithm::OCB, AEADAlgorithm::GCM, AEADAlgorithm::EAX]
            .into_iter()
            .find(|a| a.is_supported());
        let v2 = v2 && aead.is_some();
        let session_key = SessionKey::new(
            SYM.key_size()
                .map_err(|e| Error::crypto("encrypt the post", e))?,
        )
        .map_err(|e| Error::crypto("encrypt the post", e))?;
        let mut seipd = Vec::with_capacity(plaintext.len() + plaintext.len() / 64 + 256);
        {
            let message = Message::new(&mut seipd);
            let mut enc = Encryptor::with_session_key(message, SYM, session_key.clone())
                .map_err(|e| Error::crypto("encrypt the post", e))?;
            if let Some(aead) = aead.filter(|_| v2) {
                enc = enc.aead_algo(aead);
            }
            let message = enc
                .build()
                .map_err(|e| Error::crypto("encrypt the post", e))?;
            let mut literal = LiteralWriter::new(message)
                .build()
                .map_err(|e| Error::crypto("encrypt the post", e))?;
            literal
                .write_all(plaintext)
                .map_err(|e| Error::crypto("encrypt the post", e))?;
            literal
                .finalize()
                .map_err(|e| Error::crypto("encrypt the post", e))?;
        }
        Ok(SealedBody {
            seipd,
            session_key,
            v2,
        })
    }

    /// True for SEIPDv2.
    pub fn is_v2(&self) -> bool {
        self.v2
    }

    /// The recipient packets that give the keys a subscriber's derived
    /// state keeps ([`super::certs::Recipient::keys`]) the session key: a
    /// Cv25519 key is read straight from its packet, any other is parsed.
    pub fn pkesks_for_kept(&self, kept: &[u8]) -> Result<Vec<u8>> {
        let keys = super::certs::kept_keys(kept)?;
        if keys.is_empty() {
            return Err(Error::BadKey("the key cannot be encrypted to".into()));
        }
        let mut out = Vec::with_capacity(keys.len() * 96);
        for k in keys {
            let packet: Packet = match k.cv25519() {
                Some(c) if self.v2 => c.pkesk6(&self.session_key)?.into(),
                Some(c) => c.pkesk3(SYM, &self.session_key)?.into(),
                None => self.pkesk(&k.key()?)?,
            };
            packet
                .serialize(&mut out)
                .map_err(|e| Error::crypto("encrypt to a subscriber", e))?;
        }
        Ok(out)
    }

    /// The recipient packets that give `keys` the session key.
    pub fn pkesks_for(&self, keys: &[Key<PublicParts, UnspecifiedRole>]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(keys.len() * 96);
        for key in keys {
            self.pkesk(key)?
                .serialize(&mut out)
                .map_err(|e| Error::crypto("encrypt to a subscriber", e))?;
        }
        Ok(out)
    }

    /// The recipient packet that gives `key` the session key.
    fn pkesk(&self, key: &Key<PublicParts, UnspecifiedRole>) -> Result<Packet> {
        Ok(if self.v2 {
            if let Some(p) = super::pkesk::pkesk6(&self.session_key, key)? {
                p.into()
            } else {
                let mut p = PKESK6::for_recipient(&self.session_key, key)
                    .map_err(|e| Error::crypto("encrypt to a subscriber", e))?;
                p.set_recipient(Some(key.fingerprint()));
                p.into()
            }
        } else if let Some(p) = super::pkesk::pkesk3(SYM, &self.session_key, key)? {
            p.into()
        } else {
            let mut p = PKESK3::for_recipient(SYM, &self.session_key, key)
                .map_err(|e| Error::crypto("encrypt to a subscriber", e))?;
            p.set_recipient(Some(key.keyid()));
            p.into()
        })
    }
}

/// Encrypts `plaintext` to every encryption key of `cert`, binary. Used to
/// seal messages that arrived in clear before they are stored.
pub fn encrypt_to(cert: &openpgp::Cert, plaintext: &[u8], now: SystemTime) -> Result<Vec<u8>> {
    let keys = super::certs::encryption_keys(cert, now).or_else(|_| {
        super::certs::encryption_keys(cert, now - std::time::Duration::from_secs(1))
    })?;
    let body = SealedBody::new(plaintext, false)?;
    let mut out = body.pkesks_for(&keys)?;
    out.extend_from_slice(&body.seipd);
    Ok(out)
}

/// ASCII-armors an OpenPGP message made of `parts` (PKESKs, then the SEIPD),
/// with CRLF line endings and the CRC-24 checksum older readers expect.
pub fn armor_message(parts: &[&[u8]]) -> Vec<u8> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let mut joined = Vec::with_capacity(total);
    for p in parts {
        joined.extend_from_slice(p);
    }
    let mut out = Vec::with_capacity(total * 4 / 3 + total / 24 + 128);
    out.extend_from_slice(b"-----BEGIN PGP MESSAGE-----\r\n\r\n");
    push_lines(&mut out, &joined);
    armor_footer(&mut out, crc24(&joined));
    out
}

/// Appends `bytes` in base64, 64 characters (48 bytes) a line, each line
/// ending in CRLF.
fn push_lines(out: &mut Vec<u8>, bytes: &[u8]) {
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    for line in b64.as_bytes().chunks(64) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
}

/// The OpenPGP armor checksum (RFC 4880, section 6.1).
fn crc24(data: &[u8]) -> u32 {
    crc24_from(0x00B7_04CE, data)
}

/// The CRC-24 register after `data`, starting from `crc`.
fn crc24_from(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        let i = usize::from(((crc >> 16) as u8) ^ b);
        crc = (crc << 8) ^ CRC24_TABLE.get(i).copied().unwrap_or(0);
    }
    crc & 0x00FF_FFFF
}

/// Armor lines: a base64 line holds 48 bytes.
const LINE_BYTES: usize = 48;

/// Armors many messages that end in the same body (a post's copies: each
/// its own recipient packets, then the one SEIPD), each exactly as
/// [`armor_message`] would, without encoding the body again for each.
///
/// A copy's armor lines after its packets' last line hold only body bytes,
/// from an offset in the body that depends only on the packets' length
/// modulo 48: those lines are encoded once per offset and kept. The CRC-24
/// is linear in its register: the register after the body, from any
/// register `r`, is `f(0) ^ L(r)`, where `L` is known from the 24 unit
/// registers; so a copy's checksum costs its own bytes and 24 steps.
pub struct BodyArmor {
    body: Vec<u8>,
    /// Per offset into the body: the encoded lines from there on.
    tails: std::collections::HashMap<usize, Tail>,
}

struct Tail {
    /// Base64 lines (CRLF after each) of the body from the offset on.
    lines: Vec<u8>,
    /// The CRC-24 register after those bytes, starting from 0.
    from_zero: u32,
    /// The part of the register after those bytes due to each bit of the
    /// register before them.
    basis: [u32; 24],
}

impl Tail {
    fn new(bytes: &[u8]) -> Tail {
        let mut lines = Vec::with_capacity(bytes.len() * 4 / 3 + bytes.len() / 24 + 8);
        push_lines(&mut lines, bytes);
        let from_zero = crc24_from(0, bytes);
        let mut basis = [0u32; 24];
        for (bit, slot) in basis.iter_mut().enumerate() {
            *slot = crc24_from(1 << bit, bytes) ^ from_zero;
        }
        Tail {
            lines,
            from_zero,
            basis,
        }
    }

    /// The register after these bytes, from `crc`.
    fn crc_after(&self, crc: u32) -> u32 {
        let mut out = self.from_zero;
        for (bit, part) in self.basis.iter().enumerate() {
            if crc & (1 << bit) != 0 {
                out ^= part;
            }
        }
        out
    }
}

impl BodyArmor {
    /// An armorer for messages ending in `body`.
    pub fn new(body: Vec<u8>) -> Self {
        BodyArmor {
            body,
            tails: std::collections::HashMap::new(),
        }
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// `prefix` then the body, armored as [`armor_message`] does.
    pub fn armor(&mut self, prefix: &[u8]) -> Vec<u8> {
        // Body bytes that share a line with the prefix's end.
        let split = (LINE_BYTES - prefix.len() % LINE_BYTES) % LINE_BYTES;
        let Some((head, rest)) = self.body.split_at_checked(split) else {
            return armor_message(&[prefix, &self.body]);
        };
        let tail = self.tails.entry(split).or_insert_with(|| Tail::new(rest));
        let mut first = Vec::with_capacity(prefix.len() + head.len());
        first.extend_from_slice(prefix);
        first.extend_from_slice(head);
        let mut out = Vec::with_capacity(first.len() * 2 + tail.lines.len() + 96);
        out.extend_from_slice(b"-----BEGIN PGP MESSAGE-----\r\n\r\n");
        push_lines(&mut out, &first);
        out.extend_from_slice(&tail.lines);
        let crc = tail.crc_after(crc24(&first));
        armor_footer(&mut out, crc);
        out
    }
}

/// The checksum line and the end line.
fn armor_footer(out: &mut Vec<u8>, crc: u32) {
    let crc_bytes = [(crc >> 16) as u8, (crc >> 8) as u8, crc as u8];
    out.push(b'=');
    out.extend_from_slice(
        base64::engine::general_purpose::STANDARD
            .encode(crc_bytes)
            .as_bytes(),
    );
    out.extend_from_slice(b"\r\n-----END PGP MESSAGE-----\r\n");
}

/// The CRC-24 of every byte value (RFC 9580, section 6.1.1), one byte at a
/// time instead of one bit: a copy's armor is 25 KiB and more.
#[allow(clippy::indexing_slicing)] // i < 256, in a constant
const CRC24_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u32) << 16;
        let mut bit = 0;
        while bit < 8 {
            crc <<= 1;
            if crc & 0x0100_0000 != 0 {
                crc ^= 0x0186_4CFB;
            }
            bit += 1;
        }
        table[i] = crc & 0x00FF_FFFF;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc24_matches_the_rfc_reference() {
        // The CRC of no data is the initial value.
        assert_eq!(crc24(b""), 0x00B7_04CE);
        // Reference value for "abc", from an independent implementation.
        assert_eq!(crc24(b"abc"), 0x00BA_1C7B);
        // And the table agrees with the bit-by-bit definition everywhere.
        let bitwise = |data: &[u8]| {
            let mut crc: u32 = 0x00B7_04CE;
            for &b in data {
                crc ^= u32::from(b) << 16;
                for _ in 0..8 {
                    crc <<= 1;
                    if crc & 0x0100_0000 != 0 {
                        crc ^= 0x0186_4CFB;
                    }
                }
            }
            crc & 0x00FF_FFFF
        };
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect();
        for n in [0, 1, 2, 3, 255, 256, 4999, 5000] {
            assert_eq!(crc24(&data[..n]), bitwise(&data[..n]), "{n}");
        }
    }

    /// The armorer's output is byte for byte what armoring the whole
    /// message at once gives, for every prefix length modulo a line, for
    /// bodies shorter and longer than a line, and when a body comes back.
    #[test]
    fn armoring_with_a_kept_body_equals_armoring_it_whole() {
        let bytes = |n: usize, seed: u32| -> Vec<u8> {
            (0..n as u32)
                .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8)
                .collect()
        };
        for body_len in [0, 1, 5, 47, 48, 49, 95, 1000, 25_001] {
            let body = bytes(body_len, 7);
            let mut armorer = BodyArmor::new(body.clone());
            for prefix_len in (0..100).chain([181, 500]) {
                let prefix = bytes(prefix_len, prefix_len as u32);
                for _ in 0..2 {
                    assert_eq!(
                        armorer.armor(&prefix),
                        armor_message(&[&prefix, &body]),
                        "body {body_len}, prefix {prefix_len}"
                    );
                }
            }
        }
    }
}
