//! Opening posts: classify the OpenPGP message, decrypt it with the list key,
//! and check every signature against the subscribers' certificates. This
//! module decides nothing; it reports what it found, and the list decides.

use std::io::Read;
use std::time::SystemTime;

use openpgp::crypto::{self, SessionKey};
use openpgp::packet::{Signature, PKESK, SKESK};
use openpgp::parse::stream::{
    DecryptionHelper, DecryptorBuilder, DetachedVerifierBuilder, MessageLayer, MessageStructure,
    VerificationError, VerificationHelper, VerifierBuilder,
};
use openpgp::parse::{PacketParserResult, Parse};
use openpgp::types::{SignatureType, SymmetricAlgorithm};
use openpgp::{Cert, Fingerprint, KeyHandle, Packet};
use sequoia_openpgp as openpgp;

use super::{hex, policy};

/// What one signature on a post turned out to be.
#[derive(Debug, Clone)]
pub enum SigStatus {
    /// A valid signature by a known certificate.
    Good {
        /// The primary fingerprint of the signer's certificate.
        cert: Fingerprint,
        /// A digest that identifies this signature over this content, for the
        /// replay cache. It does not depend on malleable parts of the packet.
        replay_digest: String,
        /// When the signature says it was made.
        created: Option<SystemTime>,
    },
    /// A signature that does not verify.
    Bad {
        /// Who the signature claims to be by.
        issuer: String,
        /// Why it failed.
        error: String,
    },
    /// A signature by a key that no subscriber holds.
    UnknownKey {
        /// Who the signature claims to be by.
        issuer: String,
    },
}

/// Why a message could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// The data is not an OpenPGP message at all, or is cut short.
    Malformed(String),
    /// The message is encrypted with a passphrase only.
    PassphraseOnly,
    /// The message is not encrypted to the list key.
    NotForList(Vec<String>),
    /// Symmetrically encrypted data without integrity protection.
    NoIntegrity,
    /// The plaintext is larger than the limit (a compression bomb, or just too much).
    TooLarge(usize),
    /// Encrypted in LibrePGP's OCB packet (GnuPG 2.4+), not OpenPGP.
    LibrePgpOcb,
    /// The OpenPGP library failed on the message (it panicked).
    Internal(String),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Malformed(e) => write!(f, "cannot read the OpenPGP message: {e}"),
            OpenError::PassphraseOnly => {
                write!(f, "encrypted with a passphrase, not to the list key; the list cannot open it")
            }
            OpenError::NotForList(r) if r.is_empty() => write!(f, "not encrypted to the list key"),
            OpenError::NotForList(r) => write!(f, "not encrypted to the list key (encrypted to {})", r.join(", ")),
            OpenError::NoIntegrity => write!(
                f,
                "the encrypted data has no integrity protection (no MDC); refused, as such data enables EFAIL-style attacks"
            ),
            OpenError::Internal(detail) => write!(
                f,
                "internal error while reading the OpenPGP message ({detail}); the message is kept"
            ),
            OpenError::LibrePgpOcb => write!(
                f,
                "encrypted in GnuPG's own OCB format (LibrePGP), which is not OpenPGP (RFC 9580) and which the list key does not ask for; the sender's GnuPG can encrypt to the list as OpenPGP if its key for the list is refreshed (`gpg --locate-keys` or the list's current public key)"
            ),
            OpenError::TooLarge(limit) => write!(
                f,
                "decrypted content exceeds {} KiB; refused as a likely compression bomb",
                limit / 1024
            ),
        }
    }
}

impl std::error::Error for OpenError {}

/// A decrypted post.
#[derive(Debug)]
pub struct Opened {
    /// The plaintext: a MIME entity for PGP/MIME, text for inline PGP.
    pub plaintext: Vec<u8>,
    /// The signatures found inside the encryption.
    pub sigs: Vec<SigStatus>,
    /// Those signatures, serialised, to carry the author's signature along.
    pub sig_packets: Vec<Signature>,
}

