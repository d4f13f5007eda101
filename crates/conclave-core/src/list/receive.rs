//! The way in: a message's bytes, parsed once, recorded sealed, opened
//! ([`super::open`]), judged ([`super::judge`]), and concluded here: the
//! outcome, the replay cache and the copies are written, the log says why,
//! and the front end hears of it.

use crate::crypto::seal;
use crate::error::Result;
use crate::events::{Event, Outcome};
use crate::mime::parse;
use crate::store::PostState;

use super::classify::{classify, Kind};
use super::judge::{self, Verdict};
use super::open::{Opened, Parsed};
use super::policy::{Action, Policy};
use super::List;

/// A post judged: the verdict, and the post as it opened (when it did).
pub(crate) struct Judged {
    pub(crate) verdict: Verdict,
    pub(crate) post: Option<Box<Opened>>,
}

impl List {
    /// Takes one message as it arrived and decides what becomes of it. The
    /// message is recorded (as ciphertext) before anything else happens, and
    /// every outcome is logged with its reason.
    pub fn receive(&mut self, raw: &[u8]) -> Result<Outcome> {
        self.keystore()?;
        let parsed = parse::incoming(raw);
        let (post_id, _) = self.record_post(raw, &sender_of(&parsed))?;
        self.process_parsed(post_id, raw, parsed)
    }

    /// Decides what becomes of a recorded post and logs it.
    pub(crate) fn process_post(&mut self, post_id: i64, raw: &[u8]) -> Result<Outcome> {
        self.process_parsed(post_id, raw, parse::incoming(raw))
    }

