//! Posts too large to download: the relay learns a post's size from the
//! server before fetching it, and a post over `max_message_size_kb` (when
//! its action is not distribute) is recorded from its header alone, judged
//! by its size, and filed in the mailbox whole, never downloaded.

use crate::crypto::seal;
use crate::error::{Error, Result};
use crate::events::Outcome;
use crate::mime::parse;

use super::judge::{self, Verdict};
use super::policy::{Action, Policy};
use super::receive::{sender_of, Judged};
use super::List;

impl List {
    /// Whether a post of `size` bytes (as the server counts them) is to be
    /// handled from its header alone.
    pub(crate) fn too_large_to_fetch(&self, size: u64) -> Result<bool> {
        let policy = Policy::load(&self.store)?;
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        Ok(judge::too_large(size, &policy).is_some())
    }

    /// Records a post from its header alone, sealed like any post, with its
    /// size at the server; returns its id. The whole message stays in the
    /// mailbox.
    pub(crate) fn record_partial(&mut self, header: &[u8], size: u64) -> Result<i64> {
        let sender = sender_of(&parse::incoming(header));
        let sealed = seal::encrypt_to(&self.cert, header, self.clock.now())?;
        let digest = crate::hex::sha256_hex(header);
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        self.store.transaction(|s| {
            let id = s.insert_sealed_post(&sealed, size, &digest, &sender, self.clock.unix())?;
            s.set_post_partial(id)?;
            Ok(id)
        })
    }

    /// Decides what becomes of a post recorded from its header alone: the
    /// size rule, as for any post, before anything is opened.
    pub(crate) fn process_oversized(&mut self, post_id: i64) -> Result<Outcome> {
        let Some(post) = self.store.post(post_id)? else {
            return Err(Error::NotFound(format!("no post #{post_id}")));
        };
        let sender = if post.sender.is_empty() {
            "an unknown sender".to_owned()
        } else {
            post.sender.clone()
        };
        self.store.audit(
            self.clock.unix(),
            Some(post_id),
            "received",
            &format!(
                "{} bytes from {sender} (too large: only its header was downloaded)",
                post.size
            ),
        )?;
        let policy = Policy::load(&self.store)?;
        let size = usize::try_from(post.size).unwrap_or(usize::MAX);
        // The owner may have raised the limit meanwhile: the post is still
        // not downloaded here, so it waits for them in Held.
        let verdict = judge::too_large(size, &policy).unwrap_or_else(|| Verdict::Stop {
            action: Action::Hold,
            stage: judge::Stage::Size,
            reason: format!(
                "too large to download: {} KiB; it is kept in the mailbox",
                size.div_ceil(1024)
            ),
            author: None,
        });
        self.conclude(
            post_id,
            Judged {
                verdict,
                post: None,
            },
        )
    }
}
