//! What the soak orders and with what stock: a seeded mix of approved, declined, transiently
//! failing and short-of-stock orders, the inventory file they run against, and the outcome each
//! kind must end in.

use super::rng::Rng;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// A SKU with far more stock than the run can sell.
pub const PLENTY_A: &str = "SKU-1";
/// A second plentiful SKU (orders with two lines reserve both, in SKU order).
pub const PLENTY_B: &str = "SKU-2";
/// The scarce SKU: it runs out during the run, so later orders for it are rejected.
pub const SCARCE: &str = "SKU-SCARCE";

/// The payment token that approves.
pub const APPROVE: &str = "tok_visa";
/// The payment token that declines.
pub const DECLINE: &str = "tok_declined";
/// The payment token that fails transiently twice, then approves (fits in `RETRY_MAX=3`).
pub const TRANSIENT: &str = "tok_transient_2";
/// The payment token that fails until its dead letter is replayed, then approves.
pub const OUTAGE: &str = "tok_outage";

/// One order in this many (the one at index 50 of every hundred) uses [`OUTAGE`], so every run
/// of 51 orders or more has dead letters to replay.
const OUTAGE_EVERY: usize = 100;

/// The kind of order, which fixes the outcome it must reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Approved, plentiful stock: must complete.
    Approve,
    /// Declined: must be cancelled with `payment_declined`.
    Decline,
    /// Fails transiently twice, then approved: must complete.
    Transient,
    /// Approved, one unit of the scarce SKU: completes while stock lasts, else `out_of_stock`.
    Shortage,
    /// Fails until an operator replays its dead letter: pending with a dead letter, then
    /// completed once replayed.
    Outage,
}

impl Kind {
    /// The name used in reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Kind::Approve => "approve",
            Kind::Decline => "decline",
            Kind::Transient => "transient",
            Kind::Shortage => "shortage",
            Kind::Outage => "outage",
        }
    }

    /// Whether a terminal `status` with `reason` is what this kind must end in.
    #[must_use]
    pub fn accepts(self, status: &str, reason: Option<&str>) -> bool {
        match (self, status) {
            (Kind::Approve | Kind::Transient | Kind::Outage, "completed") => true,
            (Kind::Decline, "cancelled") => reason == Some("payment_declined"),
            (Kind::Shortage, "completed") => true,
            (Kind::Shortage, "cancelled") => reason == Some("out_of_stock"),
            _ => false,
        }
    }
}

/// One order line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The SKU.
    pub sku: &'static str,
    /// Units.
    pub quantity: u32,
    /// Price of one unit, cents.
    pub unit_price_cents: u64,
}

/// One order the soak submits.
#[derive(Debug, Clone)]
pub struct PlannedOrder {
    /// Its position in the run (also its idempotency key's suffix and customer id).
    pub index: usize,
    /// What it must end in.
    pub kind: Kind,
    /// The lines.
    pub lines: Vec<Line>,
    /// The payment token.
    pub token: &'static str,
}

impl PlannedOrder {
    /// The total the order worker computes, cents.
    #[must_use]
    pub fn total_cents(&self) -> u64 {
        self.lines
            .iter()
            .map(|line| line.unit_price_cents * u64::from(line.quantity))
            .sum()
    }

    /// The `POST /orders` body: the same bytes on every attempt, as an idempotent retry needs.
    #[must_use]
    pub fn body(&self) -> String {
        let items: Vec<Value> = self
            .lines
            .iter()
            .map(|line| {
                json!({"sku": line.sku, "quantity": line.quantity,
                       "unit_price_cents": line.unit_price_cents})
            })
            .collect();
        json!({
            "customer_id": format!("soak-{}", self.index),
            "items": items,
            "currency": "USD",
            "payment_token": self.token,
        })
        .to_string()
    }

    /// The `Idempotency-Key` of every attempt of this order.
    #[must_use]
    pub fn idempotency_key(&self, seed: u64) -> String {
        format!("soak-{seed}-{}", self.index)
    }
}