/// Decrypts `message` (armored or binary) with the list's decryptors and
/// verifies any signatures inside against `certs`. The plaintext may not
/// exceed `limit` bytes.
pub fn open(
    message: &[u8],
    decryptors: Vec<Box<dyn crypto::Decryptor + Send + Sync>>,
    certs: &(impl CertLookup + ?Sized),
    now: SystemTime,
    limit: usize,
) -> Result<Opened, OpenError> {
    prescan(message)?;
    // Sequoia 2.4.2 panics on some malformed messages (an `unwrap` on a
    // truncated encrypted packet once the session key is found): such a
    // message is refused like any other that cannot be read.
    let decrypted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        open_unguarded(message, decryptors, certs, now, limit)
    }));
    decrypted.unwrap_or_else(|panic| Err(OpenError::Internal(panic_text(&*panic))))
}

/// The text a panic carried, if it was text.
pub fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .map(|s| one_line(&s))
        .unwrap_or_else(|| "no detail".into())
}

fn open_unguarded(
    message: &[u8],
    decryptors: Vec<Box<dyn crypto::Decryptor + Send + Sync>>,
    certs: &(impl CertLookup + ?Sized),
    now: SystemTime,
    limit: usize,
) -> Result<Opened, OpenError> {
    let helper = Helper::new(decryptors, certs, now);
    let builder =
        DecryptorBuilder::from_bytes(message).map_err(|e| OpenError::Malformed(one_line(&e)))?;
    let mut decryptor =
        match builder
            .buffer_size(limit.saturating_add(1))
            .with_policy(policy(), now, helper)
        {
            Ok(d) => d,
            Err(e) => return Err(classify_failure(&e)),
        };
    let mut plaintext = Vec::new();
    let read = (&mut decryptor)
        .take(u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1))
        .read_to_end(&mut plaintext);
    if plaintext.len() > limit {
        return Err(OpenError::TooLarge(limit));
    }
    if let Err(e) = read {
        return Err(OpenError::Malformed(one_line(&e)));
    }
    let helper = decryptor.into_helper();
    Ok(Opened {
        plaintext,
        sigs: helper.sigs,
        sig_packets: helper.sig_packets,
    })
}

/// Verifies a detached signature (`sig`, armored or binary) over `data`.
pub fn verify_detached(
    data: &[u8],
    sig: &[u8],
    certs: &(impl CertLookup + ?Sized),
    now: SystemTime,
) -> (Vec<SigStatus>, Vec<Signature>) {
    let helper = Helper::new(Vec::new(), certs, now);
    let result = DetachedVerifierBuilder::from_bytes(sig)
        .and_then(|b| b.with_policy(policy(), now, helper))
        .and_then(|mut v| v.verify_bytes(data).map(|()| v));
    match result {
        Ok(v) => {
            let h = v.into_helper();
            (h.sigs, h.sig_packets)
        }
        Err(e) => (
            vec![SigStatus::Bad {
                issuer: String::new(),
                error: one_line(&e),
            }],
            Vec::new(),
        ),
    }
}

/// Verifies a cleartext-signed text (`-----BEGIN PGP SIGNED MESSAGE-----`).
pub fn verify_cleartext(
    text: &[u8],
    certs: &(impl CertLookup + ?Sized),
    now: SystemTime,
) -> Vec<SigStatus> {
    let helper = Helper::new(Vec::new(), certs, now);
    let result =
        VerifierBuilder::from_bytes(text).and_then(|b| b.with_policy(policy(), now, helper));
    match result {
        Ok(mut v) => {
            let mut sink = Vec::new();
            match v.read_to_end(&mut sink) {
                Ok(_) => v.into_helper().sigs,
                Err(e) => vec![SigStatus::Bad {
                    issuer: String::new(),
                    error: one_line(&e),
                }],
            }
        }
        Err(e) => vec![SigStatus::Bad {
            issuer: String::new(),
            error: one_line(&e),
        }],
    }
}

/// True if every signature is a text-mode signature.
pub fn all_text_mode(sigs: &[Signature]) -> bool {
    !sigs.is_empty() && sigs.iter().all(|s| s.typ() == SignatureType::Text)
}

