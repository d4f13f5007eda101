//! The store's part of list requests: pending subscriptions, key changes
//! and unsubscriptions (by the SHA-256 of their token, never the token),
//! the automatic replies in the outbox, the kind of each message, and the
//! count of replies per address for the rate limit.

use rusqlite::{params, OptionalExtension};

use super::{NewCopy, Store};
use crate::error::{Result, StoreContext};

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// To join with a key.
    Subscribe,
    /// To change a subscriber's key.
    KeyChange,
    /// To leave (asked without a signature).
    Unsubscribe,
}

impl RequestKind {
    /// The name stored in SQLite.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Subscribe => "subscribe",
            RequestKind::KeyChange => "key-change",
            RequestKind::Unsubscribe => "unsubscribe",
        }
    }

    fn parse(s: &str) -> RequestKind {
        match s {
            "key-change" => RequestKind::KeyChange,
            "unsubscribe" => RequestKind::Unsubscribe,
            _ => RequestKind::Subscribe,
        }
    }
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestState {
    /// Waiting for the token to come back, signed.
    Proof,
    /// Proven; waiting for the owner.
    Owner,
    /// Carried out.
    Done,
    /// Refused by the owner.
    Refused,
    /// A newer request of the same kind for the same address replaced it.
    Superseded,
}

impl RequestState {
    /// The name stored in SQLite.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Proof => "proof",
            RequestState::Owner => "owner",
            RequestState::Done => "done",
            RequestState::Refused => "refused",
            RequestState::Superseded => "superseded",
        }
    }

    fn parse(s: &str) -> RequestState {
        match s {
            "owner" => RequestState::Owner,
            "done" => RequestState::Done,
            "refused" => RequestState::Refused,
            "superseded" => RequestState::Superseded,
            _ => RequestState::Proof,
        }
    }
}

/// A request as recorded.
#[derive(Debug, Clone)]
pub struct StoredRequest {
    /// Its id.
    pub id: i64,
    /// What it asks for.
    pub kind: RequestKind,
    /// Whose request it is.
    pub address: String,
    /// The key it is about (the new key, for a key change).
    pub fingerprint: String,
    /// The key being replaced (key changes only; else empty).
    pub old_fingerprint: String,
    /// The key, binary.
    pub cert: Vec<u8>,
    /// Where it stands.
    pub state: RequestState,
    /// The message that asked.
    pub post_id: Option<i64>,
    /// When it was asked (Unix seconds).
    pub created_at: i64,
    /// When its token stops counting.
    pub expires_at: i64,
    /// When the proof came, if it did.
    pub proof_at: Option<i64>,
    /// Why it was refused, if it was.
    pub reason: String,
}

/// A new request.
#[derive(Debug, Clone)]
pub struct NewRequest<'a> {
    /// What it asks for.
    pub kind: RequestKind,
    /// Whose request it is.
    pub address: &'a str,
    /// The key it is about.
    pub fingerprint: &'a str,
    /// The key being replaced, or empty.
    pub old_fingerprint: &'a str,
    /// The key, binary.
    pub cert: &'a [u8],
    /// The SHA-256 of its token (hex).
    pub token_sha256: &'a str,
    /// Proof first, or straight to the owner.
    pub state: RequestState,
    /// The message that asked.
    pub post_id: i64,
    /// Now.
    pub now: i64,
    /// When its token stops counting.
    pub expires_at: i64,
}

const COLUMNS: &str = "id, kind, address, fingerprint, old_fingerprint, cert, state, post_id, created_at, expires_at, proof_at, reason";

fn request_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredRequest> {
    Ok(StoredRequest {
        id: r.get(0)?,
        kind: RequestKind::parse(&r.get::<_, String>(1)?),
        address: r.get(2)?,
        fingerprint: r.get(3)?,
        old_fingerprint: r.get(4)?,
        cert: r.get(5)?,
        state: RequestState::parse(&r.get::<_, String>(6)?),
        post_id: r.get(7)?,
        created_at: r.get(8)?,
        expires_at: r.get(9)?,
        proof_at: r.get(10)?,
        reason: r.get(11)?,
    })
}

