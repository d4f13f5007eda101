//! What the store keeps of bounces (migration 0010): the list's VERP
//! secret, the copies a bounce can be matched to, each subscriber's
//! delivery health (score, last failure, disabled) and the bounce log.

use rusqlite::{params, OptionalExtension};

use crate::error::{Result, StoreContext};

use super::Store;

/// One outbox row, as a bounce is matched to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentCopy {
    /// Its row id.
    pub id: i64,
    /// The post (or request) it belongs to.
    pub post_id: i64,
    /// Whom it went to.
    pub recipient: String,
    /// `copy` (a post's copy), `reply` or `plain` (the list's answers).
    pub kind: String,
    /// `queued`, `sent` or `failed`.
    pub state: String,
}

/// A subscriber's delivery health.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryHealth {
    /// The subscriber.
    pub address: String,
    /// Their bounce score (hard 1, soft 0.5).
    pub score: f64,
    /// When the last counted bounce was (Unix seconds; 0: never).
    pub counted_at: i64,
    /// When the last failure was seen (0: never).
    pub last_failure_at: i64,
    /// Its status code (`5.1.1`, `550`…), if one was given.
    pub last_failure_status: String,
    /// One line of what the server said.
    pub last_failure_text: String,
    /// Whether their copies are stopped.
    pub disabled: bool,
}

/// A bounce for the log.
#[derive(Debug, Clone, Default)]
pub struct NewBounce {
    /// When.
    pub at: i64,
    /// The message that reported it (none for a refusal at submission).
    pub post_id: Option<i64>,
    /// The copy it was matched to.
    pub outbox_id: Option<i64>,
    /// Whose copy failed.
    pub recipient: String,
    /// `verp`, `report` or `smtp`.
    pub how: &'static str,
    /// `hard`, `soft` or `none`.
    pub severity: &'static str,
    /// The status code given.
    pub status: String,
    /// One line of what the server said.
    pub detail: String,
    /// What became of it (see the migration).
    pub verdict: &'static str,
}

/// A bounce as logged.
#[derive(Debug, Clone)]
pub struct BounceLogEntry {
    /// When.
    pub at: i64,
    /// Whose copy failed.
    pub recipient: String,
    /// `verp`, `report` or `smtp`.
    pub how: String,
    /// `hard`, `soft` or `none`.
    pub severity: String,
    /// The status code given.
    pub status: String,
    /// One line of what the server said.
    pub detail: String,
    /// What became of it.
    pub verdict: String,
}

pub(super) const HEALTH: &str = "address, bounce_score, bounce_counted_at, last_failure_at, last_failure_status, last_failure_text, delivery_disabled";

pub(super) fn health_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeliveryHealth> {
    Ok(DeliveryHealth {
        address: r.get(0)?,
        score: r.get(1)?,
        counted_at: r.get(2)?,
        last_failure_at: r.get(3)?,
        last_failure_status: r.get(4)?,
        last_failure_text: r.get(5)?,
        disabled: r.get(6)?,
    })
}

fn copy_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SentCopy> {
    Ok(SentCopy {
        id: r.get(0)?,
        post_id: r.get(1)?,
        recipient: r.get(2)?,
        kind: r.get(3)?,
        state: r.get(4)?,
    })
}

impl Store {
    /// The list's VERP secret, made (32 random bytes) on first use.
    pub fn bounce_secret(&self) -> Result<Vec<u8>> {
        let mut fresh = [0u8; 32];
        sequoia_openpgp::crypto::random(&mut fresh)
            .map_err(|e| crate::error::Error::crypto("make the list's bounce secret", e))?;
        self.conn
            .execute(
                "INSERT OR IGNORE INTO bounce_secret (id, secret) VALUES (1, ?1)",
                [&fresh[..]],
            )
            .store("make the list's bounce secret")?;
        self.conn
            .query_row("SELECT secret FROM bounce_secret WHERE id = 1", [], |r| {
                r.get(0)
            })
            .store("read the list's bounce secret")
    }

    /// One outbox row.
    pub fn outbox_row(&self, id: i64) -> Result<Option<SentCopy>> {
        self.conn
            .query_row(
                "SELECT id, post_id, recipient, kind, state FROM outbox WHERE id = ?1",
                [id],
                copy_from_row,
            )
            .optional()
            .store("read a copy")
    }

