-- What the list told subscribers about their keys, so that each notice
-- goes out once: 'expiry', once per key and expiry date (`about` holds
-- the date); 'missed', at most once a day per subscriber, counting the
-- posts they missed since the key stopped serving (`about` is empty).
CREATE TABLE key_notices (
    address     TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('expiry', 'missed')),
    about       TEXT NOT NULL DEFAULT '',
    fingerprint TEXT NOT NULL,
    sent_at     INTEGER NOT NULL,
    missed      INTEGER NOT NULL DEFAULT 0,
    since       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (address, kind, about)
) STRICT;

-- When the daily key check last ran (one row).
CREATE TABLE key_checks (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    last_at INTEGER NOT NULL
) STRICT;
