-- Retention deletes inbox claims by age: without this it would scan the inbox on every pass.
CREATE INDEX IF NOT EXISTS inbox_by_handled_at ON inbox (handled_at);
