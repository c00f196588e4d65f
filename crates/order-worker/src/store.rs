//! The orders store: orders, the transactional outbox and idempotency keys. Every state change
//! and the event it causes are written in one transaction.

use crate::validation::ValidOrder;
use broker::{Event, Outgoing};
use contracts::outbox::QuarantinedRow;
use futures_util::FutureExt;
use service::clock;
use service::db::Db;
use service::inbox::{self, Claim};
use service::retention::Prunable;
use sqlx::{Any, AnyConnection, Row};
use uuid::Uuid;

/// An order as the API shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Order {
    pub order_id: String,
    /// `pending`, `completed` or `cancelled`.
    pub status: String,
    /// Why it was cancelled.
    pub reason: Option<String>,
    pub customer_id: String,
    pub items: serde_json::Value,
    /// Sum of the lines.
    pub total_cents: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Stock is held (or sold) for it.
    pub stock_reserved: bool,
    /// The customer was charged.
    pub paid: bool,
    /// The charge was refunded.
    pub refunded: bool,
    /// When it was placed.
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
}

/// The reason of an order its customer cancelled.
pub const CUSTOMER_CANCELLED: &str = "customer_cancelled";

/// What `POST /orders` came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// A new order.
    New(Uuid),
    /// The Idempotency-Key was seen with the same request: this is its order.
    Replayed(Uuid),
    /// The Idempotency-Key was seen with a different request.
    KeyConflict,
}

/// A fact about an order reported by another worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Stock is held.
    StockReserved,
    /// The customer was charged.
    Paid,
    /// The charge was refunded.
    Refunded,
    /// The order cannot complete, for this reason.
    Cancel(String),
}

/// What applying a change came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Recorded (or already recorded earlier).
    Done,
    /// Recorded, and an event waits in the outbox.
    DoneWithEvent,
    /// No such order.
    UnknownOrder,
}

/// An unsent outbox row.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    /// Its `message_id`.
    pub message_id: String,
    /// The order it is about.
    pub order_id: String,
    /// Event type.
    pub event_type: String,
    /// Target exchange.
    pub exchange: String,
    /// Routing key.
    pub routing_key: String,
    /// JSON body.
    pub body: String,
    /// The trace of the request or delivery that wrote the row (W3C `traceparent`), if any.
    pub traceparent: Option<String>,
}

impl OutboxRow {
    /// The message to publish (the relay publishes it in the trace stored with the row).
    #[must_use]
    pub fn message(&self, app_id: &str) -> Outgoing {
        Outgoing::json(
            &self.exchange,
            &self.routing_key,
            &self.event_type,
            self.body.clone().into_bytes(),
            &self.order_id,
            app_id,
        )
        .with_message_id(&self.message_id)
    }
}

/// Outbox rows marked sent per statement (well below SQLite's and PostgreSQL's bind limits).
const MARK_SENT_CHUNK: usize = 256;

/// What retention prunes here: claims (keyed by order too), outbox rows once sent (never an
/// unsent or quarantined one) and idempotency keys; orders themselves stay.
pub const PRUNED: [Prunable; 3] = [
    Prunable {
        table: "inbox",
        key: "message_id, queue, order_id",
        stamp: "handled_at",
        only_if: None,
    },
    Prunable {
        table: "outbox",
        key: "message_id",
        stamp: "sent_at",
        only_if: Some("quarantined_at IS NULL"),
    },
    Prunable {
        table: "idempotency_keys",
        key: "idempotency_key",
        stamp: "created_at",
        only_if: None,
    },
];

/// The store over its database.
#[derive(Debug, Clone)]
pub struct OrderStore {
    db: Db,
}

