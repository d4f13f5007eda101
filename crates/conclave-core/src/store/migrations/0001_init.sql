-- The first schema. Never edit a shipped migration: add the next one.

-- Plain key/value settings: list identity and policy options.
CREATE TABLE config (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL DEFAULT ''
) STRICT;

-- The list's own certificate (public part only). The secret key lives in a
-- keystore: a passphrase-protected file, or a card.
CREATE TABLE list_key (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    fingerprint TEXT NOT NULL,
    cert        BLOB NOT NULL,
    keystore    TEXT NOT NULL DEFAULT 'file'
) STRICT;

CREATE TABLE subscribers (
    address     TEXT PRIMARY KEY NOT NULL,
    fingerprint TEXT NOT NULL,
    cert        BLOB NOT NULL,
    added_at    INTEGER NOT NULL
) STRICT;

-- Every message that reached the list, kept exactly as it arrived but sealed
-- to the list key (sealed = 1): even an encrypted post has clear outer
-- headers, and nothing of a post is ever at rest in clear.
CREATE TABLE posts (
    id          INTEGER PRIMARY KEY,
    received_at INTEGER NOT NULL,
    digest      TEXT NOT NULL,
    size        INTEGER NOT NULL,
    raw         BLOB NOT NULL,
    sealed      INTEGER NOT NULL DEFAULT 0,
    sender      TEXT NOT NULL DEFAULT '',
    signer      TEXT NOT NULL DEFAULT '',
    state       TEXT NOT NULL DEFAULT 'received'
                CHECK (state IN ('received', 'distributed', 'held', 'rejected', 'discarded')),
    reason      TEXT NOT NULL DEFAULT '',
    updated_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX posts_state ON posts(state);

-- Digests of author signatures already seen, to refuse replays.
CREATE TABLE replay_cache (
    digest  TEXT PRIMARY KEY NOT NULL,
    post_id INTEGER NOT NULL REFERENCES posts(id),
    seen_at INTEGER NOT NULL
) STRICT;

-- The encrypted body of a distributed post (an OpenPGP SEIPD packet), shared
-- by every copy of that post; each copy adds its own recipient packets.
CREATE TABLE bodies (
    id         INTEGER PRIMARY KEY,
    post_id    INTEGER NOT NULL REFERENCES posts(id),
    seipd      BLOB NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- One row per (post, subscriber) copy. `headers` are the outer headers, which
-- carry no post content; `pkesks` are that subscriber's recipient packets.
CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY,
    post_id    INTEGER NOT NULL REFERENCES posts(id),
    body_id    INTEGER NOT NULL REFERENCES bodies(id),
    recipient  TEXT NOT NULL,
    message_id TEXT NOT NULL,
    headers    TEXT NOT NULL,
    pkesks     BLOB NOT NULL,
    state      TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sent', 'failed')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    sent_at    INTEGER
) STRICT;
CREATE UNIQUE INDEX outbox_pair ON outbox(post_id, recipient);
CREATE INDEX outbox_state ON outbox(state);

-- What happened, for the owner. Never any post content.
CREATE TABLE audit (
    id      INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    post_id INTEGER,
    event   TEXT NOT NULL,
    detail  TEXT NOT NULL DEFAULT ''
) STRICT;
