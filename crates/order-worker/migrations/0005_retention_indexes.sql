-- Retention deletes rows by age: without these a pass would scan the table. The outbox's one
-- leads with `quarantined_at` (pruned rows have none) so that the age range is read from it.
CREATE INDEX IF NOT EXISTS inbox_by_handled_at ON inbox (handled_at);
CREATE INDEX IF NOT EXISTS outbox_sent_unquarantined ON outbox (quarantined_at, sent_at);
CREATE INDEX IF NOT EXISTS idempotency_keys_by_created_at ON idempotency_keys (created_at);