impl OrderStore {
    /// Wraps a migrated database.
    #[must_use]
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Stores a new order and its `order.created` in the outbox, honouring an Idempotency-Key.
    pub async fn create(
        &self,
        order: &ValidOrder,
        idempotency_key: Option<&str>,
    ) -> Result<Created, sqlx::Error> {
        let now = time::OffsetDateTime::now_utc();
        let order_id = Uuid::now_v7();
        let fingerprint = serde_json::to_string(&order.request).unwrap_or_default();
        let event = contracts::OrderCreated {
            order_id,
            customer_id: order.request.customer_id.clone(),
            items: order.items.clone(),
            total_cents: order.total_cents,
            currency: order.currency.clone(),
            payment_token: order.request.payment_token.clone(),
            created_at: now,
        };
        let key = idempotency_key.map(str::to_owned);
        // Taken here: on SQLite the statements run on the writer task, outside the request's.
        let trace = broker::trace::current_traceparent();
        let input = (key.clone(), fingerprint.clone(), event, trace);
        let stored = self
            .db
            .write(input, |conn, (key, fingerprint, event, trace)| {
                async move {
                    let at = clock::format(event.created_at);
                    if let Some(key) = key {
                        let claimed = sqlx::query(
                            "INSERT INTO idempotency_keys (idempotency_key, order_id, fingerprint, created_at) \
                             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                        )
                        .bind(key)
                        .bind(event.order_id.to_string())
                        .bind(fingerprint)
                        .bind(&at)
                        .execute(&mut *conn)
                        .await?;
                        if claimed.rows_affected() == 0 {
                            return Ok(false);
                        }
                    }
                    insert_order(&mut *conn, event, &at).await?;
                    enqueue(conn, event, &at, trace.as_deref()).await?;
                    Ok(true)
                }
                .boxed()
            })
            .await?;
        match key {
            Some(key) if !stored => self.replay(&key, &fingerprint).await,
            _ => Ok(Created::New(order_id)),
        }
    }

    async fn replay(&self, key: &str, fingerprint: &str) -> Result<Created, sqlx::Error> {
        let row = sqlx::query(
            "SELECT order_id, fingerprint FROM idempotency_keys WHERE idempotency_key = $1",
        )
        .bind(key)
        .fetch_one(self.db.pool())
        .await?;
        if row.get::<String, _>("fingerprint") != fingerprint {
            return Ok(Created::KeyConflict);
        }
        let id: String = row.get("order_id");
        Ok(Created::Replayed(
            id.parse()
                .map_err(|err| sqlx::Error::Decode(Box::new(err)))?,
        ))
    }

    /// The order `order_id`.
    pub async fn get(&self, order_id: &str) -> Result<Option<Order>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT order_id, status, reason, customer_id, items, total_cents, currency, \
             stock_reserved, paid, refunded, created_at, updated_at FROM orders WHERE order_id = $1",
        )
        .bind(order_id)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|row| {
            Ok(Order {
                order_id: row.get("order_id"),
                status: row.get("status"),
                reason: row.get("reason"),
                customer_id: row.get("customer_id"),
                items: service::stored::json(&row, "items")?,
                total_cents: row.get("total_cents"),
                currency: row.get("currency"),
                stock_reserved: row.get::<i64, _>("stock_reserved") != 0,
                paid: row.get::<i64, _>("paid") != 0,
                refunded: row.get::<i64, _>("refunded") != 0,
                created_at: row.get("created_at"),
                updated_at: row.get("updated_at"),
            })
        })
        .transpose()
    }

    /// Records an order published straight to the exchange (not through the API); an order the
    /// store already has is left as it is.
    pub async fn adopt(&self, event: &contracts::OrderCreated) -> Result<bool, sqlx::Error> {
        let added = self
            .db
            .write(event.clone(), |conn, event| {
                async move { insert_order(conn, event, &clock::now()).await }.boxed()
            })
            .await?;
        Ok(added == 1)
    }

    /// How many orders are in each status.
    pub async fn summary(&self) -> Result<std::collections::BTreeMap<String, i64>, sqlx::Error> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM orders GROUP BY status")
            .fetch_all(self.db.pool())
            .await?;
        let mut counts: std::collections::BTreeMap<String, i64> =
            ["pending", "completed", "cancelled"]
                .iter()
                .map(|s| ((*s).to_owned(), 0))
                .collect();
        for row in rows {
            counts.insert(row.get("status"), row.get("n"));
        }
        Ok(counts)
    }

    /// Applies a fact reported by another worker (once per `message_id` and order).
    pub async fn apply(
        &self,
        order_id: Uuid,
        change: &Change,
        claim: Claim,
    ) -> Result<Applied, sqlx::Error> {
        // Taken here: on SQLite the statements run on the writer task, outside the delivery's.
        let trace = broker::trace::current_traceparent();
        let input = (change.clone(), claim, trace);
        self.db
            .write(input, move |conn, (change, claim, trace)| {
                apply_in(conn, order_id, change, claim, trace.as_deref()).boxed()
            })
            .await
    }

    /// Cancels a pending order at its customer's request (reason [`CUSTOMER_CANCELLED`]); its
    /// `order.cancelled` then runs the compensation. `Done` means it was no longer pending.
    pub async fn cancel_for_customer(&self, order_id: Uuid) -> Result<Applied, sqlx::Error> {
        let trace = broker::trace::current_traceparent();
        self.db
            .write(trace, move |conn, trace| {
                async move {
                    let now = clock::now();
                    let cancelled = Cancel {
                        reason: CUSTOMER_CANCELLED,
                        claim: None,
                        trace: trace.as_deref(),
                    };
                    cancel(conn, order_id, &cancelled, &now).await
                }
                .boxed()
            })
            .await
    }

    /// Up to `limit` unsent outbox rows that are not quarantined, oldest first.
    pub async fn unsent(&self, limit: i64) -> Result<Vec<OutboxRow>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT message_id, order_id, event_type, exchange, routing_key, body, traceparent \
             FROM outbox WHERE sent_at IS NULL AND quarantined_at IS NULL \
             ORDER BY created_at LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| OutboxRow {
                message_id: row.get("message_id"),
                order_id: row.get("order_id"),
                event_type: row.get("event_type"),
                exchange: row.get("exchange"),
                routing_key: row.get("routing_key"),
                body: row.get("body"),
                traceparent: row.get("traceparent"),
            })
            .collect())
    }

    /// Records a failed publish of `message_id` with `error`; quarantines the row once it failed
    /// `quarantine_after` times. Returns whether it is now quarantined.
    pub async fn record_publish_failure(
        &self,
        message_id: &str,
        error: &str,
        quarantine_after: i64,
    ) -> Result<bool, sqlx::Error> {
        let input = (message_id.to_owned(), error.to_owned());
        self.db
            .write(input, move |conn, (message_id, error)| {
                async move {
                    sqlx::query(
                        "UPDATE outbox SET attempts = attempts + 1, last_error = $2, \
                         quarantined_at = CASE WHEN attempts + 1 >= $3 THEN $4 ELSE NULL END \
                         WHERE message_id = $1 AND sent_at IS NULL",
                    )
                    .bind(message_id)
                    .bind(error)
                    .bind(quarantine_after)
                    .bind(clock::now())
                    .execute(&mut *conn)
                    .await?;
                    let quarantined = sqlx::query(
                        "SELECT 1 FROM outbox WHERE message_id = $1 AND quarantined_at IS NOT NULL",
                    )
                    .bind(message_id)
                    .fetch_optional(&mut *conn)
                    .await?;
                    Ok(quarantined.is_some())
                }
                .boxed()
            })
            .await
    }

    /// Rows waiting to be published (quarantined ones aside), and when the oldest was written.
    pub async fn backlog(&self) -> Result<(i64, Option<String>), sqlx::Error> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS waiting, MIN(created_at) AS oldest FROM outbox \
             WHERE sent_at IS NULL AND quarantined_at IS NULL",
        )
        .fetch_one(self.db.pool())
        .await?;
        Ok((row.get("waiting"), row.get("oldest")))
    }

    /// The quarantined outbox rows, oldest first.
    pub async fn quarantined(&self) -> Result<Vec<QuarantinedRow>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT message_id, order_id, event_type, exchange, routing_key, attempts, last_error, \
             quarantined_at FROM outbox WHERE quarantined_at IS NOT NULL AND sent_at IS NULL \
             ORDER BY created_at",
        )
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| QuarantinedRow {
                message_id: row.get("message_id"),
                order_id: row.get("order_id"),
                event_type: row.get("event_type"),
                exchange: row.get("exchange"),
                routing_key: row.get("routing_key"),
                attempts: row.get("attempts"),
                last_error: row.get("last_error"),
                quarantined_at: row.get("quarantined_at"),
            })
            .collect())
    }

    /// Gives a quarantined row another round of attempts; returns whether one was released.
    pub async fn release(&self, message_id: &str) -> Result<bool, sqlx::Error> {
        let released = self
            .db
            .write(message_id.to_owned(), |conn, message_id| {
                async move {
                    let released = sqlx::query(
                        "UPDATE outbox SET attempts = 0, quarantined_at = NULL \
                         WHERE message_id = $1 AND quarantined_at IS NOT NULL AND sent_at IS NULL",
                    )
                    .bind(message_id)
                    .execute(&mut *conn)
                    .await?;
                    Ok(released.rows_affected())
                }
                .boxed()
            })
            .await?;
        Ok(released == 1)
    }

    /// Marks outbox rows as published.
    pub async fn mark_sent(&self, message_ids: &[&str]) -> Result<(), sqlx::Error> {
        let ids: Vec<String> = message_ids.iter().map(|id| (*id).to_owned()).collect();
        self.db
            .write(ids, |conn, ids| {
                async move {
                    let now = clock::now();
                    for chunk in ids.chunks(MARK_SENT_CHUNK) {
                        let list = (2..chunk.len() + 2)
                            .map(|n| format!("${n}"))
                            .collect::<Vec<_>>()
                            .join(", ");
                        let statement =
                            format!("UPDATE outbox SET sent_at = $1 WHERE message_id IN ({list})");
                        let mut query = sqlx::query(&statement).bind(&now);
                        for id in chunk {
                            query = query.bind(id);
                        }
                        query.execute(&mut *conn).await?;
                    }
                    Ok(())
                }
                .boxed()
            })
            .await
    }
}

