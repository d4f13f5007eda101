//! The local store: SQLite in WAL mode, with numbered migrations.
//!
//! It holds configuration, subscribers and their certificates, the replay cache,
//! every received post as ciphertext, the outbox (ciphertext only) and the audit
//! log. Nothing in it is a post in clear.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::{Result, StoreContext};

mod bounces;
mod fanout;
mod keynet;
mod lifecycle;
mod requests;
mod subscribers;
pub use bounces::{BounceLogEntry, DeliveryHealth, NewBounce, SentCopy};
pub use fanout::{RecipientCopy, RecipientRow, StoredRecipient};
pub use keynet::KeyPublish;
pub use lifecycle::MissedNotice;
pub use requests::{NewRequest, RequestKind, RequestState, StoredRequest};
pub use subscribers::SubscriberRow;

/// The numbered migrations, in order. Never edit one that has shipped.
const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init", include_str!("migrations/0001_init.sql")),
    (
        "0002_tls_pins",
        include_str!("migrations/0002_tls_pins.sql"),
    ),
    (
        "0003_outbox_retry",
        include_str!("migrations/0003_outbox_retry.sql"),
    ),
    (
        "0004_post_imap_uid",
        include_str!("migrations/0004_post_imap_uid.sql"),
    ),
    (
        "0005_post_partial_retention",
        include_str!("migrations/0005_post_partial_retention.sql"),
    ),
    (
        "0006_tls_vouched",
        include_str!("migrations/0006_tls_vouched.sql"),
    ),
    (
        "0007_shared_replay",
        include_str!("migrations/0007_shared_replay.sql"),
    ),
    (
        "0008_requests",
        include_str!("migrations/0008_requests.sql"),
    ),
    (
        "0009_message_ids",
        include_str!("migrations/0009_message_ids.sql"),
    ),
    ("0010_bounces", include_str!("migrations/0010_bounces.sql")),
    (
        "0011_key_notices",
        include_str!("migrations/0011_key_notices.sql"),
    ),
    (
        "0012_key_network",
        include_str!("migrations/0012_key_network.sql"),
    ),
    (
        "0013_fanout_state",
        include_str!("migrations/0013_fanout_state.sql"),
    ),
];

/// The state a post is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostState {
    /// Recorded, not yet decided.
    Received,
    /// Copies were queued for every subscriber.
    Distributed,
    /// Waiting for the owner.
    Held,
    /// Refused, with a reason.
    Rejected,
    /// Dropped on purpose by policy, with a reason (the ciphertext is kept).
    Discarded,
}

impl PostState {
    /// The name stored in SQLite.
    pub fn as_str(self) -> &'static str {
        match self {
            PostState::Received => "received",
            PostState::Distributed => "distributed",
            PostState::Held => "held",
            PostState::Rejected => "rejected",
            PostState::Discarded => "discarded",
        }
    }

    fn parse(s: &str) -> PostState {
        match s {
            "distributed" => PostState::Distributed,
            "held" => PostState::Held,
            "rejected" => PostState::Rejected,
            "discarded" => PostState::Discarded,
            _ => PostState::Received,
        }
    }
}

/// A post as recorded in the store.
#[derive(Debug, Clone)]
pub struct StoredPost {
    /// Its row id.
    pub id: i64,
    /// When it arrived (Unix seconds).
    pub received_at: i64,
    /// The message as received (or sealed to the list key, see `sealed`).
    pub raw: Vec<u8>,
    /// True when `raw` is the received message encrypted to the list key.
    pub sealed: bool,
    /// Its size as received, in bytes.
    pub size: i64,
    /// The `From:` address of the outer message.
    pub sender: String,
    /// The fingerprint of the verified author, if any.
    pub signer: String,
    /// Its state.
    pub state: PostState,
    /// Why it is in that state.
    pub reason: String,
    /// True when the post was too large to download: `raw` is its header
    /// alone, and the whole message stays in the mailbox.
    pub partial: bool,
    /// True when the retention option deleted its stored bytes.
    pub purged: bool,
}

/// A subscriber as recorded in the store.
#[derive(Debug, Clone)]
pub struct StoredSubscriber {
    /// The subscriber's address (lowercase).
    pub address: String,
    /// The primary key fingerprint of their certificate.
    pub fingerprint: String,
    /// Their certificate, binary.
    pub cert: Vec<u8>,
    /// When they were added (Unix seconds).
    pub added_at: i64,
}

/// One queued copy, by its outbox id and recipient.
pub type CopyRef = (i64, String);

