//! The payments store: one row per order and the transitions between its states, each one a
//! single conditional statement so that replicas sharing PostgreSQL never charge twice.

use futures_util::FutureExt;
use service::clock;
use service::db::Db;
use service::inbox::{self, Claim};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

/// Where an order's payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Known, not charged yet.
    Pending,
    Charged,
    /// Declined by the provider.
    Declined,
    /// Charged, then refunded.
    Refunded,
    /// Cancelled before any charge: it never will be charged.
    Cancelled,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Charged => "charged",
            Self::Declined => "declined",
            Self::Refunded => "refunded",
            Self::Cancelled => "cancelled",
        }
    }

    fn parse(text: &str) -> Result<Self, sqlx::Error> {
        [
            Self::Pending,
            Self::Charged,
            Self::Declined,
            Self::Refunded,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
        .ok_or_else(|| service::stored::unknown_state("status", text))
    }
}

/// An order's payment row.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Payment {
    pub order_id: String,
    #[serde(serialize_with = "status_text")]
    pub status: Status,
    /// The charge's id, once charged.
    pub payment_id: Option<String>,
    /// The order's total.
    pub amount_cents: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Charged so far.
    pub charged_cents: i64,
    /// Refunded so far.
    pub refunded_cents: i64,
    /// Why the provider declined.
    pub decline_reason: Option<String>,
    /// When it was charged.
    pub charged_at: Option<String>,
    /// When it was refunded.
    pub refunded_at: Option<String>,
}

impl Payment {
    /// Cancelled after the order was opened and before a charge was recorded: the provider may
    /// still have charged it (see [`PaymentStore::charge`], which then records the refund).
    #[must_use]
    pub fn cancelled_while_open(&self) -> bool {
        self.status == Status::Cancelled && self.payment_id.is_none() && self.amount_cents > 0
    }
}

fn status_text<S: serde::Serializer>(status: &Status, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(status.as_str())
}

/// The store over its database.
#[derive(Debug, Clone)]
pub struct PaymentStore {
    db: Db,
}

/// The columns [`payment`] reads, as a literal so that statements are built at compile time.
macro_rules! columns {
    () => {
        "order_id, status, payment_id, amount_cents, currency, charged_cents, refunded_cents, decline_reason, charged_at, refunded_at"
    };
}

impl PaymentStore {
    /// Wraps a migrated database.
    #[must_use]
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// The payment of `order_id`, if known.
    pub async fn get(&self, order_id: &str) -> Result<Option<Payment>, sqlx::Error> {
        let mut conn = self.db.pool().acquire().await?;
        fetch(&mut conn, order_id).await
    }

    /// Records a new order as `pending` (unless known) and the message as handled; returns the row.
    pub async fn open(
        &self,
        order_id: &str,
        amount_cents: i64,
        currency: &str,
        claim: Claim,
    ) -> Result<Payment, sqlx::Error> {
        let input = (
            order_id.to_owned(),
            amount_cents,
            currency.to_owned(),
            claim,
        );
        self.db
            .write(input, |conn, (order_id, amount_cents, currency, claim)| {
                async move {
                    let now = clock::now();
                    if inbox::claim(conn, claim, &now).await? {
                        let inserted = sqlx::query(concat!(
                            "INSERT INTO payments (order_id, status, amount_cents, currency, updated_at) \
                             VALUES ($1, 'pending', $2, $3, $4) ON CONFLICT DO NOTHING RETURNING ",
                            columns!()
                        ))
                        .bind(order_id)
                        .bind(*amount_cents)
                        .bind(currency)
                        .bind(&now)
                        .fetch_optional(&mut *conn)
                        .await?;
                        if let Some(row) = inserted {
                            return payment(&row);
                        }
                    }
                    written_payment(conn, order_id).await
                }
                .boxed()
            })
            .await
    }

