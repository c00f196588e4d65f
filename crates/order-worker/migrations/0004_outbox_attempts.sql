-- The relay's record of failed publishes: a row that failed `attempts` times with a permanent
-- error (`last_error`) is quarantined (skipped, never dropped) until an operator releases it.
-- `traceparent` is the trace of the request or delivery that wrote the row; the published event
-- continues it.
ALTER TABLE outbox ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN last_error TEXT;
ALTER TABLE outbox ADD COLUMN quarantined_at TEXT;
ALTER TABLE outbox ADD COLUMN traceparent TEXT;
CREATE INDEX IF NOT EXISTS outbox_quarantined ON outbox (quarantined_at);
