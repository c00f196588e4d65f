//! The inventory store: stock per SKU and one reservation per order. Every stock change is a
//! conditional `UPDATE … WHERE available >= n`, taken in SKU order, so that replicas sharing
//! PostgreSQL never oversell and never deadlock. A reservation is `reserved`, then `committed` or
//! `released`; or `rejected`. A decision that overtakes the reservation leaves a tombstone:
//! `paid` (the reservation then sells at once) or `cancelled` (the order is never reserved).

use crate::catalogue::Inventory;
use futures_util::FutureExt;
use service::clock;
use service::db::Db;
use service::inbox::{self, Claim};
use sqlx::{AnyConnection, Row};
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
    pub committed: i64,
}

/// A SKU as the catalogue lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    /// Price of one unit in minor units.
    pub price_cents: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Units free to reserve now.
    pub available: i64,
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
    /// Paid before its `order.created` arrived: its units are sold as soon as they are taken.
    Paid,
}

/// Units per SKU, merged and in SKU order (the lock order).
pub type Lines = BTreeMap<String, i64>;

/// The store over its database.
#[derive(Debug, Clone)]
pub struct StockStore {
    db: Db,
}

impl StockStore {
    /// Wraps a migrated database.
    #[must_use]
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Writes the catalogue (names and prices, as `inventory` says now) and adds SKUs not yet
    /// known with their initial units; known SKUs keep their counts. Returns the SKUs added.
    pub async fn seed(&self, inventory: &Inventory) -> Result<usize, sqlx::Error> {
        self.db
            .write(inventory.clone(), |conn, inventory| {
                async move {
                    let mut added = 0;
                    for (sku, listing) in inventory {
                        let units = i64::try_from(listing.units).unwrap_or(i64::MAX);
                        let price = i64::try_from(listing.price_cents)
                            .map_err(|err| sqlx::Error::Encode(Box::new(err)))?;
                        sqlx::query(
                            "INSERT INTO catalogue (sku, name, price_cents, currency) VALUES ($1, $2, $3, $4) \
                             ON CONFLICT (sku) DO UPDATE SET name = excluded.name, \
                             price_cents = excluded.price_cents, currency = excluded.currency",
                        )
                        .bind(sku)
                        .bind(&listing.name)
                        .bind(price)
                        .bind(&listing.currency)
                        .execute(&mut *conn)
                        .await?;
                        added += sqlx::query(
                            "INSERT INTO stock (sku, available) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                        )
                        .bind(sku)
                        .bind(units)
                        .execute(&mut *conn)
                        .await?
                        .rows_affected();
                    }
                    Ok(usize::try_from(added).unwrap_or_default())
                }
                .boxed()
            })
            .await
    }

    /// The catalogue's entries for those of `skus` it lists, with the units available now.
    pub async fn listed(&self, skus: &[String]) -> Result<BTreeMap<String, Listed>, sqlx::Error> {
        let mut listed = BTreeMap::new();
        let mut conn = self.db.pool().acquire().await?;
        for sku in skus {
            if listed.contains_key(sku) {
                continue;
            }
            let row = sqlx::query(
                "SELECT c.name, c.price_cents, c.currency, COALESCE(s.available, 0) AS available \
                 FROM catalogue c LEFT JOIN stock s ON s.sku = c.sku WHERE c.sku = $1",
            )
            .bind(sku)
            .fetch_optional(&mut *conn)
            .await?;
            if let Some(row) = row {
                let entry = Listed {
                    name: row.get("name"),
                    price_cents: row.get("price_cents"),
                    currency: row.get("currency"),
                    available: row.get("available"),
                };
                listed.insert(sku.clone(), entry);
            }
        }
        Ok(listed)
    }

    /// The counts of `sku`.
    pub async fn level(&self, sku: &str) -> Result<Option<StockLevel>, sqlx::Error> {
        let row =
            sqlx::query("SELECT sku, available, reserved, committed FROM stock WHERE sku = $1")
                .bind(sku)
                .fetch_optional(self.db.pool())
                .await?;
        Ok(row.map(|row| StockLevel {
            sku: row.get("sku"),
            available: row.get("available"),
            reserved: row.get("reserved"),
            committed: row.get("committed"),
        }))
    }

    /// The reservation of `order_id`, if any.
    pub async fn reservation(&self, order_id: &str) -> Result<Option<Reservation>, sqlx::Error> {
        let mut conn = self.db.pool().acquire().await?;
        reservation(&mut conn, order_id).await
    }

    /// Reserves every line for `order_id` at once, or records the refusal; returns the outcome
    /// (the earlier one when the order was already decided).
    pub async fn reserve(
        &self,
        order_id: &str,
        lines: &Lines,
        claim: Claim,
    ) -> Result<Reservation, sqlx::Error> {
        let input = (order_id.to_owned(), lines.clone(), claim);
        self.db
            .write(input, |conn, (order_id, lines, claim)| {
                reserve(conn, order_id, lines, claim).boxed()
            })
            .await
    }

    /// Moves a reservation to sold; when the payment overtook the reservation, records it as
    /// paid so the reservation sells its units straight away. Returns the reservation.
    pub async fn commit(&self, order_id: &str, claim: Claim) -> Result<Reservation, sqlx::Error> {
        self.resolve(order_id, Resolve::Commit, claim).await
    }

    /// Returns a reservation's units to stock, or (when none was made yet) leaves a tombstone so
    /// the order is never reserved.
    pub async fn release(&self, order_id: &str, claim: Claim) -> Result<Reservation, sqlx::Error> {
        self.resolve(order_id, Resolve::Release, claim).await
    }

    async fn resolve(
        &self,
        order_id: &str,
        how: Resolve,
        claim: Claim,
    ) -> Result<Reservation, sqlx::Error> {
        let input = (order_id.to_owned(), claim);
        self.db
            .write(input, move |conn, (order_id, claim)| {
                resolve(conn, order_id, how, claim).boxed()
            })
            .await
    }
}

/// What becomes of a reservation when its order is decided.
#[derive(Debug, Clone, Copy)]
enum Resolve {
    /// Paid: the reserved units are sold.
    Commit,
    /// Cancelled: the reserved units go back to stock.
    Release,
}

impl Resolve {
    /// The reservation's status afterwards.
    fn status(self) -> &'static str {
        match self {
            Self::Commit => "committed",
            Self::Release => "released",
        }
    }

