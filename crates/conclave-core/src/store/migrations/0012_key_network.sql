-- Keys on the web. When the subscribers' keys were last asked of WKD and
-- the keyserver (one row), so a restart does not ask again before
-- keys.refresh_days have passed.
CREATE TABLE key_refresh (
    id       INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    last_at  INTEGER NOT NULL
) STRICT;

-- The list key uploaded to a VKS keyserver (`key publish`), waiting for the
-- server's verification mail to the list address. The list only recognises
-- a verification mail for a publish in state 'waiting', from that server;
-- it notes the link (state 'fetch') and the relay opens it (state 'done',
-- the link forgotten), never the list itself.
CREATE TABLE key_publish (
    id           INTEGER PRIMARY KEY NOT NULL,
    keyserver    TEXT NOT NULL,
    address      TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    started_at   INTEGER NOT NULL,
    state        TEXT NOT NULL DEFAULT 'waiting'
                 CHECK (state IN ('waiting', 'fetch', 'done', 'failed')),
    verify_url   TEXT NOT NULL DEFAULT '',
    detail       TEXT NOT NULL DEFAULT '',
    updated_at   INTEGER NOT NULL DEFAULT 0
) STRICT;
