//! What the store keeps for fan-outs at scale (migration 0013): each
//! subscriber's derived recipient state and key IDs, a post's shared body
//! with the outer headers its copies share, one row per copy holding only
//! its recipient packets, and the pruning of sent copies.

use rusqlite::{params, OptionalExtension};

use crate::error::{Result, StoreContext};

use super::Store;

/// What the store keeps of a subscriber's key for fan-outs (derived from
/// the certificate above the store, `crypto::certs::recipient`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientRow {
    /// The encryption subkeys to use: fingerprint and packet of each
    /// (empty: the key cannot be encrypted to).
    pub keys: Vec<u8>,
    /// Whether the key asks for SEIPDv2.
    pub seipd_v2: bool,
    /// From when this choice holds (Unix seconds).
    pub usable_from: i64,
    /// Until when it holds (None: no end).
    pub usable_until: Option<i64>,
}

impl RecipientRow {
    /// Whether the choice still holds at `now` (Unix seconds).
    pub fn holds_at(&self, now: i64) -> bool {
        now >= self.usable_from && self.usable_until.is_none_or(|until| now < until)
    }
}

/// One subscriber as a fan-out reads them.
#[derive(Debug, Clone)]
pub struct StoredRecipient {
    /// Their address.
    pub address: String,
    /// What was derived from their key; None when it was not derived yet.
    pub recipient: Option<RecipientRow>,
}

/// One copy to queue under a shared body.
#[derive(Debug, Clone)]
pub struct RecipientCopy {
    /// Whom it goes to.
    pub recipient: String,
    /// Their recipient packets (PKESKs), binary.
    pub pkesks: Vec<u8>,
}

impl Store {
    /// The connection, for tests that set up what only an older store holds.
    #[cfg(test)]
    pub(crate) fn conn(&self) -> &rusqlite::Connection {
        &self.conn
    }