/// Looks at the top-level packets to name the kind of message before trying
/// to decrypt it, so that refusals carry a precise reason.
fn prescan(message: &[u8]) -> Result<(), OpenError> {
    let mut ppr = openpgp::parse::PacketParser::from_bytes(message)
        .map_err(|e| OpenError::Malformed(one_line(&e)))?;
    let mut recipients = Vec::new();
    let (mut skesks, mut seip, mut sed, mut ocb) = (0usize, false, false, false);
    let mut packets = 0usize;
    while let PacketParserResult::Some(pp) = ppr {
        packets += 1;
        match &pp.packet {
            Packet::PKESK(p) => recipients.push(
                p.recipient()
                    .map(|h| h.to_hex())
                    .unwrap_or_else(|| "a hidden recipient".to_string()),
            ),
            Packet::SKESK(_) => skesks += 1,
            Packet::SEIP(_) => seip = true,
            p if p.tag() == openpgp::packet::Tag::SED => sed = true,
            p if p.tag() == openpgp::packet::Tag::AED => ocb = true,
            _ => {}
        }
        if seip || sed || ocb || packets > 10_000 {
            break;
        }
        ppr = match pp.next() {
            Ok((_, next)) => next,
            Err(e) => return Err(OpenError::Malformed(one_line(&e))),
        };
    }
    if sed && !seip {
        return Err(OpenError::NoIntegrity);
    }
    if ocb && !seip {
        return Err(OpenError::LibrePgpOcb);
    }
    if !seip {
        return Err(OpenError::Malformed(
            "no encrypted data in the message".into(),
        ));
    }
    if recipients.is_empty() && skesks > 0 {
        return Err(OpenError::PassphraseOnly);
    }
    if recipients.is_empty() {
        return Err(OpenError::NotForList(Vec::new()));
    }
    Ok(())
}

fn classify_failure(e: &anyhow_like::Error) -> OpenError {
    let text = one_line(e);
    let lower = text.to_ascii_lowercase();
    if lower.contains("no key to decrypt")
        || lower.contains("decryption failed")
        || lower.contains("no session key")
    {
        OpenError::NotForList(Vec::new())
    } else if lower.contains("mdc") || lower.contains("modification detection") {
        OpenError::NoIntegrity
    } else {
        OpenError::Malformed(text)
    }
}

/// The error type sequoia's streaming API returns.
mod anyhow_like {
    pub type Error = sequoia_openpgp::anyhow::Error;
}

fn one_line(e: &dyn std::fmt::Display) -> String {
    let s = e.to_string();
    let s: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.len() > 300 {
        let mut cut = 300;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.get(..cut).map(|p| format!("{p}…")).unwrap_or(s)
    } else {
        s
    }
}

/// Where the certificates that may have made a signature are found.
pub trait CertLookup {
    /// The certificates holding a key named by one of `ids`.
    fn lookup(&self, ids: &[KeyHandle]) -> Vec<Cert>;
}

impl CertLookup for [Cert] {
    fn lookup(&self, ids: &[KeyHandle]) -> Vec<Cert> {
        self.iter().filter(|c| holds_any(c, ids)).cloned().collect()
    }
}

impl CertLookup for Vec<Cert> {
    fn lookup(&self, ids: &[KeyHandle]) -> Vec<Cert> {
        self.as_slice().lookup(ids)
    }
}

impl<const N: usize> CertLookup for [Cert; N] {
    fn lookup(&self, ids: &[KeyHandle]) -> Vec<Cert> {
        self.as_slice().lookup(ids)
    }
}

/// Whether `cert` has a key that one of `ids` names.
pub fn holds_any(cert: &Cert, ids: &[KeyHandle]) -> bool {
    cert.keys()
        .any(|k| ids.iter().any(|id| id.aliases(k.key().key_handle())))
}

struct Helper<'a, C: CertLookup + ?Sized> {
    decryptors: Vec<Box<dyn crypto::Decryptor + Send + Sync>>,
    certs: &'a C,
    now: SystemTime,
    sigs: Vec<SigStatus>,
    sig_packets: Vec<Signature>,
}

impl<'a, C: CertLookup + ?Sized> Helper<'a, C> {
    fn new(
        decryptors: Vec<Box<dyn crypto::Decryptor + Send + Sync>>,
        certs: &'a C,
        now: SystemTime,
    ) -> Self {
        Helper {
            decryptors,
            certs,
            now,
            sigs: Vec::new(),
            sig_packets: Vec::new(),
        }
    }
}

