-- The replay cache shared by a list's instances through its mailbox:
-- which of this instance's entries are in the mailbox already, and the
-- marks (keyed digests) read from it.
ALTER TABLE replay_cache ADD COLUMN shared INTEGER NOT NULL DEFAULT 0;
CREATE TABLE replay_marks (
    mark    TEXT PRIMARY KEY,
    seen_at INTEGER NOT NULL
) STRICT;
