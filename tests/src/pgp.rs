//! Small OpenPGP helpers built on sequoia-openpgp, used to *inspect*
//! artefacts (certs, PKESKs, signature packets).  All cryptographic
//! operations of the tests are performed by the real programs (gpg, rnp,
//! sq); sequoia is only used here to look at packets.
//!
//! Key IDs and fingerprints are rendered as upper-case hex without spaces
//! (`KeyID::to_hex()` / `Fingerprint::to_hex()`): 16 digits for a key ID,
//! 40 for a v4 fingerprint.

use openpgp::parse::{PacketParser, PacketParserResult, Parse};
use openpgp::types::HashAlgorithm;
use openpgp::{Cert, KeyHandle, Packet};
use sequoia_openpgp as openpgp;

/// The "wildcard" (anonymous recipient) key ID as rendered by
/// [`pkesk_recipients`].
pub const WILDCARD_KEYID: &str = "0000000000000000";

/// Parses one certificate (armored or binary, public or secret).
pub fn parse_cert(cert: &[u8]) -> Result<Cert, String> {
    Cert::from_bytes(cert).map_err(|e| format!("cannot parse certificate: {e:#}"))
}

/// Primary-key fingerprint of a certificate, upper-case hex.
pub fn cert_fingerprint(cert: &[u8]) -> Result<String, String> {
    Ok(parse_cert(cert)?.fingerprint().to_hex())
}

/// When a certificate's primary key expires (under the standard policy,
/// now), if it does.
pub fn cert_expiry(cert: &[u8]) -> Result<std::time::SystemTime, String> {
    let policy = sequoia_openpgp::policy::StandardPolicy::new();
    let cert = parse_cert(cert)?;
    let vc = cert.with_policy(&policy, None).map_err(|e| e.to_string())?;
    vc.primary_key()
        .key_expiration_time()
        .ok_or_else(|| "the key does not expire".to_string())
}

/// Key IDs (16 hex digits) of the primary key and all subkeys of a cert.
pub fn cert_key_ids(cert: &[u8]) -> Result<Vec<String>, String> {
    Ok(parse_cert(cert)?
        .keys()
        .map(|ka| ka.key().keyid().to_hex())
        .collect())
}

/// Fingerprints (40 hex digits) of the primary key and all subkeys of a cert.
pub fn cert_key_fingerprints(cert: &[u8]) -> Result<Vec<String>, String> {
    Ok(parse_cert(cert)?
        .keys()
        .map(|ka| ka.key().fingerprint().to_hex())
        .collect())
}

/// The User IDs of a cert, as (lossy) strings.
pub fn cert_user_ids(cert: &[u8]) -> Result<Vec<String>, String> {
    Ok(parse_cert(cert)?
        .userids()
        .map(|u| String::from_utf8_lossy(u.userid().value()).into_owned())
        .collect())
}

/// True if `handle` (a key ID or fingerprint in hex, any case, spaces
/// allowed) names the primary key or a subkey of `cert`.
pub fn cert_has_key(cert: &[u8], handle: &str) -> bool {
    let h: String = handle
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    let Ok(cert) = parse_cert(cert) else {
        return false;
    };
    cert.keys().any(|ka| {
        let k = ka.key();
        k.keyid().to_hex() == h || k.fingerprint().to_hex() == h
    })
}

fn handle_hex(h: &KeyHandle) -> String {
    h.to_hex()
}

/// The recipients named by the PKESK packets of an OpenPGP message
/// (armored or binary): the key ID (v3 PKESK) or fingerprint (v6 PKESK) of
/// the *encryption subkey* each session key was encrypted to, upper-case
/// hex.  An anonymous ("wildcard") recipient is rendered as
/// [`WILDCARD_KEYID`].  Parsing stops at the encrypted data packet; the
/// message is not decrypted.
pub fn pkesk_recipients(message: &[u8]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut ppr = PacketParser::from_bytes(message)
        .map_err(|e| format!("cannot parse OpenPGP message: {e:#}"))?;
    while let PacketParserResult::Some(pp) = ppr {
        match &pp.packet {
            Packet::PKESK(p) => out.push(
                p.recipient()
                    .map(|h| handle_hex(&h))
                    .unwrap_or_else(|| WILDCARD_KEYID.to_string()),
            ),
            Packet::SEIP(_) => break,
            _ => {}
        }
        ppr = pp
            .next()
            .map_err(|e| format!("cannot parse OpenPGP message: {e:#}"))?
            .1;
    }
    Ok(out)
}