    /// [`List::process_post`] for a message already parsed.
    pub(crate) fn process_parsed(
        &mut self,
        post_id: i64,
        raw: &[u8],
        parsed: Parsed,
    ) -> Result<Outcome> {
        let sender = sender_of(&parsed);
        self.store.audit(
            self.clock.unix(),
            Some(post_id),
            "received",
            &format!(
                "{} bytes from {}",
                raw.len(),
                if sender.is_empty() {
                    "an unknown sender"
                } else {
                    &sender
                }
            ),
        )?;
        if let Ok(incoming) = &parsed {
            if let Some(outcome) = self.keyserver_mail(post_id, raw, incoming)? {
                return Ok(outcome);
            }
        }
        let kind = match &parsed {
            Ok(incoming) => classify(incoming, &self.addresses()?),
            Err(_) => Kind::Post,
        };
        if kind != Kind::Post {
            if let Ok(incoming) = parsed {
                return self.not_a_post(post_id, raw, incoming, kind);
            }
        }
        let policy = Policy::load(&self.store)?;
        // Whatever fails inside opening or judging a post, even a panic in a
        // library, ends with that post refused and its ciphertext kept: one
        // bad post never stops the posts behind it.
        let judged = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.judged(post_id, raw, parsed, &policy, &policy)
        }))
        .unwrap_or_else(|panic| {
            Err(crate::error::Error::InvalidInput(format!(
                "internal error while opening the post ({}); the message is kept",
                crate::crypto::decrypt::panic_text(&*panic)
            )))
        });
        crate::events::timing("post decrypted, verified and judged");
        match judged {
            Ok(judged) => self.conclude(post_id, judged),
            // What cannot be opened for the post's own sake is refused, saying
            // why; a locked key, a pulled card or a failing disk is not the
            // post's fault, and leaves it to be processed again.
            Err(e) if e.is_post_fault() => self.record_outcome(
                post_id,
                Outcome::Rejected {
                    post: post_id,
                    reason: e.to_string(),
                },
                "",
            ),
            Err(e) => Err(e),
        }
    }

    /// Records a message as it arrived, sealed to the list key, and returns
    /// its id and digest. Even an encrypted post carries clear outer headers
    /// (a Subject the client did not protect, say), so the exact bytes are
    /// kept, but never in clear.
    pub fn record_post(&mut self, raw: &[u8], sender: &str) -> Result<(i64, String)> {
        let sealed = seal::encrypt_to(&self.cert, raw, self.clock.now())?;
        let digest = crate::hex::sha256_hex(raw);
        let id = self.store.insert_sealed_post(
            &sealed,
            raw.len(),
            &digest,
            sender,
            self.clock.unix(),
        )?;
        Ok((id, digest))
    }

    /// Opens a post (unless it is too large to) and judges it under `rules`;
    /// `policy` bounds the opening (the plaintext limit). Writes nothing.
    pub(crate) fn judged(
        &mut self,
        post_id: i64,
        raw: &[u8],
        parsed: Parsed,
        policy: &Policy,
        rules: &Policy,
    ) -> Result<Judged> {
        if let Some(verdict) = judge::too_large(raw.len(), rules) {
            return Ok(Judged {
                verdict,
                post: None,
            });
        }
        let (facts, post) = self.open_post(post_id, raw, parsed, policy.plaintext_limit())?;
        Ok(Judged {
            verdict: judge::judge(&facts, rules),
            post,
        })
    }

    /// Writes what the verdict says: the replay cache for a post that got
    /// past the replay check, the copies of a distributed post, its state,
    /// the log line and the event.
    pub(crate) fn conclude(&mut self, post_id: i64, judged: Judged) -> Result<Outcome> {
        let Judged { verdict, post } = judged;
        // A newer copy of the sender's own key is taken before the copies
        // are made, so they go to the key as it now is.
        if let Some(p) = post.as_ref().filter(|p| !p.offered.is_empty()) {
            self.take_offered_copies(post_id, &p.from, &p.offered, p.sender_verified)?;
        }
        if verdict.passed_replay_check() {
            if let Some(digest) = post.as_ref().and_then(|p| p.replay_digest.as_deref()) {
                self.store
                    .replay_remember(digest, post_id, self.clock.unix())?;
            }
        }
        let signer = verdict.author().unwrap_or_default().to_string();
        match verdict {
            Verdict::Distribute { author } => {
                let Some(mut post) = post else {
                    return Err(crate::error::Error::InvalidInput(format!(
                        "post #{post_id} was judged without being opened"
                    )));
                };
                post.author = author.map(|fpr| (post.from.clone(), fpr));
                let copies = self.distribute(post_id, &post)?;
                crate::events::timing("post fanned out into the outbox");
                self.record_outcome(
                    post_id,
                    Outcome::Distributed {
                        post: post_id,
                        copies,
                    },
                    &signer,
                )
            }
            Verdict::Stop { action, reason, .. } => {
                let outcome = match action {
                    Action::Hold => Outcome::Held {
                        post: post_id,
                        reason,
                    },
                    Action::Discard => Outcome::Discarded {
                        post: post_id,
                        reason,
                    },
                    Action::Reject | Action::Distribute => Outcome::Rejected {
                        post: post_id,
                        reason,
                    },
                };
                self.record_outcome(post_id, outcome, &signer)
            }
        }
    }

    /// Records a post's outcome: its state and reason, the log line, the
    /// event.
    pub(crate) fn record_outcome(
        &mut self,
        post_id: i64,
        outcome: Outcome,
        signer: &str,
    ) -> Result<Outcome> {
        let ts = self.clock.unix();
        let (state, event, detail) = match &outcome {
            Outcome::Distributed { copies, .. } => (
                PostState::Distributed,
                "distributed",
                format!("{copies} copies queued"),
            ),
            Outcome::Held { reason, .. } => (PostState::Held, "held", reason.clone()),
            Outcome::Rejected { reason, .. } => (PostState::Rejected, "rejected", reason.clone()),
            Outcome::Discarded { reason, .. } => {
                (PostState::Discarded, "discarded", reason.clone())
            }
            Outcome::Answered { reason, .. } => (PostState::Discarded, "request", reason.clone()),
            Outcome::Bounce { reason, .. } => (PostState::Discarded, "bounce", reason.clone()),
        };
        let reason = if state == PostState::Distributed {
            ""
        } else {
            detail.as_str()
        };
        self.store
            .set_post_state(post_id, state, reason, signer, ts)?;
        self.store.audit(ts, Some(post_id), event, &detail)?;
        // A sender not told (the list key locked, the card away) is in the
        // log; the outcome stands.
        if let Err(e) = self.notify_sender(post_id, &outcome) {
            self.store.audit(
                ts,
                Some(post_id),
                "not-answered",
                &format!("the sender was not told: {e}"),
            )?;
        }
        self.emit(&Event::Post(outcome.clone()));
        Ok(outcome)
    }
}

/// The sender's address of a parsed message, or empty.
pub(crate) fn sender_of(parsed: &Parsed) -> String {
    parsed
        .as_ref()
        .ok()
        .and_then(|i| i.from.clone())
        .unwrap_or_default()
}
