//! The store's part of keys on the web: when the subscribers' keys were
//! last refreshed, and the list key's uploads to a keyserver waiting for
//! their verification mail (migration 0012).

use rusqlite::{params, OptionalExtension};

use super::Store;
use crate::error::{Result, StoreContext};

/// One upload of the list key to a keyserver (`key publish`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPublish {
    /// Its id.
    pub id: i64,
    /// The keyserver's base URL.
    pub keyserver: String,
    /// The address whose check was asked.
    pub address: String,
    /// The list key's fingerprint.
    pub fingerprint: String,
    /// When it started (Unix seconds).
    pub started_at: i64,
    /// `waiting` (for the mail), `fetch` (the link is to be opened),
    /// `done` or `failed`.
    pub state: String,
    /// The verification link, while it is to be opened.
    pub verify_url: String,
    /// What happened last, in words.
    pub detail: String,
}

impl Store {
    /// When the subscribers' keys were last refreshed (Unix seconds).
    pub fn key_refresh_last(&self) -> Result<Option<i64>> {
        self.conn
            .query_row("SELECT last_at FROM key_refresh WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()
            .store("read when keys were last refreshed")
    }

    /// Notes that a refresh of the subscribers' keys started at `at`.
    pub fn set_key_refresh_last(&self, at: i64) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO key_refresh (id, last_at) VALUES (1, ?1)
                 ON CONFLICT(id) DO UPDATE SET last_at = excluded.last_at",
                [at],
            )
            .store("note the key refresh")?;
        Ok(())
    }

    /// Remembers an upload waiting for its verification mail; an earlier
    /// one to the same keyserver still waiting is superseded.
    pub fn add_key_publish(
        &self,
        keyserver: &str,
        address: &str,
        fingerprint: &str,
        now: i64,
    ) -> Result<i64> {
        self.conn
            .execute(
                "UPDATE key_publish SET state = 'failed', detail = 'superseded', updated_at = ?2
                 WHERE keyserver = ?1 AND state IN ('waiting', 'fetch')",
                params![keyserver, now],
            )
            .store("supersede a waiting publish")?;
        self.conn
            .execute(
                "INSERT INTO key_publish (keyserver, address, fingerprint, started_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?4)",
                params![keyserver, address, fingerprint, now],
            )
            .store("remember a publish")?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Uploads in `state`, oldest first.
    pub fn key_publishes(&self, state: &str) -> Result<Vec<KeyPublish>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, keyserver, address, fingerprint, started_at, state, verify_url, detail
                 FROM key_publish WHERE state = ?1 ORDER BY id",
            )
            .store("read publishes")?;
        let rows = stmt
            .query_map([state], |r| {
                Ok(KeyPublish {
                    id: r.get(0)?,
                    keyserver: r.get(1)?,
                    address: r.get(2)?,
                    fingerprint: r.get(3)?,
                    started_at: r.get(4)?,
                    state: r.get(5)?,
                    verify_url: r.get(6)?,
                    detail: r.get(7)?,
                })
            })
            .store("read publishes")?;
        rows.collect::<std::result::Result<Vec<_>, _>>()
            .store("read publishes")
    }

    /// The most recent upload, whatever its state.
    pub fn last_key_publish(&self) -> Result<Option<KeyPublish>> {
        self.conn
            .query_row(
                "SELECT id, keyserver, address, fingerprint, started_at, state, verify_url, detail
                 FROM key_publish ORDER BY id DESC LIMIT 1",
                [],
                |r| {
                    Ok(KeyPublish {
                        id: r.get(0)?,
                        keyserver: r.get(1)?,
                        address: r.get(2)?,
                        fingerprint: r.get(3)?,
                        started_at: r.get(4)?,
                        state: r.get(5)?,
                        verify_url: r.get(6)?,
                        detail: r.get(7)?,
                    })
                },
            )
            .optional()
            .store("read the last publish")
    }

    /// Moves an upload to `state`, with its link (empty to forget it) and
    /// what happened.
    pub fn set_key_publish(
        &self,
        id: i64,
        state: &str,
        verify_url: &str,
        detail: &str,
        now: i64,
    ) -> Result<()> {
        self.conn
            .execute(
                "UPDATE key_publish SET state = ?2, verify_url = ?3, detail = ?4, updated_at = ?5
                 WHERE id = ?1",
                params![id, state, verify_url, detail, now],
            )
            .store("update a publish")?;
        Ok(())
    }
}
