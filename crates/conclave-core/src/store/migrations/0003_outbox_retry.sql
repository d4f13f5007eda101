-- When a copy refused with a temporary error (4xx) may be tried again.
ALTER TABLE outbox ADD COLUMN next_attempt_at INTEGER NOT NULL DEFAULT 0;
