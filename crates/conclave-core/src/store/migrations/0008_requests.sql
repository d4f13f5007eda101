-- What a message was: a post to the list ('post'), a request to the
-- request or key address ('request'), or a message for the owner
-- ('owner'), which is never distributed.
ALTER TABLE posts ADD COLUMN kind TEXT NOT NULL DEFAULT 'post';

-- The outbox also carries the list's automatic replies: 'reply' rows are
-- encrypted to one person's key like a copy, 'plain' rows are signed
-- only (the list key to someone whose key the list does not know), their
-- body a whole signed MIME entity. A post has at most one copy per
-- subscriber; replies are not bound by that.
ALTER TABLE outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'copy';
DROP INDEX outbox_pair;
CREATE UNIQUE INDEX outbox_pair ON outbox(post_id, recipient) WHERE kind = 'copy';

-- Requests waiting for a proof (a token sent encrypted to a key, coming
-- back signed) or for the owner. The token itself is never stored, only
-- its SHA-256.
CREATE TABLE requests (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('subscribe', 'key-change', 'unsubscribe')),
    address         TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    old_fingerprint TEXT NOT NULL DEFAULT '',
    cert            BLOB NOT NULL,
    token_sha256    TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('proof', 'owner', 'done', 'refused', 'superseded')),
    post_id         INTEGER,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    proof_at        INTEGER,
    decided_at      INTEGER,
    reason          TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX requests_token ON requests(token_sha256);
CREATE INDEX requests_state ON requests(state, address);

-- When the list answered whom, for the limit of replies per address.
CREATE TABLE replies (
    address TEXT NOT NULL,
    at      INTEGER NOT NULL
) STRICT;
CREATE INDEX replies_address ON replies(address, at);
