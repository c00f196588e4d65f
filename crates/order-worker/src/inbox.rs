//! The order worker's inbox: the facts it has applied, keyed by `message_id`, queue **and
//! order**, recorded in the transaction of the change. A `message_id` is unique per event only as
//! long as every producer keeps it so; one reused on a fact about another order (a copy-paste
//! bug, a replayed fixture, a hostile producer) must move that order, not vanish as a
//! "duplicate" of the first.

use sqlx::AnyConnection;

/// A fact delivery's key in the inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The message's id, when it has one.
    message_id: Option<String>,
    /// The queue it was consumed from.
    queue: String,
    /// The order the fact is about.
    order_id: String,
}

impl Claim {
    /// The key of a delivery of `message_id` from `queue` about `order_id`.
    #[must_use]
    pub fn new(message_id: Option<&str>, queue: &str, order_id: &str) -> Self {
        Self {
            message_id: message_id.map(str::to_owned),
            queue: queue.to_owned(),
            order_id: order_id.to_owned(),
        }
    }
}

/// Records the delivery `claim` as handled; false when it already was (a duplicate).
///
/// # Errors
/// When the store fails.
pub async fn claim(
    conn: &mut AnyConnection,
    claim: &Claim,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let Some(message_id) = &claim.message_id else {
        // Without an id there is nothing to deduplicate by; the state machine still guards.
        return Ok(true);
    };
    let inserted = sqlx::query(
        "INSERT INTO inbox (message_id, queue, order_id, handled_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT DO NOTHING",
    )
    .bind(message_id)
    .bind(&claim.queue)
    .bind(&claim.order_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Takes back `claim` recorded earlier in the same transaction, when the change it guarded turned
/// out not to apply (its order is not known yet): the redelivery must not look like a duplicate.
///
/// # Errors
/// When the store fails.
pub async fn release(conn: &mut AnyConnection, claim: &Claim) -> Result<(), sqlx::Error> {
    if let Some(message_id) = &claim.message_id {
        sqlx::query("DELETE FROM inbox WHERE message_id = $1 AND queue = $2 AND order_id = $3")
            .bind(message_id)
            .bind(&claim.queue)
            .bind(&claim.order_id)
            .execute(conn)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::store::{Applied, Change, OrderStore};
    use service::db::Db;
    use uuid::Uuid;

    async fn store() -> (OrderStore, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("order-inbox-{}", Uuid::new_v4().simple()));
        let url = format!("sqlite://{}/order.db", dir.display());
        let pool = service::store::open(&url, "normal", &crate::MIGRATOR)
            .await
            .unwrap();
        (OrderStore::new(Db::new(pool)), dir)
    }

    fn order(order_id: Uuid) -> contracts::OrderCreated {
        contracts::OrderCreated {
            order_id,
            customer_id: "c-1".into(),
            items: vec![contracts::LineItem {
                sku: "SKU-1".into(),
                quantity: 1,
                unit_price_cents: 100,
            }],
            total_cents: 100,
            currency: "EUR".into(),
            payment_token: None,
            created_at: time::OffsetDateTime::now_utc(),
        }
    }

    #[tokio::test]
    async fn a_reused_message_id_on_another_orders_fact_is_applied_to_that_order() {
        let (store, dir) = store().await;
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        for id in [a, b] {
            assert!(store.adopt(&order(id)).await.unwrap());
        }
        let queue = "order.order-paid";
        let reused = Some("the-same-message-id");
        for id in [a, b] {
            let applied = store.apply(id, &Change::Paid, reused, queue).await.unwrap();
            assert_eq!(applied, Applied::Done);
            let stored = store.get(&id.to_string()).await.unwrap().unwrap();
            assert!(stored.paid, "{id} is paid");
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