/// One queued copy, ready to be assembled into a message.
#[derive(Debug, Clone)]
pub struct OutboxCopy {
    /// Its row id.
    pub id: i64,
    /// The post it is a copy of.
    pub post_id: i64,
    /// The subscriber it goes to.
    pub recipient: String,
    /// Its stable Message-ID (without angle brackets).
    pub message_id: String,
    /// The outer headers, CRLF-separated, without the MIME structure.
    pub headers: String,
    /// This subscriber's recipient packets.
    pub pkesks: Vec<u8>,
    /// The shared encrypted body ([`Store::body`]), stored once per post.
    pub body_id: i64,
    /// How many times sending was tried.
    pub attempts: i64,
    /// Not before this time (Unix seconds).
    pub next_attempt_at: i64,
    /// A reply signed but not encrypted: its body is a whole signed MIME
    /// entity, and it has no recipient packets.
    pub plain: bool,
}

/// A new outbox row.
#[derive(Debug, Clone)]
pub struct NewCopy {
    /// The subscriber it goes to.
    pub recipient: String,
    /// Its stable Message-ID.
    pub message_id: String,
    /// The outer headers.
    pub headers: String,
    /// This subscriber's recipient packets.
    pub pkesks: Vec<u8>,
}

/// An audit log entry.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    /// When (Unix seconds).
    pub at: i64,
    /// The post it concerns, if any.
    pub post_id: Option<i64>,
    /// A short event name, e.g. `distributed`.
    pub event: String,
    /// A sentence for the owner.
    pub detail: String,
}

/// Creates the database file `path` of mode 0600 if it is missing (never
/// through a symbolic link), and makes it and its `-wal` and `-shm` files
/// 0600 if they are there.
fn private_files(path: &Path) -> Result<()> {
    if std::fs::symlink_metadata(path).is_err() {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600).custom_flags(crate::private::nofollow());
        }
        match opts.open(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(crate::error::Error::io("create", path, e)),
        }
    }
    let mut name = path.as_os_str().to_owned();
    crate::private::make_private(path)?;
    for suffix in ["-wal", "-shm"] {
        name.push(suffix);
        crate::private::make_private(Path::new(&name))?;
        name = path.as_os_str().to_owned();
    }
    Ok(())
}

