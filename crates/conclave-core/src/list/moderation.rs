//! Moderation: the posts held for the owner, opened in memory to be read
//! (nothing written), approved (judged again with the options lifted),
//! rejected or discarded (the ciphertext stays, the reason is logged).

use crate::crypto::decrypt::SigStatus;
use crate::crypto::{certs, decrypt};
use crate::error::{Error, Result};
use crate::events::Outcome;
use crate::mime::parse::{self, Content};
use crate::store::{PostState, StoredPost};

use super::judge::Verdict;
use super::open::Opened;
use super::policy::Policy;
use super::{AttachedKey, HeldView, List};

/// Whether `cert` made a signature on the opened post that verifies.
fn signed_with(opened: &Opened, cert: &sequoia_openpgp::Cert, now: std::time::SystemTime) -> bool {
    let certs = std::slice::from_ref(cert);
    let good = |sigs: &[SigStatus]| sigs.iter().any(|s| matches!(s, SigStatus::Good { .. }));
    match &opened.content {
        Content::MimeSigned {
            signed, signature, ..
        } => good(&decrypt::verify_detached(signed, signature, certs, now).0),
        Content::Text { text } if opened.cleartext_signed => {
            good(&decrypt::verify_cleartext(text, certs, now))
        }
        _ => match super::fanout::armored_sigs(&opened.sig_packets) {
            Ok(sigs) if !sigs.is_empty() => {
                good(&decrypt::verify_detached(&opened.plaintext, &sigs, certs, now).0)
            }
            _ => false,
        },
    }
}

impl List {
    /// The posts waiting for the owner.
    pub fn held(&self) -> Result<Vec<StoredPost>> {
        self.store.posts_in_state(PostState::Held)
    }

    fn held_post(&self, id: i64) -> Result<StoredPost> {
        match self.store.post(id)? {
            Some(p) if p.state == PostState::Held => Ok(p),
            Some(p) => Err(Error::NotFound(format!(
                "post #{id} is not held (it was {})",
                p.state.as_str()
            ))),
            None => Err(Error::NotFound(format!("no post #{id}"))),
        }
    }

    /// The message as it arrived, unsealing it if it was stored sealed.
    pub(crate) fn original(&mut self, post: &StoredPost) -> Result<Vec<u8>> {
        if post.purged {
            return Err(Error::NotFound(format!(
                "the stored bytes of post #{} were deleted (store.retention_days)",
                post.id
            )));
        }
        if !post.sealed {
            return Ok(post.raw.clone());
        }
        let decryptors = self.keystore()?.decryptors()?;
        let limit = usize::try_from(post.size)
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        match decrypt::open(&post.raw, decryptors, &[], self.clock.now(), limit) {
            Ok(o) => Ok(o.plaintext),
            Err(e) => Err(self
                .keystore()?
                .take_failure()
                .unwrap_or_else(|| Error::crypto("unseal the stored post", e))),
        }
    }

    /// Opens a held post in memory for the owner to read. Nothing is
    /// written: the post is opened and judged as an approval would, to show
    /// what it holds and who signed it.
    pub fn held_show(&mut self, id: i64) -> Result<HeldView> {
        let post = self.held_post(id)?;
        downloaded(&post)?;
        let raw = self.original(&post)?;
        let parsed = parse::incoming(&raw);
        let subject_outer = parsed
            .as_ref()
            .ok()
            .and_then(|i| i.subject.clone())
            .unwrap_or_default();
        let policy = Policy::load(&self.store)?;
        let judged = self.judged(post.id, &raw, parsed, &policy, &policy.approved())?;
        let mut keys = Vec::new();
        let (text, subject, signature) = match (&judged.verdict, &judged.post) {
            (Verdict::Distribute { author }, Some(opened)) => {
                let subject = opened
                    .protected
                    .subject
                    .clone()
                    .filter(|s| s != "...")
                    .unwrap_or(subject_outer);
                let text = match &opened.content {
                    Content::MimeSigned { signed, .. } => parse::first_text(signed),
                    Content::Mime { entity } => parse::first_text(entity),
                    Content::Text { text } => Some(String::from_utf8_lossy(text).into_owned()),
                }
                .unwrap_or_default();
                if let Content::MimeSigned { signed: entity, .. } | Content::Mime { entity } =
                    &opened.content
                {
                    let now = self.clock.now();
                    for bytes in parse::attached_keys(entity) {
                        let Ok(cert) = certs::parse_public_cert(&bytes) else {
                            continue;
                        };
                        // A key is offered only if it made the post's
                        // signature: any key can be attached to anything.
                        if !signed_with(opened, &cert, now) {
                            continue;
                        }
                        keys.push(AttachedKey {
                            fingerprint: cert.fingerprint().to_hex(),
                            addresses: certs::addresses(&cert, now),
                            armored: String::from_utf8_lossy(&certs::armored(&cert)?).into_owned(),
                        });
                    }
                }
                let signature = match author {
                    Some(fpr) => format!("signed by {} (key {fpr})", post.sender),
                    None => "not signed by the sender".into(),
                };
                (text, subject, signature)
            }
            (Verdict::Stop { reason, .. }, _) => (
                String::new(),
                subject_outer,
                format!("cannot be opened: {reason}"),
            ),
            (Verdict::Distribute { .. }, None) => (String::new(), subject_outer, String::new()),
        };
        Ok(HeldView {
            id,
            sender: post.sender,
            reason: post.reason,
            subject,
            signature,
            text,
            keys,
        })
    }

    /// Approves a held post: it is distributed whatever the options said,
    /// as long as it still passes the checks before them.
    pub fn held_approve(&mut self, id: i64) -> Result<Outcome> {
        let post = self.held_post(id)?;
        if self.store.post_kind(id)? == "owner" {
            return Err(Error::InvalidInput(format!(
                "message #{id} was written to the owner address: it is never sent to subscribers; discard it once read"
            )));
        }
        downloaded(&post)?;
        let raw = self.original(&post)?;
        self.store.audit(
            self.clock.unix(),
            Some(id),
            "approved",
            "approved by the owner",
        )?;
        let policy = Policy::load(&self.store)?;
        let judged = self.judged(id, &raw, parse::incoming(&raw), &policy, &policy.approved())?;
        self.conclude(id, judged)
    }

    /// Rejects a held post with the owner's reason.
    pub fn held_reject(&mut self, id: i64, reason: &str) -> Result<Outcome> {
        self.held_post(id)?;
        let reason = format!(
            "rejected by the owner: {}",
            crate::mime::build::clean(reason)
        );
        self.record_outcome(id, Outcome::Rejected { post: id, reason }, "")
    }

    /// Discards a held post (its ciphertext stays in the store).
    pub fn held_discard(&mut self, id: i64) -> Result<Outcome> {
        self.held_post(id)?;
        let reason = "discarded by the owner".to_string();
        self.record_outcome(id, Outcome::Discarded { post: id, reason }, "")
    }
}

/// Fails for a post recorded from its header alone: there is nothing here
/// to open or distribute, and the whole message is in the mailbox.
fn downloaded(post: &StoredPost) -> Result<()> {
    if !post.partial {
        return Ok(());
    }
    Err(Error::InvalidInput(format!(
        "post #{} was too large to download ({} KiB): only its header is stored, and the whole message is in the list mailbox's Conclave/Held folder; reject or discard it here, or read it there with a mail client",
        post.id,
        u64::try_from(post.size).unwrap_or(0).div_ceil(1024)
    )))
}
