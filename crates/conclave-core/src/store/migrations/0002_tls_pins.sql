-- Certificates the owner accepted by their SHA-256 fingerprint, per endpoint
-- (host:port). A pin is never replaced silently: a changed certificate fails.
CREATE TABLE tls_pins (
    endpoint    TEXT PRIMARY KEY NOT NULL,
    sha256      TEXT NOT NULL,
    subject     TEXT NOT NULL DEFAULT '',
    accepted_at INTEGER NOT NULL
) STRICT;
