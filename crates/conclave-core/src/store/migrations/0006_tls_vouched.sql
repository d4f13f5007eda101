-- Servers a certificate authority vouched for (the public roots, the
-- system's store or the configured CA file), per endpoint (host:port). Such
-- a server that later shows a certificate no authority vouches for raises
-- the same alarm as a changed pin, never the question "accept this?".
CREATE TABLE tls_vouched (
    endpoint   TEXT PRIMARY KEY NOT NULL,
    first_at   INTEGER NOT NULL,
    last_at    INTEGER NOT NULL
) STRICT;
