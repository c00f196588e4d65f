-- A fact's inbox key includes its order, so a message_id reused on another order's fact moves
-- that order instead of being dropped as a duplicate. The old claims are not carried over (they
-- name no order): a fact delivered again is applied again, and every change it makes is
-- conditional on the order's state, so that changes nothing.
DROP TABLE IF EXISTS inbox;
CREATE TABLE inbox (
    message_id TEXT NOT NULL,
    queue TEXT NOT NULL,
    order_id TEXT NOT NULL,
    handled_at TEXT NOT NULL,
    PRIMARY KEY (message_id, queue, order_id)
);