    /// The reservation afterwards, as the handlers see it.
    fn resolved(self) -> Reservation {
        match self {
            Self::Commit => Reservation::Committed,
            Self::Release => Reservation::Released,
        }
    }

    /// The tombstone left when the decision arrives before the reservation.
    fn early_status(self) -> &'static str {
        match self {
            Self::Commit => "paid",
            Self::Release => "cancelled",
        }
    }

    /// Moves one SKU's reserved units.
    fn statement(self) -> &'static str {
        match self {
            Self::Commit => {
                "UPDATE stock SET reserved = reserved - $2, committed = committed + $2 WHERE sku = $1"
            }
            Self::Release => {
                "UPDATE stock SET reserved = reserved - $2, available = available + $2 WHERE sku = $1"
            }
        }
    }
}

/// The reservation of `order_id` as `conn` sees it.
async fn reservation(
    conn: &mut AnyConnection,
    order_id: &str,
) -> Result<Option<Reservation>, sqlx::Error> {
    let row = sqlx::query("SELECT status, short_skus FROM reservations WHERE order_id = $1")
        .bind(order_id)
        .fetch_optional(conn)
        .await?;
    row.map(|row| {
        let status: String = row.get("status");
        Ok(match status.as_str() {
            "reserved" => Reservation::Reserved,
            "committed" => Reservation::Committed,
            "released" => Reservation::Released,
            "cancelled" => Reservation::Cancelled,
            "paid" => Reservation::Paid,
            "rejected" => Reservation::Rejected(service::stored::json(&row, "short_skus")?),
            other => return Err(service::stored::unknown_state("status", other)),
        })
    })
    .transpose()
}

