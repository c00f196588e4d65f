//! The inbox: message ids a consumer has handled, recorded in the same transaction as the state
//! change they caused, so a redelivered or duplicated event changes nothing. Each worker's own
//! migrations create its `inbox (message_id, queue, handled_at)` table: services share no schema.

use sqlx::AnyConnection;

/// A delivery's key in the inbox: its `message_id`, the queue it came from and, in an inbox with
/// an `order_id` column, the order it is about. A `message_id` is unique per event only as long
/// as every producer keeps it so; one reused on a fact about another order (a copy-paste bug, a
/// replayed fixture, a hostile producer) must move that order, not vanish as a duplicate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The message's id, when it has one.
    pub message_id: Option<String>,
    /// The queue it was consumed from.
    pub queue: String,
    /// The order the delivery is about, for an inbox keyed by order too.
    pub order_id: Option<String>,
}

impl Claim {
    /// The key of a delivery of `message_id` from `queue`.
    #[must_use]
    pub fn new(message_id: Option<&str>, queue: &str) -> Self {
        Self {
            message_id: message_id.map(str::to_owned),
            queue: queue.to_owned(),
            order_id: None,
        }
    }

    /// The key of a delivery, from its metadata.
    #[must_use]
    pub fn of(meta: &broker::Meta) -> Self {
        Self::new(meta.message_id.as_deref(), &meta.queue)
    }

    /// The key of a delivery of `message_id` from `queue` about `order_id`, for an inbox keyed by
    /// `(message_id, queue, order_id)`.
    #[must_use]
    pub fn for_order(message_id: Option<&str>, queue: &str, order_id: &str) -> Self {
        Self {
            order_id: Some(order_id.to_owned()),
            ..Self::new(message_id, queue)
        }
    }
}

/// Records the delivery `claim` as handled; false when it already was (a duplicate).
pub async fn claim(
    conn: &mut AnyConnection,
    claim: &Claim,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let Some(message_id) = &claim.message_id else {
        // Without an id there is nothing to deduplicate by; the state machine still guards.
        return Ok(true);
    };
    let inserted = match &claim.order_id {
        None => sqlx::query(
            "INSERT INTO inbox (message_id, queue, handled_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(message_id)
        .bind(&claim.queue)
        .bind(now),
        Some(order_id) => sqlx::query(
            "INSERT INTO inbox (message_id, queue, order_id, handled_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
        )
        .bind(message_id)
        .bind(&claim.queue)
        .bind(order_id)
        .bind(now),
    }
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Takes back `claim` recorded earlier in the same transaction, when the change it guarded turned
/// out not to apply (its order is not known yet): the redelivery must not look like a duplicate.
pub async fn release(conn: &mut AnyConnection, claim: &Claim) -> Result<(), sqlx::Error> {
    if let Some(message_id) = &claim.message_id {
        let statement = match &claim.order_id {
            None => sqlx::query("DELETE FROM inbox WHERE message_id = $1 AND queue = $2")
                .bind(message_id)
                .bind(&claim.queue),
            Some(order_id) => sqlx::query(
                "DELETE FROM inbox WHERE message_id = $1 AND queue = $2 AND order_id = $3",
            )
            .bind(message_id)
            .bind(&claim.queue)
            .bind(order_id),
        };
        statement.execute(conn).await?;
    }
    Ok(())
}
