-- `GET /orders/summary` counts orders per status: an index keeps that off the table itself.
CREATE INDEX IF NOT EXISTS orders_by_status ON orders (status);