/// `orders` orders in a seeded mix: 55 % approved, 15 % declined, 15 % transient, 15 % short,
/// and one in a hundred replayed from a DLQ (in place of whatever it would have been).
#[must_use]
pub fn orders(orders: usize, rng: &mut Rng) -> Vec<PlannedOrder> {
    (0..orders)
        .map(|index| {
            let roll = rng.below(100);
            let kind = match roll {
                _ if index % OUTAGE_EVERY == OUTAGE_EVERY / 2 => Kind::Outage,
                0..55 => Kind::Approve,
                55..70 => Kind::Decline,
                70..85 => Kind::Transient,
                _ => Kind::Shortage,
            };
            let quantity = 1 + rng.below(3) as u32;
            let mut lines = vec![Line {
                sku: PLENTY_A,
                quantity,
                unit_price_cents: price_of(PLENTY_A),
            }];
            // A third of the orders have a second plentiful line.
            if rng.below(3) == 0 {
                lines.push(Line {
                    sku: PLENTY_B,
                    quantity: 1,
                    unit_price_cents: price_of(PLENTY_B),
                });
            }
            if kind == Kind::Shortage {
                lines.push(Line {
                    sku: SCARCE,
                    quantity: 1,
                    unit_price_cents: price_of(SCARCE),
                });
            }
            let token = match kind {
                Kind::Approve | Kind::Shortage => APPROVE,
                Kind::Decline => DECLINE,
                Kind::Transient => TRANSIENT,
                Kind::Outage => OUTAGE,
            };
            PlannedOrder {
                index,
                kind,
                lines,
                token,
            }
        })
        .collect()
}

/// The catalogue's price of each SKU the soak orders, cents (USD).
const PRICES: [(&str, u64); 3] = [(PLENTY_A, 1250), (PLENTY_B, 375), (SCARCE, 999)];

/// The catalogue's price of `sku`.
///
/// # Panics
/// For a SKU the soak does not order.
#[must_use]
pub fn price_of(sku: &str) -> u64 {
    PRICES
        .iter()
        .find(|(listed, _)| *listed == sku)
        .map(|(_, cents)| *cents)
        .unwrap_or_else(|| panic!("{sku} is not in the soak's catalogue"))
}

/// `STOCK_FILE` for `inventory`: each SKU at its [`price_of`], in USD.
#[must_use]
pub fn stock_file(inventory: &BTreeMap<String, i64>) -> Value {
    let listings = inventory
        .iter()
        .map(|(sku, units)| {
            let listing = json!({"name": sku, "price_cents": price_of(sku),
                "currency": "USD", "units": units});
            (sku.clone(), listing)
        })
        .collect();
    Value::Object(listings)
}

/// The inventory for `orders` orders: the plentiful SKUs never run out; the scarce one has
/// stock for about one in six of the orders asking for it.
#[must_use]
pub fn inventory(orders: usize) -> BTreeMap<String, i64> {
    let plenty = i64::try_from(orders).unwrap_or(i64::MAX / 8) * 4 + 100;
    let scarce = i64::try_from(orders / 40).unwrap_or(0) + 3;
    BTreeMap::from([
        (PLENTY_A.to_owned(), plenty),
        (PLENTY_B.to_owned(), plenty),
        (SCARCE.to_owned(), scarce),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_has_every_kind_and_plenty_never_runs_out() {
        let planned = orders(2_000, &mut Rng::new(3));
        for kind in [
            Kind::Approve,
            Kind::Decline,
            Kind::Transient,
            Kind::Shortage,
        ] {
            assert!(planned.iter().filter(|o| o.kind == kind).count() > 100);
        }
        let stock = inventory(planned.len());
        for sku in [PLENTY_A, PLENTY_B] {
            let wanted: u32 = planned
                .iter()
                .flat_map(|o| &o.lines)
                .filter(|l| l.sku == sku)
                .map(|l| l.quantity)
                .sum();
            assert!(i64::from(wanted) < stock[sku]);
        }
        let scarce_orders = planned.iter().filter(|o| o.kind == Kind::Shortage).count();
        assert!(stock[SCARCE] < i64::try_from(scarce_orders).unwrap());
    }

    #[test]
    fn the_body_is_stable_and_totals_add_up() {
        let order = PlannedOrder {
            index: 4,
            kind: Kind::Shortage,
            lines: vec![
                Line {
                    sku: PLENTY_A,
                    quantity: 2,
                    unit_price_cents: 100,
                },
                Line {
                    sku: SCARCE,
                    quantity: 1,
                    unit_price_cents: 999,
                },
            ],
            token: APPROVE,
        };
        assert_eq!(order.total_cents(), 1199);
        assert_eq!(order.body(), order.body());
        assert_eq!(order.idempotency_key(9), "soak-9-4");
        assert!(Kind::Shortage.accepts("cancelled", Some("out_of_stock")));
        assert!(!Kind::Approve.accepts("cancelled", Some("out_of_stock")));
        assert!(!Kind::Decline.accepts("cancelled", Some("out_of_stock")));
    }
}
