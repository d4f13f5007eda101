//! Opening a post: decrypt it with the list key, verify every signature
//! against the subscribers' keys, attribute the signer, and look the signed
//! content up in the replay cache. This decides nothing: it reports
//! [`Facts`] for [`super::judge`], and keeps the opened post for the copies.

use sequoia_openpgp as openpgp;

use crate::crypto::decrypt::{self, SigStatus};
use crate::error::Result;
use crate::mime::parse::{self, Content, Incoming, Payload, Protected};

use super::judge::{Facts, SignatureFact};
use super::List;

/// A message as parsed: its outer headers and payload, or why it could not
/// be read.
pub(crate) type Parsed = std::result::Result<Incoming, String>;

/// A post opened, ready to fan out.
pub(crate) struct Opened {
    pub(crate) incoming: Incoming,
    /// The sender's address in the outer `From:` (empty when none).
    pub(crate) from: String,
    pub(crate) content: Content,
    pub(crate) protected: Protected,
    /// The raw decrypted bytes (for reconstructing encapsulated signatures).
    pub(crate) plaintext: Vec<u8>,
    pub(crate) sig_packets: Vec<openpgp::packet::Signature>,
    /// The verified author: (address, fingerprint), once judged so.
    pub(crate) author: Option<(String, String)>,
    /// Whether the text is cleartext-signed (inline).
    pub(crate) cleartext_signed: bool,
    /// The digest of the message as it arrived.
    pub(crate) digest: String,
    /// The sender's signed content, for the replay cache.
    pub(crate) replay_digest: Option<String>,
    /// Newer copies of the sender's own key it carried (same fingerprint).
    pub(crate) offered: Vec<super::lifecycle::OfferedCopy>,
    /// Whether it verified as signed by the sender's own key.
    pub(crate) sender_verified: bool,
}

/// A message decrypted (when it was encrypted) and every signature in it
/// checked against a set of keys. Nothing decided.
pub(crate) struct Unsealed {
    /// The decrypted bytes (the message's own body when it was clear).
    pub(crate) plaintext: Vec<u8>,
    /// Every signature found, checked.
    pub(crate) sigs: Vec<SigStatus>,
    /// The signature packets over the whole plaintext.
    pub(crate) sig_packets: Vec<openpgp::packet::Signature>,
    /// What is inside: the content, its protected headers.
    pub(crate) inside: parse::Inside,
    /// Whether a signature covers the protected headers.
    pub(crate) headers_signed: bool,
}

impl List {
    /// Decrypts a message (if it is encrypted) with the list key and
    /// checks every signature in it against the subscribers' keys and
    /// `candidates`. The inner `Err` says
    /// why the message cannot be read (its own fault); the outer one is
    /// not the message's fault (a locked key, a card that went away).
    pub(crate) fn unseal(
        &mut self,
        raw: &[u8],
        incoming: &Incoming,
        candidates: &super::Candidates,
        limit: usize,
    ) -> Result<std::result::Result<Unsealed, String>> {
        let now = self.clock.now();
        let encrypted = !matches!(incoming.payload, Payload::Clear);
        let (plaintext, pgp_mime, mut sigs, sig_packets) = match &incoming.payload {
            Payload::Clear => (
                crate::mime::split_head(raw).1.to_vec(),
                true,
                Vec::new(),
                Vec::new(),
            ),
            Payload::PgpMime(data) | Payload::Inline(data) => {
                let decryptors = self.keystore()?.decryptors()?;
                let certs = super::Subscribed {
                    store: &self.store,
                    candidates,
                };
                match decrypt::open(data, decryptors, &certs, now, limit) {
                    Ok(o) => (
                        o.plaintext,
                        matches!(incoming.payload, Payload::PgpMime(_)),
                        o.sigs,
                        o.sig_packets,
                    ),
                    Err(e) => {
                        // A card that was pulled is not the message's fault.
                        if let Some(failure) = self.keystore()?.take_failure() {
                            return Err(failure);
                        }
                        return Ok(Err(e.to_string()));
                    }
                }
            }
        };
        // For a clear message, the whole message is the entity.
        let entity_source: &[u8] = if encrypted { &plaintext } else { raw };
        let inside = parse::content(entity_source, pgp_mime);
        let certs = super::Subscribed {
            store: &self.store,
            candidates,
        };
        // The signature over the whole plaintext (signed and encrypted in
        // one) covers its headers too; a multipart/signed covers its first
        // part, whose headers `parse::content` read.
        let headers_signed = match &inside.content {
            Content::MimeSigned {
                signed, signature, ..
            } => {
                sigs.extend(decrypt::verify_detached(signed, signature, &certs, now).0);
                true
            }
            Content::Mime { .. } => !sigs.is_empty(),
            Content::Text { text } => {
                if inside.clearsigned {
                    sigs.extend(decrypt::verify_cleartext(text, &certs, now));
                }
                false
            }
        };
        Ok(Ok(Unsealed {
            plaintext,
            sigs,
            sig_packets,
            inside,
            headers_signed,
        }))
    }