/// Reserves every line of `order_id` on `conn` (inside a transaction), or records the refusal;
/// returns the outcome (the earlier one when the order was already decided). An order already
/// paid has its units sold at once.
async fn reserve(
    conn: &mut AnyConnection,
    order_id: &str,
    lines: &Lines,
    claim: &Claim,
) -> Result<Reservation, sqlx::Error> {
    let now = clock::now();
    if !inbox::claim(conn, claim, &now).await? {
        return written_reservation(conn, order_id).await;
    }
    let encoded = serde_json::to_string(lines).unwrap_or_default();
    // Where the units go, how to give them back, and what that makes the reservation.
    let (take, give_back, taken_as) = if insert_reservation(
        conn, order_id, "reserved", &encoded, "[]", &now,
    )
    .await?
    {
        (
            "UPDATE stock SET available = available - $2, reserved = reserved + $2 \
             WHERE sku = $1 AND available >= $2",
            "UPDATE stock SET available = available + $2, reserved = reserved - $2 WHERE sku = $1",
            Reservation::Reserved,
        )
    } else if sqlx::query(
        "UPDATE reservations SET status = 'committed', lines = $2, updated_at = $3 \
         WHERE order_id = $1 AND status = 'paid'",
    )
    .bind(order_id)
    .bind(&encoded)
    .bind(&now)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1
    {
        (
            "UPDATE stock SET available = available - $2, committed = committed + $2 \
             WHERE sku = $1 AND available >= $2",
            "UPDATE stock SET available = available + $2, committed = committed - $2 WHERE sku = $1",
            Reservation::Committed,
        )
    } else {
        // Decided earlier (a tombstone, or a duplicate without a message id).
        return written_reservation(conn, order_id).await;
    };
    let mut taken = Vec::new();
    let mut short = Vec::new();
    for (sku, units) in lines {
        let moved = sqlx::query(take)
            .bind(sku)
            .bind(units)
            .execute(&mut *conn)
            .await?;
        if moved.rows_affected() == 1 {
            taken.push((sku, units));
        } else {
            short.push(sku.clone());
        }
    }
    if !short.is_empty() {
        // Give back the lines taken and record the refusal instead.
        for (sku, units) in taken {
            sqlx::query(give_back)
                .bind(sku)
                .bind(units)
                .execute(&mut *conn)
                .await?;
        }
        sqlx::query(
            "UPDATE reservations SET status = 'rejected', short_skus = $2, updated_at = $3 \
             WHERE order_id = $1",
        )
        .bind(order_id)
        .bind(serde_json::to_string(&short).unwrap_or_default())
        .bind(&now)
        .execute(&mut *conn)
        .await?;
        return Ok(Reservation::Rejected(short));
    }
    Ok(taken_as)
}

/// Resolves the reservation of `order_id` on `conn` (inside a transaction): the tombstone first
/// (it waits for an in-flight reservation of the same order on PostgreSQL, so what follows sees
/// it), then a `reserved` reservation moves on with its units. A tombstone left means the
/// decision came first: a payment is sold when the reservation comes; a cancellation means the
/// order is never reserved.
async fn resolve(
    conn: &mut AnyConnection,
    order_id: &str,
    how: Resolve,
    claim: &Claim,
) -> Result<Reservation, sqlx::Error> {
    let now = clock::now();
    if inbox::claim(conn, claim, &now).await? {
        insert_reservation(conn, order_id, how.early_status(), "{}", "[]", &now).await?;
        let row = sqlx::query(
            "UPDATE reservations SET status = $2, updated_at = $3 \
             WHERE order_id = $1 AND status = 'reserved' RETURNING lines",
        )
        .bind(order_id)
        .bind(how.status())
        .bind(&now)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(row) = row {
            let lines: Lines = service::stored::json(&row, "lines")?;
            for (sku, units) in &lines {
                sqlx::query(how.statement())
                    .bind(sku)
                    .bind(units)
                    .execute(&mut *conn)
                    .await?;
            }
            return Ok(how.resolved());
        } else if matches!(how, Resolve::Release) {
            // Paid ahead, then cancelled: nothing was taken, and nothing ever will be.
            sqlx::query(
                "UPDATE reservations SET status = 'cancelled', updated_at = $2 \
                 WHERE order_id = $1 AND status = 'paid'",
            )
            .bind(order_id)
            .bind(&now)
            .execute(&mut *conn)
            .await?;
        }
    }
    written_reservation(conn, order_id).await
}

/// The reservation of `order_id`, which the same transaction has just written.
async fn written_reservation(
    conn: &mut AnyConnection,
    order_id: &str,
) -> Result<Reservation, sqlx::Error> {
    reservation(conn, order_id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)
}

async fn insert_reservation(
    conn: &mut AnyConnection,
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
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

#[cfg(test)]
mod tests;
