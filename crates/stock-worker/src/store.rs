//! The inventory store: stock per SKU and one reservation per order. Every stock change is a
//! conditional `UPDATE … WHERE available >= n`, taken in SKU order, so that replicas sharing
//! PostgreSQL never oversell and never deadlock.

use service::{clock, inbox};
use sqlx::{Any, AnyPool, Row, Transaction};
use std::collections::BTreeMap;

/// One SKU's counts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StockLevel {
    /// The SKU.
    pub sku: String,
    /// Free to reserve.
    pub available: i64,
    /// Held for orders not yet paid.
    pub reserved: i64,
    /// Sold.
    pub committed: i64,
}

/// Where an order's reservation stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// Every line is held.
    Reserved,
    /// Paid and sold.
    Committed,
    /// Released after a cancellation.
    Released,
    /// Refused: these SKUs were short.
    Rejected(Vec<String>),
    /// Cancelled before it was ever reserved.
    Cancelled,
}

/// Units per SKU, merged and in SKU order (the lock order).
pub type Lines = BTreeMap<String, i64>;

/// The store over its pool.
#[derive(Debug, Clone)]
pub struct StockStore {
    pool: AnyPool,
}

impl StockStore {
    /// Wraps a migrated pool.
    #[must_use]
    pub fn new(pool: AnyPool) -> Self {
        Self { pool }
    }

    /// Adds SKUs not yet known with their initial stock; known SKUs keep their counts.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn seed(&self, inventory: &BTreeMap<String, u64>) -> Result<usize, sqlx::Error> {
        let mut added = 0;
        for (sku, units) in inventory {
            let units = i64::try_from(*units).unwrap_or(i64::MAX);
            added += sqlx::query(
                "INSERT INTO stock (sku, available) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(sku)
            .bind(units)
            .execute(&self.pool)
            .await?
            .rows_affected();
        }
        Ok(usize::try_from(added).unwrap_or_default())
    }

    /// The counts of `sku`.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn level(&self, sku: &str) -> Result<Option<StockLevel>, sqlx::Error> {
        let row =
            sqlx::query("SELECT sku, available, reserved, committed FROM stock WHERE sku = $1")
                .bind(sku)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|row| StockLevel {
            sku: row.get("sku"),
            available: row.get("available"),
            reserved: row.get("reserved"),
            committed: row.get("committed"),
        }))
    }

    /// The reservation of `order_id`, if any.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn reservation(&self, order_id: &str) -> Result<Option<Reservation>, sqlx::Error> {
        let row = sqlx::query("SELECT status, short_skus FROM reservations WHERE order_id = $1")
            .bind(order_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| {
            let status: String = row.get("status");
            match status.as_str() {
                "reserved" => Reservation::Reserved,
                "committed" => Reservation::Committed,
                "released" => Reservation::Released,
                "cancelled" => Reservation::Cancelled,
                _ => Reservation::Rejected(
                    serde_json::from_str(&row.get::<String, _>("short_skus")).unwrap_or_default(),
                ),
            }
        }))
    }

    /// Reserves every line for `order_id` at once, or records the refusal; returns the outcome
    /// (the earlier one when the order was already decided).
    ///
    /// # Errors
    /// When the store fails.
    pub async fn reserve(
        &self,
        order_id: &str,
        lines: &Lines,
        message_id: Option<&str>,
        queue: &str,
    ) -> Result<Reservation, sqlx::Error> {
        let now = clock::now();
        let encoded = serde_json::to_string(lines).unwrap_or_default();
        let mut tx = self.pool.begin().await?;
        if inbox::claim(&mut tx, message_id, queue, &now).await?
            && insert_reservation(&mut tx, order_id, "reserved", &encoded, "[]", &now).await?
        {
            let mut short = Vec::new();
            for (sku, units) in lines {
                let taken = sqlx::query(
                    "UPDATE stock SET available = available - $2, reserved = reserved + $2 \
                     WHERE sku = $1 AND available >= $2",
                )
                .bind(sku)
                .bind(units)
                .execute(&mut *tx)
                .await?;
                if taken.rows_affected() == 0 {
                    short.push(sku.clone());
                }
            }
            if !short.is_empty() {
                tx.rollback().await?;
                let mut tx = self.pool.begin().await?;
                inbox::claim(&mut tx, message_id, queue, &now).await?;
                let skus = serde_json::to_string(&short).unwrap_or_default();
                insert_reservation(&mut tx, order_id, "rejected", &encoded, &skus, &now).await?;
                tx.commit().await?;
                return self.expect(order_id).await;
            }
        }
        tx.commit().await?;
        self.expect(order_id).await
    }

    /// Moves a reservation to sold. `None` when the order has no reservation yet.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn commit(
        &self,
        order_id: &str,
        message_id: Option<&str>,
        queue: &str,
    ) -> Result<Option<Reservation>, sqlx::Error> {
        self.settle(order_id, "committed", message_id, queue, false)
            .await
    }

    /// Returns a reservation's units to stock, or (when none was made yet) leaves a tombstone so
    /// the order is never reserved.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn release(
        &self,
        order_id: &str,
        message_id: Option<&str>,
        queue: &str,
    ) -> Result<Reservation, sqlx::Error> {
        let outcome = self
            .settle(order_id, "released", message_id, queue, true)
            .await?;
        Ok(outcome.unwrap_or(Reservation::Cancelled))
    }

    async fn settle(
        &self,
        order_id: &str,
        to: &str,
        message_id: Option<&str>,
        queue: &str,
        tombstone: bool,
    ) -> Result<Option<Reservation>, sqlx::Error> {
        let now = clock::now();
        let mut tx = self.pool.begin().await?;
        if inbox::claim(&mut tx, message_id, queue, &now).await? {
            if tombstone {
                // First: it waits for an in-flight reservation of the same order (PostgreSQL), so
                // the update below sees and releases it.
                insert_reservation(&mut tx, order_id, "cancelled", "{}", "[]", &now).await?;
            }
            let row = sqlx::query(
                "UPDATE reservations SET status = $2, updated_at = $3 \
                 WHERE order_id = $1 AND status = 'reserved' RETURNING lines",
            )
            .bind(order_id)
            .bind(to)
            .bind(&now)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = row {
                let lines: Lines =
                    serde_json::from_str(&row.get::<String, _>("lines")).unwrap_or_default();
                let statement = if to == "committed" {
                    "UPDATE stock SET reserved = reserved - $2, committed = committed + $2 WHERE sku = $1"
                } else {
                    "UPDATE stock SET reserved = reserved - $2, available = available + $2 WHERE sku = $1"
                };
                for (sku, units) in &lines {
                    sqlx::query(statement)
                        .bind(sku)
                        .bind(units)
                        .execute(&mut *tx)
                        .await?;
                }
            } else if !tombstone
                && sqlx::query("SELECT 1 FROM reservations WHERE order_id = $1")
                    .bind(order_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_none()
            {
                // Nothing to commit yet: leave no trace, so the redelivery is handled afresh.
                tx.rollback().await?;
                return Ok(None);
            }
        }
        tx.commit().await?;
        self.reservation(order_id).await
    }

    async fn expect(&self, order_id: &str) -> Result<Reservation, sqlx::Error> {
        self.reservation(order_id)
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }
}

async fn insert_reservation(
    tx: &mut Transaction<'_, Any>,
    order_id: &str,
    status: &str,
    lines: &str,
    short_skus: &str,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO reservations (order_id, status, lines, short_skus, updated_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(order_id)
    .bind(status)
    .bind(lines)
    .bind(short_skus)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(inserted.rows_affected() == 1)
}
