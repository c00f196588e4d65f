-- Orders: pending until both stock and payment say yes (completed) or one says no (cancelled).
CREATE TABLE IF NOT EXISTS orders (
    order_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    reason TEXT,
    customer_id TEXT NOT NULL,
    items TEXT NOT NULL,
    total_cents BIGINT NOT NULL,
    currency TEXT NOT NULL,
    payment_token TEXT,
    stock_reserved BIGINT NOT NULL DEFAULT 0,
    paid BIGINT NOT NULL DEFAULT 0,
    refunded BIGINT NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- The transactional outbox: written in the transaction of the state change, published by the
-- relay with confirms, then marked sent.
CREATE TABLE IF NOT EXISTS outbox (
    message_id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    exchange TEXT NOT NULL,
    routing_key TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    sent_at TEXT
);
CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (sent_at, created_at);

-- Idempotency-Key of POST /orders: the same key returns the same order.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    idempotency_key TEXT PRIMARY KEY,
    order_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS inbox (
    message_id TEXT NOT NULL,
    queue TEXT NOT NULL,
    handled_at TEXT NOT NULL,
    PRIMARY KEY (message_id, queue)
);