impl Store {
    /// Records a request; an open request of the same kind for the same
    /// address is superseded by it. Returns its id.
    pub fn insert_request(&self, r: &NewRequest<'_>) -> Result<i64> {
        self.transaction(|s| {
            s.conn
                .execute(
                    "UPDATE requests SET state = 'superseded', decided_at = ?3
                     WHERE kind = ?1 AND address = ?2 AND state IN ('proof', 'owner')",
                    params![r.kind.as_str(), r.address, r.now],
                )
                .store("supersede a request")?;
            s.conn
                .execute(
                    "INSERT INTO requests (kind, address, fingerprint, old_fingerprint, cert, token_sha256, state, post_id, created_at, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        r.kind.as_str(),
                        r.address,
                        r.fingerprint,
                        r.old_fingerprint,
                        r.cert,
                        r.token_sha256,
                        r.state.as_str(),
                        r.post_id,
                        r.now,
                        r.expires_at
                    ],
                )
                .store("record a request")?;
            Ok(s.conn.last_insert_rowid())
        })
    }

    /// The request whose token has this SHA-256, whatever its state.
    pub fn request_by_token(&self, token_sha256: &str) -> Result<Option<StoredRequest>> {
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM requests WHERE token_sha256 = ?1"),
                [token_sha256],
                request_from_row,
            )
            .optional()
            .store("read a request")
    }

    /// One request.
    pub fn request(&self, id: i64) -> Result<Option<StoredRequest>> {
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM requests WHERE id = ?1"),
                [id],
                request_from_row,
            )
            .optional()
            .store("read a request")
    }

    /// The requests still open (waiting for a proof or for the owner),
    /// oldest first.
    pub fn open_requests(&self) -> Result<Vec<StoredRequest>> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM requests WHERE state IN ('proof', 'owner') ORDER BY id"
            ))
            .store("read requests")?;
        let rows = stmt
            .query_map([], request_from_row)
            .store("read requests")?;
        rows.collect::<std::result::Result<Vec<_>, _>>()
            .store("read requests")
    }

    /// Moves a request on. `proof_at` is set when the proof came now.
    pub fn set_request_state(
        &self,
        id: i64,
        state: RequestState,
        reason: &str,
        proof_at: Option<i64>,
        now: i64,
    ) -> Result<()> {
        self.conn
            .execute(
                "UPDATE requests SET state = ?2, reason = ?3, proof_at = COALESCE(?4, proof_at), decided_at = ?5 WHERE id = ?1",
                params![id, state.as_str(), reason, proof_at, now],
            )
            .store("update a request")?;
        Ok(())
    }

    /// Records what a message was ('post', 'request' or 'owner').
    pub fn set_post_kind(&self, id: i64, kind: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE posts SET kind = ?2 WHERE id = ?1",
                params![id, kind],
            )
            .store("update a post")?;
        Ok(())
    }

    /// What a message was ('post', 'request' or 'owner').
    pub fn post_kind(&self, id: i64) -> Result<String> {
        self.conn
            .query_row("SELECT kind FROM posts WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .store("read a post")
            .map(Option::unwrap_or_default)
    }

    /// Queues one automatic reply for message `post_id`: `body` is the
    /// encrypted body (with `copy.pkesks`), or, when `plain`, the whole
    /// signed entity. Returns its outbox id.
    pub fn queue_reply(
        &self,
        post_id: i64,
        body: &[u8],
        copy: &NewCopy,
        plain: bool,
        now: i64,
    ) -> Result<i64> {
        self.transaction(|s| {
            s.conn
                .execute(
                    "INSERT INTO bodies (post_id, seipd, created_at) VALUES (?1, ?2, ?3)",
                    params![post_id, body, now],
                )
                .store("store a reply's body")?;
            let body_id = s.conn.last_insert_rowid();
            s.conn
                .execute(
                    "INSERT INTO outbox (post_id, body_id, recipient, message_id, headers, pkesks, created_at, kind)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        post_id,
                        body_id,
                        copy.recipient,
                        copy.message_id,
                        copy.headers,
                        copy.pkesks,
                        now,
                        if plain { "plain" } else { "reply" }
                    ],
                )
                .store("queue a reply")?;
            let id = s.conn.last_insert_rowid();
            s.conn
                .execute(
                    "INSERT INTO replies (address, at) VALUES (?1, ?2)",
                    params![copy.recipient, now],
                )
                .store("count a reply")?;
            Ok(id)
        })
    }

    /// How many automatic replies went to `address` since `since`.
    pub fn replies_since(&self, address: &str, since: i64) -> Result<i64> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM replies WHERE address = ?1 AND at >= ?2",
                params![address, since],
                |r| r.get(0),
            )
            .store("count replies")
    }

    /// One subscriber's key fingerprint and certificate, if subscribed.
    pub fn subscriber(&self, address: &str) -> Result<Option<(String, Vec<u8>)>> {
        self.conn
            .query_row(
                "SELECT fingerprint, cert FROM subscribers WHERE address = ?1",
                [address],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .store("read a subscriber")
    }
}
