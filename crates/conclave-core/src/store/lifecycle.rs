//! The store's part of key lifecycle: which expiry notices went out (once
//! per key and expiry date), the "you missed a post" notices (at most one
//! a day per subscriber, with a count of the posts missed), when the daily
//! key check last ran, and the notice rows in `posts` the check's notices
//! hang from in the outbox.

use rusqlite::{params, OptionalExtension};

use super::Store;
use crate::error::{Result, StoreContext};

/// A subscriber who is not receiving posts, as the store remembers them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissedNotice {
    /// Their address.
    pub address: String,
    /// The key that could not be used.
    pub fingerprint: String,
    /// When they were last told (Unix seconds).
    pub sent_at: i64,
    /// How many posts they missed since `since`.
    pub missed: i64,
    /// When they missed the first of those (Unix seconds).
    pub since: i64,
}

impl Store {
    /// Whether the expiry notice for `address`'s key `fingerprint`, expiring
    /// on `date`, went out.
    pub fn expiry_notice_sent(&self, address: &str, date: &str) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT 1 FROM key_notices WHERE address = ?1 AND kind = 'expiry' AND about = ?2",
                params![address, date],
                |_| Ok(()),
            )
            .optional()
            .store("read the key notices")
            .map(|r| r.is_some())
    }

    /// Remembers that the expiry notice for `address`'s key, expiring on
    /// `date`, went out.
    pub fn note_expiry_notice(
        &self,
        address: &str,
        fingerprint: &str,
        date: &str,
        now: i64,
    ) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO key_notices (address, kind, about, fingerprint, sent_at)
                 VALUES (?1, 'expiry', ?2, ?3, ?4)",
                params![address, date, fingerprint, now],
            )
            .map(|_| ())
            .store("remember a key notice")
    }

    /// Counts one post `address` missed with key `fingerprint`; returns
    /// true when they should be told now (not told in the last day, or told
    /// about another key).
    pub fn note_missed_post(&self, address: &str, fingerprint: &str, now: i64) -> Result<bool> {
        self.transaction(|s| {
            let row: Option<(String, i64)> = s
                .conn
                .query_row(
                    "SELECT fingerprint, sent_at FROM key_notices WHERE address = ?1 AND kind = 'missed' AND about = ''",
                    [address],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .store("read the key notices")?;
            let tell = match &row {
                Some((fpr, sent)) => fpr != fingerprint || now - sent >= 86_400,
                None => true,
            };
            match row {
                Some((fpr, _)) if fpr == fingerprint => s.conn.execute(
                    "UPDATE key_notices SET missed = missed + 1,
                            sent_at = CASE WHEN ?3 THEN ?2 ELSE sent_at END
                     WHERE address = ?1 AND kind = 'missed' AND about = ''",
                    params![address, now, tell],
                ),
                _ => s.conn.execute(
                    "INSERT OR REPLACE INTO key_notices (address, kind, about, fingerprint, sent_at, missed, since)
                     VALUES (?1, 'missed', '', ?2, ?3, 1, ?3)",
                    params![address, fingerprint, now],
                ),
            }
            .store("count a missed post")?;
            Ok(tell)
        })
    }

    /// Forgets that `address` missed posts (their key serves again, or
    /// they left).
    pub fn clear_missed_posts(&self, address: &str) -> Result<()> {
        self.conn
            .execute(
                "DELETE FROM key_notices WHERE address = ?1 AND kind = 'missed'",
                [address],
            )
            .map(|_| ())
            .store("forget missed posts")
    }

    /// The subscribers who missed posts, by address.
    pub fn missed_posts(&self) -> Result<Vec<MissedNotice>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT k.address, k.fingerprint, k.sent_at, k.missed, k.since FROM key_notices k
                 JOIN subscribers s ON s.address = k.address
                 WHERE k.kind = 'missed' ORDER BY k.address",
            )
            .store("read missed posts")?;
        let rows = stmt
            .query_map([], |r| {
                Ok(MissedNotice {
                    address: r.get(0)?,
                    fingerprint: r.get(1)?,
                    sent_at: r.get(2)?,
                    missed: r.get(3)?,
                    since: r.get(4)?,
                })
            })
            .store("read missed posts")?;
        rows.collect::<std::result::Result<_, _>>()
            .store("read missed posts")
    }

    /// When the daily key check last ran (Unix seconds), if it did.
    pub fn last_key_check(&self) -> Result<Option<i64>> {
        self.conn
            .query_row("SELECT last_at FROM key_checks WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()
            .store("read the last key check")
    }

    /// Remembers that the key check ran at `now`.
    pub fn note_key_check(&self, now: i64) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO key_checks (id, last_at) VALUES (1, ?1)",
                [now],
            )
            .map(|_| ())
            .store("remember the key check")
    }

    /// A row in `posts` for notices the list sends of its own accord (the
    /// key check's), which replies in the outbox hang from: no bytes, no
    /// sender, never a post, never shown as one.
    pub fn insert_notice_row(&self, reason: &str, now: i64) -> Result<i64> {
        self.conn
            .execute(
                "INSERT INTO posts (received_at, digest, size, raw, sealed, sender, state, reason, updated_at, kind)
                 VALUES (?1, '', 0, x'', 1, '', 'discarded', ?2, ?1, 'notice')",
                params![now, reason],
            )
            .store("record a notice")?;
        Ok(self.conn.last_insert_rowid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missed_post_is_told_once_a_day_and_counted() {
        let s = Store::open_in_memory().unwrap();
        s.put_subscriber("bob@example.org", "FPR", b"x", 0).unwrap();
        assert!(s.note_missed_post("bob@example.org", "FPR", 1_000).unwrap());
        assert!(!s.note_missed_post("bob@example.org", "FPR", 2_000).unwrap());
        assert!(!s
            .note_missed_post("bob@example.org", "FPR", 1_000 + 86_399)
            .unwrap());
        assert!(s
            .note_missed_post("bob@example.org", "FPR", 1_000 + 86_400)
            .unwrap());
        // Another key (a key change since): told at once.
        assert!(s
            .note_missed_post("bob@example.org", "FPR2", 90_000)
            .unwrap());
        let m = s.missed_posts().unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!((m[0].missed, m[0].since), (1, 90_000));
        s.clear_missed_posts("bob@example.org").unwrap();
        assert!(s.missed_posts().unwrap().is_empty());
    }

    #[test]
    fn an_expiry_notice_is_remembered_per_date() {
        let s = Store::open_in_memory().unwrap();
        assert!(!s.expiry_notice_sent("a@example.org", "2027-01-01").unwrap());
        s.note_expiry_notice("a@example.org", "FPR", "2027-01-01", 5)
            .unwrap();
        assert!(s.expiry_notice_sent("a@example.org", "2027-01-01").unwrap());
        assert!(!s.expiry_notice_sent("a@example.org", "2029-01-01").unwrap());
        assert_eq!(s.last_key_check().unwrap(), None);
        s.note_key_check(7).unwrap();
        assert_eq!(s.last_key_check().unwrap(), Some(7));
    }
}
