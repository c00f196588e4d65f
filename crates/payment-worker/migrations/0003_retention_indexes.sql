-- Retention deletes inbox claims by age: without this it would scan the inbox on every pass.
-- The provider's charges are its own books and are never pruned.
CREATE INDEX IF NOT EXISTS inbox_by_handled_at ON inbox (handled_at);
