-- What each SKU is and costs: prices come from here, never from the client. Rewritten from
-- STOCK_FILE on every start (the file is the price list), unlike the stock counts.
CREATE TABLE IF NOT EXISTS catalogue (
    sku TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    price_cents BIGINT NOT NULL,
    currency TEXT NOT NULL
);
