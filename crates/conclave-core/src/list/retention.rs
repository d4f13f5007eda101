//! Retention: how long the store keeps the sealed bytes of posts that were
//! refused (rejected or discarded). `store.retention_days` (0: forever)
//! counts from the decision; held posts and posts with copies still queued
//! are never purged. The row, its state and its reason stay, and the log
//! says how many were purged. Copies the server accepted leave the outbox
//! after `store.sent_retention_days` (0: never), with the shared bodies no
//! copy needs any more: a list of 100,000 would otherwise keep 100,000
//! rows for every post.

use crate::error::{Error, Result};

use super::List;

impl List {
    /// Deletes the stored bytes of refused posts older than the retention
    /// period; returns how many. The relay applies it at each pass.
    pub fn apply_retention(&mut self) -> Result<usize> {
        let key = "store.retention_days";
        let days: i64 = self
            .store
            .config_get(key)?
            .unwrap_or_else(|| super::settings::default_of(key).to_owned())
            .parse()
            .map_err(|_| Error::InvalidInput(format!("{key} is not a number")))?;
        if days <= 0 {
            self.prune_sent_copies()?;
            return Ok(0);
        }
        let now = self.clock.unix();
        let before = now.saturating_sub(days.saturating_mul(86_400));
        let purged = self.store.purge_refused_posts(before, now)?;
        if purged > 0 {
            self.store.audit(
                now,
                None,
                "retention",
                &format!(
                    "deleted the stored bytes of {purged} rejected or discarded post{} decided more than {days} day{} ago ({key})",
                    if purged == 1 { "" } else { "s" },
                    if days == 1 { "" } else { "s" }
                ),
            )?;
        }
        self.prune_sent_copies()?;
        Ok(purged)
    }

    /// Deletes the outbox rows of copies sent longer ago than
    /// `store.sent_retention_days`; returns how many.
    pub fn prune_sent_copies(&mut self) -> Result<usize> {
        let key = "store.sent_retention_days";
        let days: i64 = self
            .store
            .config_get(key)?
            .unwrap_or_else(|| super::settings::default_of(key).to_owned())
            .parse()
            .map_err(|_| Error::InvalidInput(format!("{key} is not a number")))?;
        if days <= 0 {
            return Ok(0);
        }
        let now = self.clock.unix();
        let pruned = self
            .store
            .prune_sent(now.saturating_sub(days.saturating_mul(86_400)))?;
        if pruned > 0 {
            self.store.audit(
                now,
                None,
                "retention",
                &format!(
                    "removed {pruned} cop{} sent more than {days} day{} ago from the outbox ({key})",
                    if pruned == 1 { "y" } else { "ies" },
                    if days == 1 { "" } else { "s" }
                ),
            )?;
        }
        Ok(pruned)
    }
}