/// How an OpenPGP message (armored or binary) is encrypted: `"SEIPDv1"`, or
/// `"SEIPDv2 AES256-OCB"` and the like for RFC 9580 AEAD. Parsing stops at
/// the encrypted data packet; the message is not decrypted.
pub fn encryption_container(message: &[u8]) -> Result<String, String> {
    let mut ppr = PacketParser::from_bytes(message)
        .map_err(|e| format!("cannot parse OpenPGP message: {e:#}"))?;
    while let PacketParserResult::Some(pp) = ppr {
        match &pp.packet {
            Packet::SEIP(sequoia_openpgp::packet::SEIP::V1(_)) => return Ok("SEIPDv1".into()),
            Packet::SEIP(sequoia_openpgp::packet::SEIP::V2(p)) => {
                return Ok(format!("SEIPDv2 {}-{}", p.symmetric_algo(), p.aead()))
            }
            _ => {}
        }
        ppr = pp
            .next()
            .map_err(|e| format!("cannot parse OpenPGP message: {e:#}"))?
            .1;
    }
    Err("no encrypted data packet".into())
}

/// Information about the signature packets in a (detached) signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigInfo {
    /// Issuers named by the signature (issuer fingerprint subpackets first,
    /// then issuer key IDs), upper-case hex.
    pub issuers: Vec<String>,
    /// Hash algorithm, e.g. `"SHA256"`.
    pub hash: String,
    /// RFC 3156 `micalg` value for the hash, e.g. `"pgp-sha256"`.
    pub micalg: String,
    /// Signature type, e.g. `"Binary"` or `"Text"`.
    pub typ: String,
}

/// Maps a hash algorithm to its RFC 3156 / RFC 4880 §9.4 `micalg` name.
pub fn micalg_for(hash: HashAlgorithm) -> String {
    let name = match hash {
        HashAlgorithm::MD5 => "md5",
        HashAlgorithm::SHA1 => "sha1",
        HashAlgorithm::RipeMD => "ripemd160",
        HashAlgorithm::SHA224 => "sha224",
        HashAlgorithm::SHA256 => "sha256",
        HashAlgorithm::SHA384 => "sha384",
        HashAlgorithm::SHA512 => "sha512",
        HashAlgorithm::SHA3_256 => "sha3-256",
        HashAlgorithm::SHA3_512 => "sha3-512",
        other => return format!("pgp-{}", other.to_string().to_ascii_lowercase()),
    };
    format!("pgp-{name}")
}

/// Parses every signature packet of a detached signature (armored or
/// binary).
pub fn signature_info(sig: &[u8]) -> Result<Vec<SigInfo>, String> {
    let mut out = Vec::new();
    let mut ppr =
        PacketParser::from_bytes(sig).map_err(|e| format!("cannot parse signature: {e:#}"))?;
    while let PacketParserResult::Some(pp) = ppr {
        if let Packet::Signature(s) = &pp.packet {
            let mut issuers: Vec<String> = s.issuer_fingerprints().map(|f| f.to_hex()).collect();
            for kid in s.issuers() {
                let k = kid.to_hex();
                if !issuers.contains(&k) {
                    issuers.push(k);
                }
            }
            out.push(SigInfo {
                issuers,
                hash: s.hash_algo().to_string(),
                micalg: micalg_for(s.hash_algo()),
                typ: format!("{:?}", s.typ()),
            });
        }
        ppr = pp
            .next()
            .map_err(|e| format!("cannot parse signature: {e:#}"))?
            .1;
    }
    if out.is_empty() {
        return Err("no signature packet found".into());
    }
    Ok(out)
}