    /// The copy sent to `recipient` under one of `message_ids`, newest
    /// first: what a report names when it reached the list address.
    pub fn sent_copy(&self, recipient: &str, message_ids: &[String]) -> Result<Option<SentCopy>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, post_id, recipient, kind, state FROM outbox
                 WHERE recipient = ?1 AND message_id = ?2 AND state = 'sent'
                 ORDER BY id DESC LIMIT 1",
            )
            .store("find a sent copy")?;
        for id in message_ids {
            if let Some(c) = stmt
                .query_row(params![recipient, id], copy_from_row)
                .optional()
                .store("find a sent copy")?
            {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    /// A subscriber's delivery health, if they are subscribed.
    pub fn delivery_health(&self, address: &str) -> Result<Option<DeliveryHealth>> {
        self.conn
            .query_row(
                &format!("SELECT {HEALTH} FROM subscribers WHERE address = ?1"),
                [address],
                health_from_row,
            )
            .optional()
            .store("read a subscriber's delivery health")
    }

    /// Records a subscriber's last failure.
    pub fn note_delivery_failure(
        &self,
        address: &str,
        at: i64,
        status: &str,
        text: &str,
    ) -> Result<()> {
        self.conn
            .execute(
                "UPDATE subscribers SET last_failure_at = ?2, last_failure_status = ?3, last_failure_text = ?4
                 WHERE address = ?1",
                params![address, at, status, text],
            )
            .store("record a delivery failure")?;
        Ok(())
    }

    /// Sets a subscriber's bounce score and when it last counted.
    pub fn set_bounce_score(&self, address: &str, score: f64, counted_at: i64) -> Result<()> {
        self.conn
            .execute(
                "UPDATE subscribers SET bounce_score = ?2, bounce_counted_at = ?3 WHERE address = ?1",
                params![address, score, counted_at],
            )
            .store("record a bounce score")?;
        Ok(())
    }

    /// Stops (or resumes, with its score cleared) a subscriber's copies;
    /// false if there is no such subscriber.
    pub fn set_delivery_disabled(&self, address: &str, disabled: bool) -> Result<bool> {
        let sql = if disabled {
            "UPDATE subscribers SET delivery_disabled = 1 WHERE address = ?1"
        } else {
            "UPDATE subscribers SET delivery_disabled = 0, bounce_score = 0, bounce_counted_at = 0
             WHERE address = ?1"
        };
        let n = self
            .conn
            .execute(sql, [address])
            .store("change a subscriber's delivery")?;
        Ok(n > 0)
    }

    /// The subscribers whose copies are stopped.
    pub fn delivery_disabled(&self) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT address FROM subscribers WHERE delivery_disabled = 1 ORDER BY address")
            .store("read stopped subscribers")?;
        let rows = stmt
            .query_map([], |r| r.get(0))
            .store("read stopped subscribers")?;
        rows.collect::<std::result::Result<Vec<String>, _>>()
            .store("read stopped subscribers")
    }

    /// Logs a bounce.
    pub fn log_bounce(&self, b: &NewBounce) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO bounces (at, post_id, outbox_id, recipient, how, severity, status, detail, verdict)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    b.at,
                    b.post_id,
                    b.outbox_id,
                    b.recipient,
                    b.how,
                    b.severity,
                    b.status,
                    b.detail,
                    b.verdict
                ],
            )
            .store("log a bounce")?;
        Ok(())
    }

    /// The last `limit` bounces logged, oldest first.
    pub fn bounce_log(&self, limit: i64) -> Result<Vec<BounceLogEntry>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT at, recipient, how, severity, status, detail, verdict FROM
                   (SELECT * FROM bounces ORDER BY id DESC LIMIT ?1)
                 ORDER BY id",
            )
            .store("read the bounce log")?;
        let rows = stmt
            .query_map([limit], |r| {
                Ok(BounceLogEntry {
                    at: r.get(0)?,
                    recipient: r.get(1)?,
                    how: r.get(2)?,
                    severity: r.get(3)?,
                    status: r.get(4)?,
                    detail: r.get(5)?,
                    verdict: r.get(6)?,
                })
            })
            .store("read the bounce log")?;
        rows.collect::<std::result::Result<Vec<_>, _>>()
            .store("read the bounce log")
    }
}
