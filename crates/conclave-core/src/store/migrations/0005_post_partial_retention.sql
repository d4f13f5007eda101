-- imap_validity: the UIDVALIDITY of INBOX when the post was fetched (0: not
-- from IMAP), so a UID from another UIDVALIDITY is never trusted.
-- partial = 1: the post was too large to download, so `raw` seals its
-- header alone and `size` is its size at the server; the whole message
-- stays in the mailbox (Conclave/Held or Conclave/Rejected).
-- purged_at: when the retention option deleted the stored bytes of a
-- rejected or discarded post (`raw` is then empty); NULL while kept.
ALTER TABLE posts ADD COLUMN imap_validity INTEGER NOT NULL DEFAULT 0;
ALTER TABLE posts ADD COLUMN partial INTEGER NOT NULL DEFAULT 0;
ALTER TABLE posts ADD COLUMN purged_at INTEGER;
