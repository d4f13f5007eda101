-- What a fan-out needs of each subscriber's key, derived once when the key
-- is stored (List::store_key), so a post to 100,000 subscribers neither
-- parses nor holds their certificates. A table of its own, narrow, so that
-- a fan-out reads these rows and not the certificates beside them:
--   keys            the encryption subkeys to use: fingerprint and public
--                   subkey packet of each (empty: the key cannot be
--                   encrypted to); no row: not derived yet, as for keys
--                   stored before this migration, or a key just replaced;
--   seipd_v2        whether the key asks for SEIPDv2;
--   usable_from/_until  the time window in which that choice holds (until
--                   NULL: no end); outside it the certificate is read again.
CREATE TABLE recipients (
    address      TEXT PRIMARY KEY NOT NULL REFERENCES subscribers(address) ON DELETE CASCADE,
    keys         BLOB NOT NULL,
    seipd_v2     INTEGER NOT NULL DEFAULT 0,
    usable_from  INTEGER NOT NULL DEFAULT 0,
    usable_until INTEGER
) STRICT, WITHOUT ROWID;

-- Every key ID (primary key and subkeys) of every subscriber's key: a
-- signature names its issuer, and only that certificate is read to check it.
CREATE TABLE subscriber_keys (
    key_id  TEXT NOT NULL,
    address TEXT NOT NULL REFERENCES subscribers(address) ON DELETE CASCADE,
    PRIMARY KEY (key_id, address)
) STRICT, WITHOUT ROWID;
CREATE INDEX subscriber_keys_address ON subscriber_keys(address);
CREATE INDEX subscribers_fingerprint ON subscribers(fingerprint);

-- The outer headers every copy of a post shares are kept once, with its
-- body; a copy's row keeps its recipient and recipient packets (its
-- `headers` stay empty; the list's answers, kind 'plain'/'reply', keep theirs).
ALTER TABLE bodies ADD COLUMN headers TEXT NOT NULL DEFAULT '';

-- Sent copies are pruned after store.sent_retention_days (found through
-- outbox_state: one more index here would cost every copy sent a write).