    /// Opens post `post_id` (its bytes `raw`, parsed as `parsed`), its
    /// plaintext bounded by `limit`. Returns what it found, and the post
    /// when it opened. Fails only for what is not the post's fault: a
    /// locked key, a card that went away, the store.
    pub(crate) fn open_post(
        &mut self,
        post_id: i64,
        raw: &[u8],
        parsed: Parsed,
        limit: usize,
    ) -> Result<(Facts, Option<Box<Opened>>)> {
        let mut facts = Facts {
            size: raw.len(),
            ..Facts::default()
        };
        let incoming = match parsed {
            Ok(i) => i,
            Err(e) => {
                facts.unreadable = Some(e);
                return Ok((facts, None));
            }
        };
        let from = incoming.from.clone().unwrap_or_default();
        facts.from = from.clone();
        facts.is_member = self.store.is_subscriber(&from)?;
        facts.encrypted = !matches!(incoming.payload, Payload::Clear);
        let now = self.clock.now();

        let candidates = super::Candidates::default();
        let (unsealed, offered) = match self.unseal_from(raw, &incoming, &candidates, limit)? {
            Ok(u) => u,
            Err(why) => {
                facts.undecryptable = Some(why);
                return Ok((facts, None));
            }
        };
        let Unsealed {
            plaintext,
            sigs,
            sig_packets,
            inside,
            headers_signed,
        } = unsealed;
        let cleartext_signed = inside.clearsigned;
        facts.unsigned_because = inside.unsigned_because.clone();
        let (content, protected) = (inside.content, inside.protected);
        facts.inner_from = protected.from.clone();

        // Who signed it, and what did the sender sign before?
        let mut replay_digest = None;
        for s in &sigs {
            facts.signatures.push(match s {
                SigStatus::Good {
                    cert,
                    replay_digest: d,
                    created,
                } => {
                    let owners = self.store.subscribers_with_fingerprint(&cert.to_hex())?;
                    if owners.contains(&from) && replay_digest.is_none() {
                        replay_digest = Some(d.clone());
                        facts.signature_age = created
                            .and_then(|c| now.duration_since(c).ok())
                            .map(|age| age.as_secs());
                        if headers_signed {
                            facts.signed_to = protected.to.clone();
                        }
                    }
                    SignatureFact::Good {
                        fingerprint: cert.to_hex(),
                        owners,
                    }
                }
                SigStatus::Bad { issuer, error } => SignatureFact::Bad {
                    issuer: issuer.clone(),
                    error: error.clone(),
                },
                SigStatus::UnknownKey { issuer } => SignatureFact::UnknownKey {
                    issuer: issuer.clone(),
                },
            });
        }
        // A post its sender did not sign is known again by its decrypted
        // content: the same ciphertext, or the same text encrypted anew.
        if replay_digest.is_none() {
            replay_digest = Some(format!("content:{}", crate::hex::sha256_hex(&plaintext)));
            facts.replay_by_content = true;
        }
        if let Some(d) = &replay_digest {
            facts.replay_of = match self.store.replay_seen(d)? {
                Some((first, at)) if first != post_id => Some((first, at)),
                // This post itself (being approved, say).
                Some(_) => None,
                // Another instance of the list took it (post 0: not ours).
                None => match self.replay_mark(d) {
                    Some(mark) => self.store.replay_mark_seen(&mark)?.map(|at| (0, at)),
                    None => None,
                },
            };
        }
        let digest = crate::hex::sha256_hex(raw);
        let sender_verified = !facts.replay_by_content;
        Ok((
            facts,
            Some(Box::new(Opened {
                incoming,
                from,
                content,
                protected,
                plaintext,
                sig_packets,
                author: None,
                cleartext_signed,
                digest,
                sender_verified,
                replay_digest,
                offered,
            })),
        ))
    }
}