/// The SQLite store of one list.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the store at `path` and brings it up to
    /// date. The database and its `-wal` and `-shm` files are readable by
    /// their owner only (0600), whatever they were: SQLite gives the files
    /// it makes the database's mode.
    pub fn open(path: &Path) -> Result<Store> {
        private_files(path)?;
        let conn = Connection::open(path).store(&format!("open the store {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .store("switch the store to WAL mode")?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .store("enable foreign keys")?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .store("set synchronous mode")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .store("set the busy timeout")?;
        let store = Store { conn };
        store.migrate()?;
        private_files(path)?;
        Ok(store)
    }

    /// Opens a private in-memory store, for tests and benchmarks.
    pub fn open_in_memory() -> Result<Store> {
        let conn = Connection::open_in_memory().store("open an in-memory store")?;
        let store = Store { conn };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&self) -> Result<()> {
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .store("read the schema version")?;
        for (i, (name, sql)) in MIGRATIONS.iter().enumerate() {
            let number = i64::try_from(i).unwrap_or(i64::MAX) + 1;
            if number <= version {
                continue;
            }
            let tx = self
                .conn
                .unchecked_transaction()
                .store("begin a migration")?;
            tx.execute_batch(sql)
                .store(&format!("apply migration {name}"))?;
            tx.pragma_update(None, "user_version", number)
                .store("record the schema version")?;
            tx.commit().store(&format!("commit migration {name}"))?;
        }
        Ok(())
    }

    /// The schema version (the number of applied migrations).
    pub fn schema_version(&self) -> Result<i64> {
        self.conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .store("read the schema version")
    }

    /// Runs `f` inside one transaction. It takes the write lock at its
    /// start (`BEGIN IMMEDIATE`, waiting as long as the busy timeout):
    /// several connections write to the store side by side (the intake,
    /// and the delivery pass marking copies sent), and in WAL mode a
    /// transaction that read first and then writes fails at once when
    /// another connection committed in between (its snapshot is stale,
    /// and no wait helps).
    pub fn transaction<T>(&self, f: impl FnOnce(&Store) -> Result<T>) -> Result<T> {
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )
        .store("begin a transaction")?;
        let value = f(self)?;
        tx.commit().store("commit a transaction")?;
        Ok(value)
    }

    // ----- configuration -----

    /// A configuration value.
    pub fn config_get(&self, key: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT value FROM config WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()
            .store(&format!("read setting {key}"))
    }

    /// Sets a configuration value.
    pub fn config_set(&self, key: &str, value: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO config (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .store(&format!("write setting {key}"))?;
        Ok(())
    }

    /// Every configuration value, sorted by key.
    pub fn config_all(&self) -> Result<Vec<(String, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT key, value FROM config ORDER BY key")
            .store("read settings")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .store("read settings")?;
        rows.collect::<std::result::Result<Vec<_>, _>>()
            .store("read settings")
    }

    // ----- the list key -----

    /// Records the list's certificate and which keystore holds its secret.
    pub fn set_list_key(&self, fingerprint: &str, cert: &[u8], keystore: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO list_key (id, fingerprint, cert, keystore) VALUES (1, ?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET fingerprint = excluded.fingerprint,
                     cert = excluded.cert, keystore = excluded.keystore",
                params![fingerprint, cert, keystore],
            )
            .store("record the list key")?;
        Ok(())
    }

    /// The list's certificate and keystore name, if a list key is set.
    pub fn list_key(&self) -> Result<Option<(String, Vec<u8>, String)>> {
        self.conn
            .query_row(
                "SELECT fingerprint, cert, keystore FROM list_key WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .store("read the list key")
    }

    // ----- subscribers -----

    /// Adds or replaces a subscriber.
    pub fn put_subscriber(
        &self,
        address: &str,
        fingerprint: &str,
        cert: &[u8],
        now: i64,
    ) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO subscribers (address, fingerprint, cert, added_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(address) DO UPDATE SET fingerprint = excluded.fingerprint, cert = excluded.cert",
                params![address, fingerprint, cert, now],
            )
            .store(&format!("add subscriber {address}"))?;
        // What was derived from the key it had no longer holds.
        self.conn
            .execute("DELETE FROM recipients WHERE address = ?1", [address])
            .store(&format!("add subscriber {address}"))?;
        Ok(())
    }

    /// Removes a subscriber; false if there was none.
    pub fn remove_subscriber(&self, address: &str) -> Result<bool> {
        let n = self
            .conn
            .execute("DELETE FROM subscribers WHERE address = ?1", [address])
            .store(&format!("remove subscriber {address}"))?;
        Ok(n > 0)
    }

    /// Every subscriber, sorted by address.
    pub fn subscribers(&self) -> Result<Vec<StoredSubscriber>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT address, fingerprint, cert, added_at FROM subscribers ORDER BY address",
            )
            .store("read subscribers")?;
        let rows = stmt
            .query_map([], |r| {
                Ok(StoredSubscriber {
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

    // ----- posts -----

    /// Records a post and returns its id. `sealed` must be the message as it
    /// arrived, already encrypted to the list key: the store never holds a
    /// post in clear.
    pub fn insert_sealed_post(
        &self,
        sealed: &[u8],
        size: usize,
        digest: &str,
        sender: &str,
        now: i64,
    ) -> Result<i64> {
        self.conn
            .execute(
                "INSERT INTO posts (received_at, digest, size, raw, sealed, sender, state, updated_at)
                 VALUES (?1, ?2, ?3, ?4, 1, ?5, 'received', ?1)",
                params![now, digest, i64::try_from(size).unwrap_or(i64::MAX), sealed, sender],
            )
            .store("record a post")?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Sets a post's state, reason and verified signer.
    pub fn set_post_state(
        &self,
        id: i64,
        state: PostState,
        reason: &str,
        signer: &str,
        now: i64,
    ) -> Result<()> {
        self.conn
            .execute(
                "UPDATE posts SET state = ?2, reason = ?3, signer = ?4, updated_at = ?5 WHERE id = ?1",
                params![id, state.as_str(), reason, signer, now],
            )
            .store("update a post")?;
        Ok(())
    }

    /// One post.
    pub fn post(&self, id: i64) -> Result<Option<StoredPost>> {
        self.conn
            .query_row(
                "SELECT id, received_at, raw, sealed, size, sender, signer, state, reason, partial, purged_at IS NOT NULL FROM posts WHERE id = ?1",
                [id],
                post_from_row,
            )
            .optional()
            .store("read a post")
    }

    /// The posts in a given state, oldest first (without their raw bytes).
    pub fn posts_in_state(&self, state: PostState) -> Result<Vec<StoredPost>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, received_at, x'', sealed, size, sender, signer, state, reason,
                        partial, purged_at IS NOT NULL
                 FROM posts WHERE state = ?1 ORDER BY id",
            )
            .store("read posts")?;
        let rows = stmt
            .query_map([state.as_str()], post_from_row)
            .store("read posts")?;
        rows.collect::<std::result::Result<Vec<_>, _>>()
            .store("read posts")
    }

    /// Records where an IMAP post stands (see migration 0004).
    pub fn set_post_imap(&self, id: i64, state: &str, uid: i64) -> Result<()> {
        self.conn
            .execute(
                "UPDATE posts SET imap_state = ?2, imap_uid = ?3 WHERE id = ?1",
                params![id, state, uid],
            )
            .store("update a post")?;
        Ok(())
    }

    /// Forgets posts recorded from IMAP but never claimed: they are still in
    /// INBOX and will be fetched again. Returns how many.
    pub fn drop_unclaimed_posts(&self) -> Result<usize> {
        self.conn
            .execute(
                "DELETE FROM posts WHERE state = 'received' AND imap_state = 'recorded'",
                [],
            )
            .store("drop unclaimed posts")
    }

    /// Forgets one post that another instance claimed first.
    pub fn delete_post(&self, id: i64) -> Result<()> {
        self.conn
            .execute("DELETE FROM posts WHERE id = ?1", [id])
            .store("drop a post")?;
        Ok(())
    }

    /// Records the UIDVALIDITY of INBOX a post was fetched under.
    pub fn set_post_validity(&self, id: i64, validity: u32) -> Result<()> {
        self.conn
            .execute(
                "UPDATE posts SET imap_validity = ?2 WHERE id = ?1",
                params![id, i64::from(validity)],
            )
            .store("update a post")?;
        Ok(())
    }

    /// Marks a post as recorded from its header alone (see
    /// [`StoredPost::partial`]).
    pub fn set_post_partial(&self, id: i64) -> Result<()> {
        self.conn
            .execute("UPDATE posts SET partial = 1 WHERE id = ?1", [id])
            .store("update a post")?;
        Ok(())
    }

    /// Claimed posts whose processing did not finish (a crash):
    /// (id, imap_state, imap_uid, imap_validity).
    pub fn claimed_unprocessed(&self) -> Result<Vec<(i64, String, i64, i64)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, imap_state, imap_uid, imap_validity FROM posts WHERE state = 'received' AND imap_state IN ('claimed', 'moved') ORDER BY id")
            .store("read posts")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .store("read posts")?;
        rows.collect::<std::result::Result<Vec<_>, _>>()
            .store("read posts")
    }

    /// Deletes the stored bytes of rejected and discarded posts decided
    /// before `decided_before` (Unix seconds); the row, its state and reason
    /// stay. Held posts are never touched, nor posts with copies still
    /// queued. Returns how many were purged.
    pub fn purge_refused_posts(&self, decided_before: i64, now: i64) -> Result<usize> {
        self.conn
            .execute(
                "UPDATE posts SET raw = x'', purged_at = ?2
                 WHERE state IN ('rejected', 'discarded') AND updated_at < ?1
                   AND purged_at IS NULL
                   AND NOT EXISTS (SELECT 1 FROM outbox o
                                   WHERE o.post_id = posts.id AND o.state = 'queued'
                                     AND o.kind = 'copy')",
                params![decided_before, now],
            )
            .store("delete the stored bytes of old refused posts")
    }

    // ----- Message-IDs, for threading -----

    /// The post whose copies (or whose author) carried `message_id`.
    pub fn message_id_post(&self, message_id: &str) -> Result<Option<i64>> {
        self.conn
            .query_row(
                "SELECT post_id FROM message_ids WHERE message_id = ?1",
                [message_id],
                |r| r.get(0),
            )
            .optional()
            .store("read a Message-ID")
    }

    /// The Message-ID with `role` (`inner`, `outer`) of post `post_id`.
    pub fn post_message_id(&self, post_id: i64, role: &str) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT message_id FROM message_ids WHERE post_id = ?1 AND role = ?2
                 ORDER BY rowid LIMIT 1",
                params![post_id, role],
                |r| r.get(0),
            )
            .optional()
            .store("read a post's Message-ID")
    }

    /// Remembers the Message-IDs of post `post_id`, (role, ID); an ID that
    /// belongs to a post already keeps it.
    pub fn remember_message_ids(&self, post_id: i64, ids: &[(&str, &str)]) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "INSERT OR IGNORE INTO message_ids (message_id, post_id, role) VALUES (?1, ?2, ?3)",
            )
            .store("remember Message-IDs")?;
        for (role, id) in ids {
            stmt.execute(params![id, post_id, role])
                .store("remember a Message-ID")?;
        }
        Ok(())
    }

    // ----- replay cache -----

    /// The post that first carried this signature digest, if any.
    pub fn replay_seen(&self, digest: &str) -> Result<Option<(i64, i64)>> {
        self.conn
            .query_row(
                "SELECT post_id, seen_at FROM replay_cache WHERE digest = ?1",
                [digest],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .store("read the replay cache")
    }

    /// Remembers a signature digest.
    pub fn replay_remember(&self, digest: &str, post_id: i64, now: i64) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO replay_cache (digest, post_id, seen_at) VALUES (?1, ?2, ?3)",
                params![digest, post_id, now],
            )
            .store("write the replay cache")?;
        Ok(())
    }

    /// The digests of the replay cache not yet shared with the list's
    /// other instances, at most `limit`.
    pub fn replay_unshared(&self, limit: i64) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT digest FROM replay_cache WHERE shared = 0 ORDER BY seen_at LIMIT ?1")
            .store("read the replay cache")?;
        let rows = stmt
            .query_map([limit], |r| r.get(0))
            .store("read the replay cache")?;
        rows.collect::<std::result::Result<Vec<String>, _>>()
            .store("read the replay cache")
    }

    /// Notes that these digests are shared now.
    pub fn replay_shared(&self, digests: &[String]) -> Result<()> {
        self.transaction(|store| {
            for d in digests {
                store
                    .conn
                    .execute("UPDATE replay_cache SET shared = 1 WHERE digest = ?1", [d])
                    .store("write the replay cache")?;
            }
            Ok(())
        })
    }

    /// When a mark (a digest keyed with the list's shared key) was read
    /// from the mailbox, if it was.
    pub fn replay_mark_seen(&self, mark: &str) -> Result<Option<i64>> {
        self.conn
            .query_row(
                "SELECT seen_at FROM replay_marks WHERE mark = ?1",
                [mark],
                |r| r.get(0),
            )
            .optional()
            .store("read the replay marks")
    }

    /// Remembers marks read from the mailbox. Returns how many were new.
    pub fn replay_marks_add(&self, marks: &[String], now: i64) -> Result<usize> {
        self.transaction(|store| {
            let mut n = 0;
            for m in marks {
                n += store
                    .conn
                    .execute(
                        "INSERT OR IGNORE INTO replay_marks (mark, seen_at) VALUES (?1, ?2)",
                        params![m, now],
                    )
                    .store("write the replay marks")?;
            }
            Ok(n)
        })
    }

    // ----- outbox -----

    /// The copies still queued, oldest first (without their shared body).
    pub fn queued_copies(&self) -> Result<Vec<OutboxCopy>> {
        self.copies(i64::MAX, 0)
    }

    /// The queued copies due for sending at `now`, oldest first.
    pub fn due_copies(&self, now: i64) -> Result<Vec<OutboxCopy>> {
        self.copies(now, 0)
    }

    /// The queued copies due at `now` that were queued after copy `after`
    /// (row ids grow), oldest first: what a fan-out added since the last
    /// read.
    pub fn due_copies_after(&self, now: i64, after: i64) -> Result<Vec<OutboxCopy>> {
        self.copies(now, after)
    }

    fn copies(&self, due_by: i64, after: i64) -> Result<Vec<OutboxCopy>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, post_id, recipient, message_id, headers, pkesks, body_id, attempts, next_attempt_at,
                        kind = 'plain'
                 FROM outbox WHERE state = 'queued' AND next_attempt_at <= ?1 AND id > ?2 ORDER BY id",
            )
            .store("read the outbox")?;
        let rows = stmt
            .query_map([due_by, after], |r| {
                Ok(OutboxCopy {
                    id: r.get(0)?,
                    post_id: r.get(1)?,
                    recipient: r.get(2)?,
                    message_id: r.get(3)?,
                    headers: r.get(4)?,
                    pkesks: r.get(5)?,
                    body_id: r.get(6)?,
                    attempts: r.get(7)?,
                    next_attempt_at: r.get(8)?,
                    plain: r.get(9)?,
                })
            })
            .store("read the outbox")?;
        rows.collect::<std::result::Result<Vec<_>, _>>()
            .store("read the outbox")
    }

    /// The queued copies due at `now` whose body was sealed (and signed)
    /// before `signed_before`, grouped by post: (post, [(copy id, recipient)]).
    pub fn stale_copies(&self, now: i64, signed_before: i64) -> Result<Vec<(i64, Vec<CopyRef>)>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT o.post_id, o.id, o.recipient FROM outbox o JOIN bodies b ON b.id = o.body_id
                 WHERE o.state = 'queued' AND o.kind = 'copy' AND o.next_attempt_at <= ?1 AND b.created_at < ?2
                 ORDER BY o.post_id, o.id",
            )
            .store("read the outbox")?;
        let rows = stmt
            .query_map(params![now, signed_before], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .store("read the outbox")?;
        let mut out: Vec<(i64, Vec<CopyRef>)> = Vec::new();
        for row in rows {
            let (post, id, recipient) = row.store("read the outbox")?;
            match out.last_mut() {
                Some((p, copies)) if *p == post => copies.push((id, recipient)),
                _ => out.push((post, vec![(id, recipient)])),
            }
        }
        Ok(out)
    }

    /// Drops queued copies that are being replaced, inside a transaction the
    /// caller holds. A copy that went out meanwhile is kept. Returns the
    /// recipients whose copies were dropped.
    pub fn drop_queued_unlocked(&self, post_id: i64, copies: &[CopyRef]) -> Result<Vec<String>> {
        let mut dropped = Vec::new();
        for (id, recipient) in copies {
            let n = self
                .conn
                .execute(
                    "DELETE FROM outbox WHERE id = ?1 AND post_id = ?2 AND state = 'queued'",
                    params![id, post_id],
                )
                .store("replace a queued copy")?;
            if n > 0 {
                dropped.push(recipient.clone());
            }
        }
        Ok(dropped)
    }

    /// Drops every copy still queued for `recipient` (a subscriber removed,
    /// or their key replaced: those copies are encrypted to a key that no
    /// longer stands for them), and the bodies no copy needs any more.
    /// Returns how many copies were dropped.
    pub fn drop_queued_for(&self, recipient: &str) -> Result<usize> {
        self.transaction(|store| {
            let n = store
                .conn
                .execute(
                    "DELETE FROM outbox WHERE recipient = ?1 AND state = 'queued'",
                    [recipient],
                )
                .store("drop queued copies")?;
            if n > 0 {
                store
                    .conn
                    .execute(
                        "DELETE FROM bodies WHERE id NOT IN (SELECT body_id FROM outbox)",
                        [],
                    )
                    .store("drop unused bodies")?;
            }
            Ok(n)
        })
    }

    /// Deletes a post's bodies that no copy refers to any more.
    pub fn drop_unused_bodies_unlocked(&self, post_id: i64) -> Result<()> {
        self.conn
            .execute(
                "DELETE FROM bodies WHERE post_id = ?1 AND id NOT IN (SELECT body_id FROM outbox WHERE post_id = ?1)",
                [post_id],
            )
            .store("drop an unused body")?;
        Ok(())
    }

    /// A post's shared encrypted body (an OpenPGP SEIPD packet).
    pub fn body(&self, id: i64) -> Result<Vec<u8>> {
        self.conn
            .query_row("SELECT seipd FROM bodies WHERE id = ?1", [id], |r| r.get(0))
            .store("read an encrypted body")
    }

    /// Makes every deferred copy due now. Returns how many were waiting.
    pub fn retry_now(&self) -> Result<usize> {
        self.conn
            .execute(
                "UPDATE outbox SET next_attempt_at = 0 WHERE state = 'queued' AND next_attempt_at > 0",
                [],
            )
            .store("make deferred copies due")
    }

    /// Marks a copy sent: the server accepted it.
    pub fn mark_sent(&self, id: i64, now: i64) -> Result<()> {
        // Once per copy: the statement is kept prepared.
        self.conn
            .prepare_cached("UPDATE outbox SET state = 'sent', sent_at = ?2, attempts = attempts + 1 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![id, now]))
            .store("mark a copy sent")?;
        Ok(())
    }

    /// Marks copies sent, each (id, when the server accepted it), in one
    /// transaction.
    pub fn mark_sent_all(&self, sent: &[(i64, i64)]) -> Result<()> {
        self.transaction(|store| {
            for &(id, at) in sent {
                store.mark_sent(id, at)?;
            }
            Ok(())
        })
    }

    /// Records a temporary failure; the copy stays queued until `retry_at`.
    pub fn mark_retry(&self, id: i64, error: &str, retry_at: i64) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3 WHERE id = ?1",
            )
            .and_then(|mut s| s.execute(params![id, error, retry_at]))
            .store("record a delivery attempt")?;
        Ok(())
    }

    /// Records a permanent failure: the copy will not be sent.
    pub fn mark_failed(&self, id: i64, error: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = ?2 WHERE id = ?1",
                params![id, error],
            )
            .store("record a failed delivery")?;
        Ok(())
    }

    /// How many copies are in each outbox state.
    pub fn outbox_counts(&self) -> Result<Vec<(String, i64)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT state, count(*) FROM outbox GROUP BY state ORDER BY state")
            .store("count the outbox")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .store("count the outbox")?;
        rows.collect::<std::result::Result<Vec<_>, _>>()
            .store("count the outbox")
    }

    // ----- TLS pins -----

    /// The pinned SHA-256 (lowercase hex) for an endpoint `host:port`.
    pub fn tls_pin(&self, endpoint: &str) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT sha256 FROM tls_pins WHERE endpoint = ?1",
                [endpoint],
                |r| r.get(0),
            )
            .optional()
            .store("read a certificate pin")
    }

    /// Pins a certificate for an endpoint.
    pub fn set_tls_pin(&self, endpoint: &str, sha256: &str, subject: &str, now: i64) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO tls_pins (endpoint, sha256, subject, accepted_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(endpoint) DO UPDATE SET sha256 = excluded.sha256,
                     subject = excluded.subject, accepted_at = excluded.accepted_at",
                params![endpoint, sha256, subject, now],
            )
            .store("pin a certificate")?;
        Ok(())
    }

    /// Forgets the pin of an endpoint; false if there was none.
    pub fn remove_tls_pin(&self, endpoint: &str) -> Result<bool> {
        let n = self
            .conn
            .execute("DELETE FROM tls_pins WHERE endpoint = ?1", [endpoint])
            .store("forget a certificate pin")?;
        Ok(n > 0)
    }

    /// Every pin: (endpoint, sha256, subject, accepted_at), sorted by endpoint.
    pub fn tls_pins(&self) -> Result<Vec<(String, String, String, i64)>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT endpoint, sha256, subject, accepted_at FROM tls_pins ORDER BY endpoint",
            )
            .store("read certificate pins")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .store("read certificate pins")?;
        rows.collect::<std::result::Result<Vec<_>, _>>()
            .store("read certificate pins")
    }

    /// Whether a certificate authority vouched for `endpoint` before.
    pub fn tls_vouched(&self, endpoint: &str) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT 1 FROM tls_vouched WHERE endpoint = ?1",
                [endpoint],
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
            .store("read whether a certificate authority vouched for a server")
    }

    /// Remembers that a certificate authority vouched for `endpoint` now.
    pub fn note_tls_vouched(&self, endpoint: &str, now: i64) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO tls_vouched (endpoint, first_at, last_at) VALUES (?1, ?2, ?2)
                 ON CONFLICT(endpoint) DO UPDATE SET last_at = excluded.last_at",
                params![endpoint, now],
            )
            .store("remember that a certificate authority vouched for a server")?;
        Ok(())
    }

    /// Forgets that a certificate authority vouched for `endpoint`; false if
    /// none had.
    pub fn remove_tls_vouched(&self, endpoint: &str) -> Result<bool> {
        let n = self
            .conn
            .execute("DELETE FROM tls_vouched WHERE endpoint = ?1", [endpoint])
            .store("forget that a certificate authority vouched for a server")?;
        Ok(n > 0)
    }

    // ----- audit -----

    /// Appends to the audit log. `detail` must never hold post content.
    pub fn audit(&self, at: i64, post_id: Option<i64>, event: &str, detail: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO audit (at, post_id, event, detail) VALUES (?1, ?2, ?3, ?4)",
                params![at, post_id, event, detail],
            )
            .store("write the audit log")?;
        Ok(())
    }

    /// The last `limit` audit entries, oldest first.
    pub fn audit_tail(&self, limit: i64) -> Result<Vec<AuditEntry>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT at, post_id, event, detail FROM
                   (SELECT id, at, post_id, event, detail FROM audit ORDER BY id DESC LIMIT ?1)
                 ORDER BY id",
            )
            .store("read the audit log")?;
        let rows = stmt
            .query_map([limit], |r| {
                Ok(AuditEntry {
                    at: r.get(0)?,
                    post_id: r.get(1)?,
                    event: r.get(2)?,
                    detail: r.get(3)?,
                })
            })
            .store("read the audit log")?;
        rows.collect::<std::result::Result<Vec<_>, _>>()
            .store("read the audit log")
    }
}