/// Applies `change` to `order_id` on `conn` (inside a transaction), once per `message_id`. The
/// common path is two statements, the claim and the update; an update that finds no order takes
/// the claim back.
async fn apply_in(
    conn: &mut AnyConnection,
    order_id: Uuid,
    change: &Change,
    claim: &Claim,
    trace: Option<&str>,
) -> Result<Applied, sqlx::Error> {
    let now = clock::now();
    let id = order_id.to_string();
    if !inbox::claim(conn, claim, &now).await? {
        return Ok(Applied::Done);
    }
    let statement = match change {
        Change::StockReserved => {
            "UPDATE orders SET stock_reserved = 1, updated_at = $2, status = CASE \
             WHEN status = 'pending' AND paid = 1 THEN 'completed' ELSE status END WHERE order_id = $1"
        }
        Change::Paid => {
            "UPDATE orders SET paid = 1, updated_at = $2, status = CASE \
             WHEN status = 'pending' AND stock_reserved = 1 THEN 'completed' ELSE status END WHERE order_id = $1"
        }
        Change::Refunded => "UPDATE orders SET refunded = 1, updated_at = $2 WHERE order_id = $1",
        Change::Cancel(reason) => {
            let cancelled = Cancel {
                reason,
                claim: Some(claim),
                trace,
            };
            return cancel(conn, order_id, &cancelled, &now).await;
        }
    };
    let updated = sqlx::query(statement)
        .bind(&id)
        .bind(&now)
        .execute(&mut *conn)
        .await?;
    if updated.rows_affected() == 0 {
        inbox::release(conn, claim).await?;
        return Ok(Applied::UnknownOrder);
    }
    Ok(Applied::Done)
}