impl<C: CertLookup + ?Sized> Helper<'_, C> {
    fn good(&mut self, cert: Fingerprint, sig: &Signature) {
        let digest = sig.computed_digest().map(hex).unwrap_or_else(|| {
            hex(&openpgp::serialize::MarshalInto::to_vec(sig.mpis()).unwrap_or_default())
        });
        self.sigs.push(SigStatus::Good {
            replay_digest: format!("{cert}:{digest}"),
            created: sig.signature_creation_time(),
            cert,
        });
        self.sig_packets.push(sig.clone());
    }
}

/// How far ahead of the list's clock a subscriber's clock may run: a
/// signature made up to this long "in the future" still counts.
pub const CLOCK_SKEW: std::time::Duration =
    openpgp::packet::signature::subpacket::CLOCK_SKEW_TOLERANCE;

/// Sequoia checks signatures with no tolerance when it is given the time, as
/// the engine always does (its clock is pluggable). A signature it refused
/// is good all the same if the only fault was a creation time a little ahead
/// of ours: alive within [`CLOCK_SKEW`], valid over the document, and
/// acceptable to the policy.
fn made_within_skew(
    sig: &Signature,
    ka: &openpgp::cert::amalgamation::key::ValidErasedKeyAmalgamation<
        '_,
        openpgp::packet::key::PublicParts,
    >,
    now: SystemTime,
) -> bool {
    sig.signature_alive(now, std::time::Duration::ZERO).is_err()
        && sig.signature_alive(now, CLOCK_SKEW).is_ok()
        && sig.verify_document(ka.key()).is_ok()
        && openpgp::policy::Policy::signature(policy(), sig, Default::default()).is_ok()
}

/// How far ahead of `now` a signature says it was made, if it is.
fn ahead_of(sig: &Signature, now: SystemTime) -> Option<std::time::Duration> {
    sig.signature_creation_time()?
        .duration_since(now)
        .ok()
        .filter(|d| !d.is_zero())
}

impl<C: CertLookup + ?Sized> VerificationHelper for Helper<'_, C> {
    fn get_certs(&mut self, ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(self.certs.lookup(ids))
    }

    fn check(&mut self, structure: MessageStructure) -> openpgp::Result<()> {
        for layer in structure {
            if let MessageLayer::SignatureGroup { results } = layer {
                for r in results {
                    match r {
                        Ok(good) => self.good(good.ka.cert().fingerprint(), good.sig),
                        Err(VerificationError::BadSignature { sig, ka, .. })
                            if made_within_skew(sig, &ka, self.now) =>
                        {
                            self.good(ka.cert().fingerprint(), sig)
                        }
                        Err(VerificationError::MissingKey { sig }) => {
                            self.sigs.push(SigStatus::UnknownKey {
                                issuer: issuer(sig),
                            });
                            self.sig_packets.push(sig.clone());
                        }
                        Err(VerificationError::BadSignature { sig, error, .. })
                        | Err(VerificationError::BadKey { sig, error, .. })
                        | Err(VerificationError::UnboundKey { sig, error, .. })
                        | Err(VerificationError::MalformedSignature { sig, error }) => {
                            let error = match ahead_of(sig, self.now) {
                                Some(ahead) => format!(
                                    "made {} minutes ahead of this machine's clock; the sender's clock is probably wrong ({})",
                                    (ahead.as_secs() + 30) / 60,
                                    one_line(&error)
                                ),
                                None => one_line(&error),
                            };
                            self.sigs.push(SigStatus::Bad {
                                issuer: issuer(sig),
                                error,
                            });
                        }
                        Err(e) => self.sigs.push(SigStatus::Bad {
                            issuer: String::new(),
                            error: one_line(&e),
                        }),
                    }
                }
            }
        }
        Ok(())
    }
}

/// The most recipient packets the list key tries on one message.
pub const MAX_TRIES: usize = 4;