fn post_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredPost> {
    let state: String = r.get(7)?;
    Ok(StoredPost {
        id: r.get(0)?,
        received_at: r.get(1)?,
        raw: r.get(2)?,
        sealed: r.get(3)?,
        size: r.get(4)?,
        sender: r.get(5)?,
        signer: r.get(6)?,
        state: PostState::parse(&state),
        reason: r.get(8)?,
        partial: r.get(9)?,
        purged: r.get(10)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A transaction that reads and then writes is not failed by another
    /// connection's commit in between (the delivery pass marks copies sent
    /// while the intake counts a missed post): the other waits for it.
    #[test]
    fn a_transaction_that_reads_then_writes_survives_another_connection() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("list.db");
        let store = Store::open(&path).unwrap();
        store.config_set("a", "0").unwrap();
        let other_path = path.clone();
        let result = store.transaction(|s| {
            let seen = s.config_get("a")?;
            // Another connection writes while this transaction is open.
            let other =
                std::thread::spawn(move || Store::open(&other_path).unwrap().config_set("b", "1"));
            std::thread::sleep(std::time::Duration::from_millis(300));
            s.config_set("a", &format!("{}+1", seen.unwrap_or_default()))?;
            Ok(other)
        });
        let other = result.expect("the transaction commits");
        other
            .join()
            .unwrap()
            .expect("the other connection's write waits, then goes in");
        assert_eq!(store.config_get("a").unwrap().as_deref(), Some("0+1"));
        assert_eq!(store.config_get("b").unwrap().as_deref(), Some("1"));
    }

    #[test]
    fn migrates_and_uses_wal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("list.db");
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), MIGRATIONS.len() as i64);
        let mode: String = store
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        drop(store);
        // Opening again applies nothing twice.
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), MIGRATIONS.len() as i64);
    }

    #[test]
    fn tables_are_strict() {
        let store = Store::open_in_memory().unwrap();
        let err = store.conn.execute(
            "INSERT INTO subscribers (address, fingerprint, cert, added_at) VALUES ('a', 'b', x'00', 'not a number')",
            [],
        );
        assert!(
            err.is_err(),
            "a STRICT table must refuse text in an INTEGER column"
        );
    }

    #[test]
    fn outbox_pairs_are_unique() {
        let store = Store::open_in_memory().unwrap();
        let post = store
            .insert_sealed_post(b"x", 1, "d", "a@example.test", 1)
            .unwrap();
        let copy = RecipientCopy {
            recipient: "b@example.test".into(),
            pkesks: vec![1],
        };
        let body = store.insert_body_unlocked(post, b"body", "h", 1).unwrap();
        store
            .insert_copies_unlocked(post, body, "m", &[copy.clone(), copy.clone()], 1)
            .unwrap();
        assert_eq!(store.queued_copies().unwrap().len(), 1);
    }

    #[test]
    fn retention_purges_only_old_refused_posts() {
        let store = Store::open_in_memory().unwrap();
        let post = |state: PostState, decided: i64| {
            let id = store
                .insert_sealed_post(b"sealed", 6, "d", "a@example.test", 1)
                .unwrap();
            store.set_post_state(id, state, "why", "", decided).unwrap();
            id
        };
        let old_rejected = post(PostState::Rejected, 100);
        let old_discarded = post(PostState::Discarded, 100);
        let old_held = post(PostState::Held, 100);
        let old_distributed = post(PostState::Distributed, 100);
        let new_rejected = post(PostState::Rejected, 1_000);
        // A refused post with a copy still queued keeps its bytes.
        let queued = post(PostState::Rejected, 100);
        let copy = RecipientCopy {
            recipient: "b@example.test".into(),
            pkesks: vec![1],
        };
        let body = store.insert_body_unlocked(queued, b"body", "h", 1).unwrap();
        store
            .insert_copies_unlocked(queued, body, "m", &[copy], 1)
            .unwrap();

        assert_eq!(store.purge_refused_posts(500, 2_000).unwrap(), 2);
        for (id, purged) in [
            (old_rejected, true),
            (old_discarded, true),
            (old_held, false),
            (old_distributed, false),
            (new_rejected, false),
            (queued, false),
        ] {
            let p = store.post(id).unwrap().unwrap();
            assert_eq!(p.purged, purged, "post {id}");
            assert_eq!(p.raw.is_empty(), purged, "post {id}");
            assert_eq!(p.reason, "why", "the reason stays");
        }
        // Applied again, nothing more.
        assert_eq!(store.purge_refused_posts(500, 3_000).unwrap(), 0);
    }
}