/// A cancellation: why, the inbox claim of the fact that caused it (none for the customer's own),
/// and the trace its `order.cancelled` continues.
#[derive(Debug, Clone, Copy)]
struct Cancel<'a> {
    reason: &'a str,
    claim: Option<&'a Claim>,
    trace: Option<&'a str>,
}

/// Cancels a pending order and queues its `order.cancelled`; an order already terminal stays
/// as it is. The update itself checks `pending`, so on PostgreSQL two concurrent cancels (say
/// `stock.rejected` and `payment.failed`) cannot both win: the second waits for the first's row
/// lock and then finds the order no longer pending.
async fn cancel(
    conn: &mut AnyConnection,
    order_id: Uuid,
    how: &Cancel<'_>,
    now: &str,
) -> Result<Applied, sqlx::Error> {
    let Cancel {
        reason,
        claim,
        trace,
    } = *how;
    let id = order_id.to_string();
    let cancelled = sqlx::query(
        "UPDATE orders SET status = 'cancelled', reason = $3, updated_at = $2 \
         WHERE order_id = $1 AND status = 'pending'",
    )
    .bind(&id)
    .bind(now)
    .bind(reason)
    .execute(&mut *conn)
    .await?;
    if cancelled.rows_affected() == 0 {
        let known = sqlx::query("SELECT 1 FROM orders WHERE order_id = $1")
            .bind(&id)
            .fetch_optional(&mut *conn)
            .await?
            .is_some();
        if known {
            return Ok(Applied::Done);
        }
        if let Some(claim) = claim {
            inbox::release(conn, claim).await?;
        }
        return Ok(Applied::UnknownOrder);
    }
    let event = contracts::OrderCancelled {
        order_id,
        reason: reason.to_owned(),
        cancelled_at: time::OffsetDateTime::now_utc(),
    };
    enqueue(conn, &event, now, trace).await?;
    Ok(Applied::DoneWithEvent)
}