    /// Records the provider's charge; returns the row as it now stands. If the order was
    /// cancelled while the provider was charging, the charge is recorded together with its refund
    /// (status `refunded`), so no customer stays charged for a cancelled order. One conditional
    /// statement: replicas racing on one order record one charge.
    pub async fn charge(&self, order_id: &str, payment_id: &str) -> Result<Payment, sqlx::Error> {
        let input = (order_id.to_owned(), payment_id.to_owned());
        self.db
            .write(input, |conn, (order_id, payment_id)| {
                async move {
                    let charged = sqlx::query(concat!(
                        "UPDATE payments SET \
                           status = CASE status WHEN 'pending' THEN 'charged' ELSE 'refunded' END, \
                           payment_id = $2, charged_cents = amount_cents, charged_at = $3, \
                           refunded_cents = CASE status WHEN 'pending' THEN 0 ELSE amount_cents END, \
                           refunded_at = CASE status WHEN 'pending' THEN NULL ELSE $3 END, updated_at = $3 \
                         WHERE order_id = $1 AND (status = 'pending' \
                           OR (status = 'cancelled' AND payment_id IS NULL AND amount_cents > 0)) \
                         RETURNING ",
                        columns!()
                    ))
                    .bind(order_id)
                    .bind(payment_id)
                    .bind(clock::now())
                    .fetch_optional(&mut *conn)
                    .await?;
                    match charged {
                        Some(row) => payment(&row),
                        None => written_payment(conn, order_id).await,
                    }
                }
                .boxed()
            })
            .await
    }

    /// Records the decline if the payment is still pending; returns the row as it now stands.
    pub async fn decline(&self, order_id: &str, reason: &str) -> Result<Payment, sqlx::Error> {
        let input = (order_id.to_owned(), reason.to_owned());
        self.db
            .write(input, |conn, (order_id, reason)| {
                async move {
                    sqlx::query(
                        "UPDATE payments SET status = 'declined', decline_reason = $2, updated_at = $3 \
                         WHERE order_id = $1 AND status = 'pending'",
                    )
                    .bind(order_id)
                    .bind(reason)
                    .bind(clock::now())
                    .execute(&mut *conn)
                    .await?;
                    written_payment(conn, order_id).await
                }
                .boxed()
            })
            .await
    }

    /// The order was cancelled: refund a charge, or make sure it is never charged. Returns the row.
    pub async fn cancel(&self, order_id: &str, claim: Claim) -> Result<Payment, sqlx::Error> {
        let input = (order_id.to_owned(), claim);
        self.db
            .write(input, |conn, (order_id, claim)| {
                async move {
                    let now = clock::now();
                    if inbox::claim(conn, claim, &now).await? {
                        // The tombstone first: it waits for an in-flight `open` of the same order
                        // (PostgreSQL), so the update below sees the row that `open` wrote.
                        sqlx::query(
                            "INSERT INTO payments (order_id, status, updated_at) VALUES ($1, $2, $3) \
                             ON CONFLICT DO NOTHING",
                        )
                        .bind(order_id)
                        .bind(Status::Cancelled.as_str())
                        .bind(&now)
                        .execute(&mut *conn)
                        .await?;
                        // One statement, re-checked against the latest row version: a charge
                        // committed meanwhile is refunded, a pending payment will never be charged.
                        sqlx::query(
                            "UPDATE payments SET \
                               status = CASE status WHEN 'charged' THEN 'refunded' ELSE 'cancelled' END, \
                               refunded_cents = CASE status WHEN 'charged' THEN charged_cents ELSE refunded_cents END, \
                               refunded_at = CASE status WHEN 'charged' THEN $2 ELSE refunded_at END, \
                               updated_at = $2 \
                             WHERE order_id = $1 AND status IN ('pending', 'charged')",
                        )
                        .bind(order_id)
                        .bind(&now)
                        .execute(&mut *conn)
                        .await?;
                    }
                    written_payment(conn, order_id).await
                }
                .boxed()
            })
            .await
    }
}

/// The payment of `order_id` as `conn` sees it.
async fn fetch(conn: &mut AnyConnection, order_id: &str) -> Result<Option<Payment>, sqlx::Error> {
    let row = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM payments WHERE order_id = $1"
    ))
    .bind(order_id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(payment).transpose()
}

/// A payment from a row of the columns of `columns!`.
fn payment(row: &AnyRow) -> Result<Payment, sqlx::Error> {
    Ok(Payment {
        order_id: row.get("order_id"),
        status: Status::parse(row.get::<String, _>("status").as_str())?,
        payment_id: row.get("payment_id"),
        amount_cents: row.get("amount_cents"),
        currency: row.get("currency"),
        charged_cents: row.get("charged_cents"),
        refunded_cents: row.get("refunded_cents"),
        decline_reason: row.get("decline_reason"),
        charged_at: row.get("charged_at"),
        refunded_at: row.get("refunded_at"),
    })
}

/// The payment of `order_id`, which the same transaction has just written.
async fn written_payment(conn: &mut AnyConnection, order_id: &str) -> Result<Payment, sqlx::Error> {
    fetch(conn, order_id).await?.ok_or(sqlx::Error::RowNotFound)
}

#[cfg(test)]
mod tests;
