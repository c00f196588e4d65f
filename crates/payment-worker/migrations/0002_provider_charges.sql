-- The simulated payment provider's own books: one row per idempotency key, committed before the
-- provider answers, so a repeated request returns the first answer and charges nothing more.
-- The payments store never touches this table (a real provider keeps these on its side).
CREATE TABLE IF NOT EXISTS provider_charges (
    idempotency_key TEXT PRIMARY KEY,
    reference TEXT NOT NULL,
    outcome TEXT NOT NULL,
    decline_reason TEXT,
    amount_cents BIGINT NOT NULL,
    currency TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS provider_charges_by_reference ON provider_charges (reference);