impl<C: CertLookup + ?Sized> DecryptionHelper for Helper<'_, C> {
    fn decrypt(
        &mut self,
        pkesks: &[PKESK],
        _skesks: &[SKESK],
        sym_algo: Option<SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> openpgp::Result<Option<Cert>> {
        // Each try may cost a card operation: a message of many hidden
        // recipients gets a few, not one per packet.
        let mut tries = 0;
        let mut named_ours = false;
        for pkesk in pkesks {
            for d in self.decryptors.iter_mut() {
                let ours = match pkesk.recipient() {
                    Some(h) => h.aliases(d.public().key_handle()),
                    None => true, // a hidden recipient: try it
                };
                if !ours {
                    continue;
                }
                if tries == MAX_TRIES {
                    return Err(openpgp::anyhow::anyhow!(
                        "the list key tried {MAX_TRIES} recipient packets and none decrypted; the rest were not tried"
                    ));
                }
                tries += 1;
                named_ours |= pkesk.recipient().is_some();
                if let Some((algo, sk)) = pkesk.decrypt(d.as_mut(), sym_algo) {
                    if decrypt(algo, &sk) {
                        return Ok(None);
                    }
                }
            }
        }
        if named_ours {
            return Err(openpgp::anyhow::anyhow!(
                "the recipient packet for the list key does not open: it is malformed, or was not made with this key"
            ));
        }
        Err(openpgp::anyhow::anyhow!("no key to decrypt the message"))
    }
}

