-- Payments: one row per order; its status moves pending -> charged | declined, charged -> refunded,
-- and a cancellation that arrives first leaves a 'cancelled' tombstone so the order is never charged.
CREATE TABLE IF NOT EXISTS payments (
    order_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    payment_id TEXT,
    amount_cents BIGINT NOT NULL DEFAULT 0,
    currency TEXT NOT NULL DEFAULT '',
    charged_cents BIGINT NOT NULL DEFAULT 0,
    refunded_cents BIGINT NOT NULL DEFAULT 0,
    decline_reason TEXT,
    charged_at TEXT,
    refunded_at TEXT,
    updated_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS inbox (
    message_id TEXT NOT NULL,
    queue TEXT NOT NULL,
    handled_at TEXT NOT NULL,
    PRIMARY KEY (message_id, queue)
);
