//! Copies that waited are signed again: a queued copy whose list signature
//! is over an hour old is replaced by a fresh one (a new signature and
//! `Date:`, the same Message-ID) before it goes out. Crypto only: the relay
//! calls it before each delivery pass.

use crate::error::{Error, Result};
use crate::store::CopyRef;

use super::List;

/// A copy whose list signature is older than this, in seconds, when it is
/// about to go out is signed again first: clients such as Thunderbird flag a
/// signature made long before the message's `Date:`, and the copy's `Date:`
/// is the time of signing.
pub const RESIGN_AFTER: i64 = 3600;

impl List {
    /// Whether some due copy was signed over [`RESIGN_AFTER`] seconds ago.
    pub(crate) fn has_stale_copies(&self) -> Result<bool> {
        let now = self.clock.unix();
        Ok(!self.store.stale_copies(now, now - RESIGN_AFTER)?.is_empty())
    }

    /// Signs again the posts whose due copies were signed more than
    /// [`RESIGN_AFTER`] seconds ago (delivery was deferred, or the list was
    /// not running), and replaces those copies with fresh ones: a new
    /// signature and `Date:`, the same Message-ID. Copies already sent are
    /// left alone. A post that cannot be signed again (the key is locked,
    /// say) keeps its copies as they are, and the log says why. Returns how
    /// many copies were replaced.
    pub fn refresh_stale_copies(&mut self) -> Result<usize> {
        let now = self.clock.unix();
        let mut replaced = 0;
        for (post_id, copies) in self.store.stale_copies(now, now - RESIGN_AFTER)? {
            match self.resign(post_id, &copies) {
                Ok(n) => {
                    replaced += n;
                    self.store.audit(
                        now,
                        Some(post_id),
                        "re-signed",
                        &format!(
                            "{n} queued copies signed again: their signature was over an hour old"
                        ),
                    )?;
                }
                Err(e @ (Error::Store { .. } | Error::Io { .. })) => return Err(e),
                Err(e) => self.store.audit(
                    now,
                    Some(post_id),
                    "not-re-signed",
                    &format!(
                        "{} queued copies go out with their old signature: {e}",
                        copies.len()
                    ),
                )?,
            }
        }
        Ok(replaced)
    }

    fn resign(&mut self, post_id: i64, copies: &[CopyRef]) -> Result<usize> {
        let post = self
            .store
            .post(post_id)?
            .ok_or_else(|| Error::NotFound(format!("no post #{post_id}")))?;
        let raw = self.original(&post)?;
        let policy = super::policy::Policy::load(&self.store)?;
        let judged = self.judged(
            post_id,
            &raw,
            crate::mime::parse::incoming(&raw),
            &policy,
            &policy.approved(),
        )?;
        match (judged.verdict, judged.post) {
            (super::judge::Verdict::Distribute { author }, Some(mut opened)) => {
                opened.author = author.map(|fpr| (opened.from.clone(), fpr));
                self.distribute_to(post_id, &opened, Some(copies))
            }
            (super::judge::Verdict::Stop { reason, .. }, _) => Err(Error::InvalidInput(format!(
                "the post no longer opens: {reason}"
            ))),
            (super::judge::Verdict::Distribute { .. }, None) => {
                Err(Error::InvalidInput("the post no longer opens".into()))
            }
        }
    }
}
