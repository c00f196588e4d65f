//! Reading the workers' own stores directly (SQLite files or PostgreSQL databases, through
//! sqlx's `Any` driver): every order, payment, reservation and SKU in one query per table,
//! which for 100,000 orders is far quicker than the HTTP API and also shows rows nobody asked
//! for (a second order made by a retried POST).

use anyhow::Context;
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use std::collections::{BTreeMap, HashMap};

/// An order row.
#[derive(Debug, Clone)]
pub struct Order {
    /// Its id.
    pub order_id: String,
    /// `pending`, `completed` or `cancelled`.
    pub status: String,
    /// Why it was cancelled.
    pub reason: Option<String>,
    /// The customer (the soak writes `soak-<index>`).
    pub customer_id: String,
    /// The total, cents.
    pub total_cents: i64,
}

/// A payment row.
#[derive(Debug, Clone)]
pub struct Payment {
    /// `pending`, `charged`, `declined`, `refunded` or `cancelled`.
    pub status: String,
    /// What the order asked for, cents.
    pub amount_cents: i64,
    /// What was charged, cents.
    pub charged_cents: i64,
    /// What was refunded, cents.
    pub refunded_cents: i64,
}

/// A SKU's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stock {
    /// Units for sale.
    pub available: i64,
    /// Units held for orders not yet paid.
    pub reserved: i64,
    /// Units sold.
    pub committed: i64,
}

/// Everything the stores hold at one moment (read table by table, so only meaningful once the
/// system is quiet).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Every order by id.
    pub orders: HashMap<String, Order>,
    /// Outbox rows not yet published.
    pub unsent_outbox: i64,
    /// Every payment by order id.
    pub payments: HashMap<String, Payment>,
    /// Every reservation's status by order id.
    pub reservations: HashMap<String, String>,
    /// Every SKU.
    pub stock: BTreeMap<String, Stock>,
    /// The simulated provider's approved charges per order (count, cents), from its
    /// `provider_charges` table; `None` when the payment worker has no such table.
    pub provider: Option<HashMap<String, (i64, i64)>>,
}

/// Pools on the three stores.
#[derive(Debug, Clone)]
pub struct Stores {
    order: AnyPool,
    payment: AnyPool,
    stock: AnyPool,
}

impl Stores {
    /// Opens small pools on the three database URLs (the workers' own `DATABASE_URL`s).
    ///
    /// # Errors
    /// When a store cannot be opened.
    pub async fn open(order: &str, payment: &str, stock: &str) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let open = |url: String| async move {
            AnyPoolOptions::new()
                .max_connections(2)
                .connect(&url)
                .await
                .with_context(|| format!("opening {url}"))
        };
        Ok(Self {
            order: open(order.to_owned()).await?,
            payment: open(payment.to_owned()).await?,
            stock: open(stock.to_owned()).await?,
        })
    }

    /// Orders still `pending`, and outbox rows not yet published.
    ///
    /// # Errors
    /// When the order store cannot be read.
    pub async fn progress(&self) -> anyhow::Result<(i64, i64)> {
        let pending: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE status = 'pending'")
                .fetch_one(&self.order)
                .await?;
        let unsent: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL")
            .fetch_one(&self.order)
            .await?;
        Ok((pending, unsent))
    }

    /// Reads every table the audit needs.
    ///
    /// # Errors
    /// When a store cannot be read.
    pub async fn snapshot(&self) -> anyhow::Result<Snapshot> {
        let orders: Vec<(String, String, Option<String>, String, i64)> =
            sqlx::query_as("SELECT order_id, status, reason, customer_id, total_cents FROM orders")
                .fetch_all(&self.order)
                .await?;
        let (_, unsent_outbox) = self.progress().await?;
        let payments: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(
            "SELECT order_id, status, amount_cents, charged_cents, refunded_cents FROM payments",
        )
        .fetch_all(&self.payment)
        .await?;
        let reservations: Vec<(String, String)> =
            sqlx::query_as("SELECT order_id, status FROM reservations")
                .fetch_all(&self.stock)
                .await?;
        let stock: Vec<(String, i64, i64, i64)> =
            sqlx::query_as("SELECT sku, available, reserved, committed FROM stock")
                .fetch_all(&self.stock)
                .await?;
        let provider: Option<Vec<(String, i64, i64)>> = sqlx::query_as(
            "SELECT reference, CAST(COUNT(*) AS BIGINT), CAST(SUM(amount_cents) AS BIGINT) \
             FROM provider_charges WHERE outcome = 'approved' GROUP BY reference",
        )
        .fetch_all(&self.payment)
        .await
        .ok();
        Ok(Snapshot {
            provider: provider.map(|rows| {
                rows.into_iter()
                    .map(|(reference, n, cents)| (reference, (n, cents)))
                    .collect()
            }),
            orders: orders
                .into_iter()
                .map(|(order_id, status, reason, customer_id, total_cents)| {
                    let order = Order {
                        order_id: order_id.clone(),
                        status,
                        reason,
                        customer_id,
                        total_cents,
                    };
                    (order_id, order)
                })
                .collect(),
            unsent_outbox,
            payments: payments
                .into_iter()
                .map(
                    |(id, status, amount_cents, charged_cents, refunded_cents)| {
                        let payment = Payment {
                            status,
                            amount_cents,
                            charged_cents,
                            refunded_cents,
                        };
                        (id, payment)
                    },
                )
                .collect(),
            reservations: reservations.into_iter().collect(),
            stock: stock
                .into_iter()
                .map(|(sku, available, reserved, committed)| {
                    let counts = Stock {
                        available,
                        reserved,
                        committed,
                    };
                    (sku, counts)
                })
                .collect(),
        })
    }

    /// Closes the pools.
    pub async fn close(&self) {
        self.order.close().await;
        self.payment.close().await;
        self.stock.close().await;
    }
}
