-- Inventory per SKU: available + reserved + committed is the stock ever received.
CREATE TABLE IF NOT EXISTS stock (
    sku TEXT PRIMARY KEY,
    available BIGINT NOT NULL,
    reserved BIGINT NOT NULL DEFAULT 0,
    committed BIGINT NOT NULL DEFAULT 0
);

-- One reservation per order: reserved -> committed | released; or rejected; or a 'cancelled'
-- tombstone when the cancellation arrived first (the order is then never reserved).
CREATE TABLE IF NOT EXISTS reservations (
    order_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    lines TEXT NOT NULL,
    short_skus TEXT NOT NULL DEFAULT '[]',
    updated_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS inbox (
    message_id TEXT NOT NULL,
    queue TEXT NOT NULL,
    handled_at TEXT NOT NULL,
    PRIMARY KEY (message_id, queue)
);