/// If one of the issuers of `sig` is a key of `cert`, returns the cert's
/// primary fingerprint.
pub fn signature_issued_by(sig: &[u8], cert: &[u8]) -> Result<String, String> {
    let infos = signature_info(sig)?;
    let cert_fpr = cert_fingerprint(cert)?;
    for info in &infos {
        if info.issuers.iter().any(|i| cert_has_key(cert, i)) {
            return Ok(cert_fpr);
        }
    }
    Err(format!(
        "signature issuers {:?} are not keys of certificate {cert_fpr}",
        infos
            .iter()
            .flat_map(|i| i.issuers.clone())
            .collect::<Vec<_>>()
    ))
}

/// Finds the first ASCII-armored block of the given kind (e.g. `"MESSAGE"`,
/// `"SIGNATURE"`, `"PUBLIC KEY BLOCK"`) in `data` and returns it from
/// `-----BEGIN PGP …-----` through the end of the `-----END PGP …-----` line
/// (inclusive, with a trailing newline).
pub fn find_armor(data: &[u8], kind: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN PGP {kind}-----");
    let end = format!("-----END PGP {kind}-----");
    let start = find(data, begin.as_bytes())?;
    let rel_end = find(&data[start..], end.as_bytes())?;
    let stop = start + rel_end + end.len();
    let mut v = data[start..stop].to_vec();
    v.extend_from_slice(b"\n");
    Some(v)
}

/// Finds the armored `-----BEGIN PGP MESSAGE-----` block in an .eml (or in
/// any text).  If the armor is not present literally (e.g. the part is
/// base64 or quoted-printable encoded), the MIME structure is decoded with
/// mail-parser and every leaf part is searched.
pub fn extract_armored_message(eml: &[u8]) -> Option<Vec<u8>> {
    if let Some(a) = find_armor(eml, "MESSAGE") {
        return Some(a);
    }
    let msg = mail_parser::MessageParser::default().parse(eml)?;
    for part in &msg.parts {
        if let Some(a) = find_armor(part.contents(), "MESSAGE") {
            return Some(a);
        }
    }
    None
}

/// Byte-string search.
pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Random hex string of `n` bytes of entropy (via sequoia's RNG).
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    openpgp::crypto::random(&mut buf).expect("random bytes");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// The times a copy carries, in seconds since the epoch: the list
/// signature's creation time, the signed entity's `Date:` and the outer
/// `Date:`. `eml` is the copy as delivered, `entity` its decrypted content
/// (an RFC 3156 `multipart/signed`).
pub fn copy_times(eml: &[u8], entity: &[u8]) -> (i64, i64, i64) {
    let (signed, sig) = crate::split_multipart_signed(entity).expect("a multipart/signed copy");
    let sig = match Packet::from_bytes(&sig).expect("a signature packet") {
        Packet::Signature(s) => s,
        p => panic!("not a signature: {p:?}"),
    };
    let sig_time = sig
        .signature_creation_time()
        .expect("a creation time")
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after the epoch")
        .as_secs() as i64;
    let date = |m: &[u8]| {
        mail_parser::MessageParser::default()
            .parse(m)
            .and_then(|m| m.date().map(|d| d.to_timestamp()))
            .expect("a Date: header")
    };
    (sig_time, date(&signed), date(eml))
}

/// A certificate's binary form (from armored or binary).
pub fn dearmored_cert(cert: &[u8]) -> Vec<u8> {
    use openpgp::serialize::SerializeInto;
    parse_cert(cert)
        .and_then(|c| c.to_vec().map_err(|e| e.to_string()))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// `cert` (armored) with the signature packets of `sigs` (armored)
/// inserted: a revocation made beforehand, say. Armored.
pub fn with_signatures(cert: &[u8], sigs: &[u8]) -> Vec<u8> {
    use openpgp::serialize::SerializeInto;
    let cert = parse_cert(cert).unwrap_or_else(|e| panic!("{e}"));
    let mut packets = Vec::new();
    let mut ppr = PacketParser::from_bytes(sigs).expect("signatures parse");
    while let PacketParserResult::Some(pp) = ppr {
        let (packet, next) = pp.recurse().expect("signatures parse");
        if let Packet::Signature(_) = packet {
            packets.push(packet);
        }
        ppr = next;
    }
    assert!(!packets.is_empty(), "no signature found");
    let (cert, _) = cert.insert_packets(packets).expect("the signatures fit");
    let armored = cert.armored().to_vec().expect("the key serialises");
    armored
}