    /// Keeps what was derived from a subscriber's key, and its key IDs.
    pub fn set_recipient(
        &self,
        address: &str,
        recipient: &RecipientRow,
        key_ids: &[String],
    ) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO recipients (address, keys, seipd_v2, usable_from, usable_until)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    address,
                    recipient.keys,
                    recipient.seipd_v2,
                    recipient.usable_from,
                    recipient.usable_until
                ],
            )
            .store("keep a subscriber's encryption keys")?;
        self.conn
            .execute("DELETE FROM subscriber_keys WHERE address = ?1", [address])
            .store("index a subscriber's key")?;
        let mut stmt = self
            .conn
            .prepare_cached(
                "INSERT OR IGNORE INTO subscriber_keys (key_id, address) VALUES (?1, ?2)",
            )
            .store("index a subscriber's key")?;
        for id in key_ids {
            stmt.execute(params![id, address])
                .store("index a subscriber's key")?;
        }
        Ok(())
    }

    /// Calls `f` for every subscriber with what was derived from their
    /// key (in address order), then for every subscriber whose key was not
    /// derived yet. The rows are read a page at a time, and no statement
    /// is open while `f` runs: `f` may write and commit (a fan-out queues
    /// its copies as they are made), and the memory stays flat.
    pub fn each_recipient(&self, mut f: impl FnMut(StoredRecipient) -> Result<()>) -> Result<()> {
        const PAGE: i64 = 512;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT address, keys, seipd_v2, usable_from, usable_until
                 FROM recipients WHERE address > ?1 ORDER BY address LIMIT ?2",
            )
            .store("read subscribers")?;
        let mut after = String::new();
        loop {
            let page = stmt
                .query_map(params![after, PAGE], |r| {
                    Ok(StoredRecipient {
                        address: r.get(0)?,
                        recipient: Some(RecipientRow {
                            keys: r.get(1)?,
                            seipd_v2: r.get(2)?,
                            usable_from: r.get(3)?,
                            usable_until: r.get(4)?,
                        }),
                    })
                })
                .store("read subscribers")?
                .collect::<std::result::Result<Vec<_>, _>>()
                .store("read subscribers")?;
            let Some(last) = page.last() else { break };
            after = last.address.clone();
            let full = page.len() as i64 == PAGE;
            for r in page {
                f(r)?;
            }
            if !full {
                break;
            }
        }
        drop(stmt);
        let underived: Vec<String> = self
            .conn
            .prepare(
                "SELECT address FROM subscribers
                 WHERE address NOT IN (SELECT address FROM recipients) ORDER BY address",
            )
            .store("read subscribers")?
            .query_map([], |r| r.get(0))
            .store("read subscribers")?
            .collect::<std::result::Result<_, _>>()
            .store("read subscribers")?;
        for address in underived {
            f(StoredRecipient {
                address,
                recipient: None,
            })?;
        }
        Ok(())
    }

    /// The subscribers whose keys include one of `key_ids` (hex), with
    /// their certificates.
    pub fn subscribers_with_key_ids(&self, key_ids: &[String]) -> Result<Vec<(String, Vec<u8>)>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT s.address, s.cert FROM subscriber_keys k JOIN subscribers s ON s.address = k.address
                 WHERE k.key_id = ?1",
            )
            .store("look up a signer's key")?;
        let mut out: Vec<(String, Vec<u8>)> = Vec::new();
        for id in key_ids {
            let rows = stmt
                .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))
                .store("look up a signer's key")?;
            for row in rows {
                let row = row.store("look up a signer's key")?;
                if !out.iter().any(|(a, _)| *a == row.0) {
                    out.push(row);
                }
            }
        }
        Ok(out)
    }

    /// Whether any subscriber's key has not been derived yet (keys stored
    /// before migration 0013).
    pub fn underived_subscribers(&self) -> Result<i64> {
        self.conn
            .query_row(
                "SELECT count(*) FROM subscribers WHERE address NOT IN (SELECT address FROM recipients)",
                [],
                |r| r.get(0),
            )
            .store("read subscribers")
    }

    /// The subscribers whose keys may not serve at `horizon` (Unix
    /// seconds), by what was derived from them: none usable, not derived,
    /// or a choice that stops holding by then. Only these need their
    /// certificates read to see who is not receiving or soon will not.
    pub fn subscribers_changing_by(&self, horizon: i64) -> Result<Vec<super::StoredSubscriber>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT address, fingerprint, cert, added_at FROM subscribers
                 WHERE address NOT IN (SELECT address FROM recipients)
                    OR address IN (SELECT address FROM recipients
                                   WHERE length(keys) = 0 OR (usable_until IS NOT NULL AND usable_until <= ?1))
                 ORDER BY address",
            )
            .store("read subscribers")?;
        let rows = stmt
            .query_map([horizon], |r| {
                Ok(super::StoredSubscriber {
                    address: r.get(0)?,
                    fingerprint: r.get(1)?,
                    cert: r.get(2)?,
                    added_at: r.get(3)?,
                })
            })
            .store("read subscribers")?;
        rows.collect::<std::result::Result<Vec<_>, _>>()
            .store("read subscribers")
    }

    /// The addresses subscribed with the key `fingerprint`.
    pub fn subscribers_with_fingerprint(&self, fingerprint: &str) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT address FROM subscribers WHERE fingerprint = ?1 ORDER BY address",
            )
            .store("read subscribers")?;
        let rows = stmt
            .query_map([fingerprint], |r| r.get(0))
            .store("read subscribers")?;
        rows.collect::<std::result::Result<Vec<_>, _>>()
            .store("read subscribers")
    }

    /// Whether `address` is subscribed.
    pub fn is_subscriber(&self, address: &str) -> Result<bool> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM subscribers WHERE address = ?1",
                [address],
                |_| Ok(()),
            )
            .optional()
            .store("read a subscriber")?
            .is_some())
    }

    /// Stores a post's shared encrypted body with the outer headers its
    /// copies share (inside a transaction the caller holds). Returns its id.
    pub fn insert_body_unlocked(
        &self,
        post_id: i64,
        seipd: &[u8],
        headers: &str,
        now: i64,
    ) -> Result<i64> {
        self.conn
            .execute(
                "INSERT INTO bodies (post_id, seipd, headers, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![post_id, seipd, headers, now],
            )
            .store("store an encrypted body")?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Queues copies under the body `body_id` (inside a transaction the
    /// caller holds). Returns how many were new: a (post, subscriber) pair
    /// already queued is not queued again.
    pub fn insert_copies_unlocked(
        &self,
        post_id: i64,
        body_id: i64,
        message_id: &str,
        copies: &[RecipientCopy],
        now: i64,
    ) -> Result<usize> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "INSERT INTO outbox (post_id, body_id, recipient, message_id, headers, pkesks, created_at)
                 VALUES (?1, ?2, ?3, ?4, '', ?5, ?6)
                 ON CONFLICT(post_id, recipient) WHERE kind = 'copy' DO NOTHING",
            )
            .store("queue copies")?;
        let mut added = 0;
        for c in copies {
            added += stmt
                .execute(params![
                    post_id,
                    body_id,
                    c.recipient,
                    message_id,
                    c.pkesks,
                    now
                ])
                .store("queue a copy")?;
        }
        Ok(added)
    }

    /// A shared body and the headers its copies share.
    pub fn body_and_headers(&self, id: i64) -> Result<(Vec<u8>, String)> {
        self.conn
            .query_row(
                "SELECT seipd, headers FROM bodies WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .store("read an encrypted body")
    }

    /// Deletes the copies sent before `sent_before` (Unix seconds), and the
    /// bodies no copy needs any more. Returns how many copies went.
    pub fn prune_sent(&self, sent_before: i64) -> Result<usize> {
        self.transaction(|s| {
            let n = s
                .conn
                .execute(
                    "DELETE FROM outbox WHERE state = 'sent' AND sent_at < ?1",
                    [sent_before],
                )
                .store("prune sent copies")?;
            if n > 0 {
                s.conn
                    .execute(
                        "DELETE FROM bodies WHERE id NOT IN (SELECT DISTINCT body_id FROM outbox)",
                        [],
                    )
                    .store("prune sent copies")?;
            }
            Ok(n)
        })
    }
}