/// Stores the order `event` describes as `pending` unless it is known; returns the rows added.
async fn insert_order<'e>(
    executor: impl sqlx::Executor<'e, Database = Any>,
    event: &contracts::OrderCreated,
    updated_at: &str,
) -> Result<u64, sqlx::Error> {
    // Out of range is an error, never a clamped total.
    let total_cents =
        i64::try_from(event.total_cents).map_err(|err| sqlx::Error::Encode(Box::new(err)))?;
    let inserted = sqlx::query(
        "INSERT INTO orders (order_id, status, customer_id, items, total_cents, currency, \
         payment_token, created_at, updated_at) VALUES ($1, 'pending', $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT DO NOTHING",
    )
    .bind(event.order_id.to_string())
    .bind(&event.customer_id)
    .bind(serde_json::to_string(&event.items).unwrap_or_default())
    .bind(total_cents)
    .bind(&event.currency)
    .bind(event.payment_token.as_deref())
    .bind(clock::format(event.created_at))
    .bind(updated_at)
    .execute(executor)
    .await?;
    Ok(inserted.rows_affected())
}

/// Writes `event` to the outbox on `conn` (inside a transaction), with its deterministic
/// `message_id` and the `traceparent` the published event is to continue.
async fn enqueue<E: Event>(
    conn: &mut AnyConnection,
    event: &E,
    now: &str,
    traceparent: Option<&str>,
) -> Result<(), sqlx::Error> {
    let order_id = event.correlation_id();
    sqlx::query(
        "INSERT INTO outbox (message_id, order_id, event_type, exchange, routing_key, body, created_at, traceparent) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
    )
    .bind(contracts::ids::message_id(E::TYPE, &order_id))
    .bind(&order_id)
    .bind(E::TYPE)
    .bind(E::EXCHANGE)
    .bind(E::ROUTING_KEY)
    .bind(serde_json::to_string(event).map_err(|err| sqlx::Error::Encode(Box::new(err)))?)
    .bind(now)
    .bind(traceparent)
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests;
