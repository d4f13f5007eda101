-- Bounces. Each copy goes out with a VERP envelope sender naming its
-- outbox row under a MAC keyed with the list's own secret (bounce_secret);
-- what comes back is logged in `bounces`, and a subscriber's failures are
-- scored (Mailman's way: hard 1, soft 0.5, one a day, forgotten once the
-- last counted one is older than bounce_stale_days). delivery_disabled = 1:
-- the owner's bounce_action stopped their copies until re-enabled.
-- last_failure_*: the last failure seen for them, counted or not (a
-- status code and one line of what the server said; never post content).
ALTER TABLE subscribers ADD COLUMN bounce_score REAL NOT NULL DEFAULT 0;
ALTER TABLE subscribers ADD COLUMN bounce_counted_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE subscribers ADD COLUMN last_failure_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE subscribers ADD COLUMN last_failure_status TEXT NOT NULL DEFAULT '';
ALTER TABLE subscribers ADD COLUMN last_failure_text TEXT NOT NULL DEFAULT '';
ALTER TABLE subscribers ADD COLUMN delivery_disabled INTEGER NOT NULL DEFAULT 0;

CREATE TABLE bounce_secret (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    secret BLOB NOT NULL
) STRICT;

-- Every delivery failure the list heard of: `how` it came ('verp': to a
-- bounce address, 'report': a report to the list address matched by its
-- recipient and Message-ID, 'smtp': refused at submission), what it was
-- ('hard', 'soft', 'none': a report of success or delay without failure)
-- and what became of it.
CREATE TABLE bounces (
    id        INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    post_id   INTEGER,
    outbox_id INTEGER,
    recipient TEXT NOT NULL DEFAULT '',
    how       TEXT NOT NULL CHECK (how IN ('verp', 'report', 'smtp')),
    severity  TEXT NOT NULL CHECK (severity IN ('hard', 'soft', 'none')),
    status    TEXT NOT NULL DEFAULT '',
    detail    TEXT NOT NULL DEFAULT '',
    verdict   TEXT NOT NULL CHECK (verdict IN ('counted', 'same-day', 'not-a-copy', 'not-subscribed', 'no-failure', 'forged', 'unmatched'))
) STRICT;
CREATE INDEX bounces_recipient ON bounces(recipient, at);
