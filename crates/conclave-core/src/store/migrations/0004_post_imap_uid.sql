-- Where a post fetched over IMAP stands: imap_state is '' (not from IMAP),
-- 'recorded' (still in INBOX, unclaimed), 'claimed' (this instance won the
-- claim; imap_uid is its INBOX UID) or 'moved' (imap_uid is its UID in
-- Conclave/Processed).
ALTER TABLE posts ADD COLUMN imap_state TEXT NOT NULL DEFAULT '';
ALTER TABLE posts ADD COLUMN imap_uid INTEGER NOT NULL DEFAULT 0;