fn issuer(sig: &Signature) -> String {
    sig.get_issuers()
        .first()
        .map(|h| h.to_hex())
        .unwrap_or_else(|| "an unnamed key".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use openpgp::serialize::stream::{Encryptor, LiteralWriter, Message, Signer};
    use openpgp::types::AEADAlgorithm;
    use std::io::Write;

    /// Every AEAD mode a client may send in SEIPDv2 opens, whatever the list
    /// key advertises: OCB (RFC 9580's mandatory mode), GCM and EAX.
    #[test]
    fn seipd_v2_opens_with_ocb_gcm_and_eax() {
        let now = SystemTime::now();
        let pw = openpgp::crypto::Password::from("pw");
        let list = super::super::keystore::generate("list@example.test", "", &pw, now).unwrap();
        let (author, _) = openpgp::cert::CertBuilder::general_purpose(Some("a@example.test"))
            .generate()
            .unwrap();
        for aead in [AEADAlgorithm::OCB, AEADAlgorithm::GCM, AEADAlgorithm::EAX] {
            let mut sink = Vec::new();
            {
                let recipients = list
                    .keys()
                    .with_policy(policy(), now)
                    .for_transport_encryption();
                let message = Message::new(&mut sink);
                let message = Encryptor::for_recipients(message, recipients)
                    .aead_algo(aead)
                    .build()
                    .unwrap();
                let signer = author
                    .keys()
                    .with_policy(policy(), now)
                    .secret()
                    .for_signing()
                    .next()
                    .unwrap()
                    .key()
                    .clone()
                    .into_keypair()
                    .unwrap();
                let message = Signer::new(message, signer).unwrap().build().unwrap();
                let mut w = LiteralWriter::new(message).build().unwrap();
                w.write_all(b"sealed with AEAD").unwrap();
                w.finalize().unwrap();
            }
            let mut seipd_v2 = false;
            let mut ppr = openpgp::parse::PacketParser::from_bytes(&sink).unwrap();
            while let PacketParserResult::Some(pp) = ppr {
                if let Packet::SEIP(openpgp::packet::SEIP::V2(p)) = &pp.packet {
                    assert_eq!(p.aead(), aead);
                    seipd_v2 = true;
                    break;
                }
                ppr = pp.next().unwrap().1;
            }
            assert!(seipd_v2, "{aead}: SEIPDv2 written");
            let mut ks = super::super::keystore::FileKeystore::unlock(list.clone(), &pw).unwrap();
            use super::super::keystore::ListKeystore;
            let opened = open(
                &sink,
                ks.decryptors().unwrap(),
                std::slice::from_ref(&author),
                now,
                1 << 20,
            )
            .unwrap_or_else(|e| panic!("{aead}: {e}"));
            assert_eq!(opened.plaintext, b"sealed with AEAD", "{aead}");
            assert!(
                matches!(opened.sigs.as_slice(), [SigStatus::Good { .. }]),
                "{aead}: {:?}",
                opened.sigs
            );
        }
    }

    /// GnuPG 2.4's own OCB packet (LibrePGP, tag 20) is refused saying what
    /// it is, not as unreadable data.
    #[test]
    fn librepgp_ocb_is_refused_by_name() {
        // A v3 PKESK header for some key, then a tag-20 packet.
        let list = super::super::keystore::generate(
            "list@example.test",
            "",
            &"pw".into(),
            SystemTime::now(),
        )
        .unwrap();
        let mut msg = Vec::new();
        {
            let recipients = list
                .keys()
                .with_policy(policy(), None)
                .for_transport_encryption();
            let message = Message::new(&mut msg);
            let message = Encryptor::for_recipients(message, recipients)
                .build()
                .unwrap();
            let mut w = LiteralWriter::new(message).build().unwrap();
            w.write_all(b"x").unwrap();
            w.finalize().unwrap();
        }
        // Keep the PKESK, replace the SEIPD with an AED packet (new format,
        // tag 20): version 1, AES-256, OCB, chunk size 6, a 15-byte nonce.
        let pp = openpgp::parse::PacketParser::from_bytes(&msg).unwrap();
        let PacketParserResult::Some(pp) = pp else {
            panic!()
        };
        let mut pkesk = Vec::new();
        {
            use openpgp::serialize::Marshal;
            pp.packet.serialize(&mut pkesk).unwrap();
        }
        let mut body = vec![1u8, 9, 2, 6];
        body.extend_from_slice(&[0u8; 15]);
        body.extend_from_slice(&[0u8; 32]);
        let mut aed = vec![0xC0 | 20, u8::try_from(body.len()).unwrap()];
        aed.extend_from_slice(&body);
        pkesk.extend_from_slice(&aed);
        let e = open(&pkesk, Vec::new(), &[], SystemTime::now(), 1 << 20).unwrap_err();
        assert_eq!(e, OpenError::LibrePgpOcb);
        assert!(e.to_string().contains("LibrePGP"), "{e}");
    }

    /// A decryptor that counts how often it is asked.
    struct Counting(
        Box<dyn crypto::Decryptor + Send + Sync>,
        std::sync::Arc<std::sync::atomic::AtomicUsize>,
    );

    impl crypto::Decryptor for Counting {
        fn public(
            &self,
        ) -> &openpgp::packet::Key<
            openpgp::packet::key::PublicParts,
            openpgp::packet::key::UnspecifiedRole,
        > {
            self.0.public()
        }
        fn decrypt(
            &mut self,
            ciphertext: &openpgp::crypto::mpi::Ciphertext,
            plaintext_len: Option<usize>,
        ) -> openpgp::Result<SessionKey> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.0.decrypt(ciphertext, plaintext_len)
        }
    }

    /// Each try may be a card operation: a message of twelve hidden
    /// recipients, none the list's, costs the list key four tries, not twelve.
    #[test]
    fn a_message_of_many_hidden_recipients_is_tried_a_few_times() {
        use openpgp::serialize::stream::Recipient;
        let now = SystemTime::now();
        let pw = openpgp::crypto::Password::from("pw");
        let list = super::super::keystore::generate("list@example.test", "", &pw, now).unwrap();
        let others: Vec<Cert> = (0..12)
            .map(|i| {
                openpgp::cert::CertBuilder::general_purpose(Some(format!("o{i}@example.test")))
                    .generate()
                    .unwrap()
                    .0
            })
            .collect();
        let mut sink = Vec::new();
        {
            let recipients: Vec<Recipient> = others
                .iter()
                .map(|c| {
                    let ka = c
                        .keys()
                        .with_policy(policy(), now)
                        .for_transport_encryption()
                        .next()
                        .unwrap();
                    Recipient::new(
                        None::<openpgp::types::Features>,
                        None::<KeyHandle>,
                        ka.key(),
                    )
                })
                .collect();
            let message = Message::new(&mut sink);
            let message = Encryptor::for_recipients(message, recipients)
                .build()
                .unwrap();
            let mut w = LiteralWriter::new(message).build().unwrap();
            w.write_all(b"for others").unwrap();
            w.finalize().unwrap();
        }
        let mut ks = super::super::keystore::FileKeystore::unlock(list, &pw).unwrap();
        use super::super::keystore::ListKeystore;
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let decryptors: Vec<Box<dyn crypto::Decryptor + Send + Sync>> = ks
            .decryptors()
            .unwrap()
            .into_iter()
            .map(|d| {
                Box::new(Counting(d, count.clone())) as Box<dyn crypto::Decryptor + Send + Sync>
            })
            .collect();
        let err = open(&sink, decryptors, &[], now, 1 << 20).unwrap_err();
        assert!(
            err.to_string().contains("tried 4 recipient packets"),
            "{err}"
        );
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), MAX_TRIES);
    }
}
