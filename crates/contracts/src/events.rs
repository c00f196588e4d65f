//! The saga's events. Unknown JSON fields are ignored (tolerant reader: producers may add fields
//! without breaking consumers); missing or mistyped fields make a message malformed.

use crate::names::{ORDER_PAID_EXCHANGE, ORDERS_EXCHANGE};
use broker::Event;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// One order line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineItem {
    /// Stock keeping unit.
    pub sku: String,
    /// Units ordered (≥ 1).
    pub quantity: u32,
    /// Price of one unit in cents.
    pub unit_price_cents: u64,
}

/// `order.created` on `orders`: a customer placed an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCreated {
    /// The order.
    pub order_id: Uuid,
    /// Who ordered.
    pub customer_id: String,
    /// What.
    pub items: Vec<LineItem>,
    /// Sum of the lines.
    pub total_cents: u64,
    /// ISO 4217 code.
    pub currency: String,
    /// Card token for the payment provider; absent approves.
    #[serde(default)]
    pub payment_token: Option<String>,
    /// When it was placed.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// `order.paid` on the `order.paid` fanout: the customer was charged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPaid {
    /// The order.
    pub order_id: Uuid,
    /// The charge.
    pub payment_id: Uuid,
    /// Amount charged.
    pub amount_cents: u64,
    /// ISO 4217 code.
    pub currency: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub paid_at: OffsetDateTime,
}

/// `payment.failed` on `orders`: the provider declined the payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentFailed {
    /// The order.
    pub order_id: Uuid,
    /// Why, e.g. `card_declined`.
    pub reason: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub failed_at: OffsetDateTime,
}

/// `stock.reserved` on `orders`: every line is held for the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockReserved {
    /// The order.
    pub order_id: Uuid,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub reserved_at: OffsetDateTime,
}

/// `stock.rejected` on `orders`: at least one line cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockRejected {
    /// The order.
    pub order_id: Uuid,
    /// Why: `out_of_stock`.
    pub reason: String,
    /// The SKUs short of stock (or unknown).
    pub skus: Vec<String>,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub rejected_at: OffsetDateTime,
}

/// `order.cancelled` on `orders`: the order will not complete; compensate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancelled {
    /// The order.
    pub order_id: Uuid,
    /// Why: `payment_declined`, `out_of_stock`.
    pub reason: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub cancelled_at: OffsetDateTime,
}

/// `payment.refunded` on `orders`: a charge was returned to the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRefunded {
    /// The order.
    pub order_id: Uuid,
    /// The refunded charge.
    pub payment_id: Uuid,
    /// Amount refunded.
    pub amount_cents: u64,
    /// ISO 4217 code.
    pub currency: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub refunded_at: OffsetDateTime,
}

macro_rules! event {
    ($ty:ty, $name:literal, $exchange:expr, $key:literal) => {
        impl Event for $ty {
            const TYPE: &'static str = $name;
            const EXCHANGE: &'static str = $exchange;
            const ROUTING_KEY: &'static str = $key;
            fn correlation_id(&self) -> String {
                self.order_id.to_string()
            }
        }
    };
}

event!(
    OrderCreated,
    "order.created",
    ORDERS_EXCHANGE,
    "order.created"
);
event!(OrderPaid, "order.paid", ORDER_PAID_EXCHANGE, "");
event!(
    PaymentFailed,
    "payment.failed",
    ORDERS_EXCHANGE,
    "payment.failed"
);
event!(
    StockReserved,
    "stock.reserved",
    ORDERS_EXCHANGE,
    "stock.reserved"
);
event!(
    StockRejected,
    "stock.rejected",
    ORDERS_EXCHANGE,
    "stock.rejected"
);
event!(
    OrderCancelled,
    "order.cancelled",
    ORDERS_EXCHANGE,
    "order.cancelled"
);
event!(
    PaymentRefunded,
    "payment.refunded",
    ORDERS_EXCHANGE,
    "payment.refunded"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_created_reads_the_design_example() {
        let json = r#"{"order_id":"5f0c6a9e-3b1d-4c4e-9a57-1e2f3a4b5c6d","customer_id":"c-42","items":[{"sku":"SKU-1","quantity":2,"unit_price_cents":1250}],
 "total_cents":2500,"currency":"USD","payment_token":"tok_visa","created_at":"2026-11-22T10:00:00Z"}"#;
        let order: OrderCreated = serde_json::from_str(json).unwrap();
        assert_eq!(order.items[0].quantity, 2);
        assert_eq!(order.payment_token.as_deref(), Some("tok_visa"));
        let back = serde_json::to_value(&order).unwrap();
        assert_eq!(back["created_at"], "2026-11-22T10:00:00Z");
    }

    #[test]
    fn wrong_types_do_not_decode() {
        let json = r#"{"order_id":"5f0c6a9e-3b1d-4c4e-9a57-1e2f3a4b5c6d","customer_id":"c","items":[{"sku":"S","quantity":-1,"unit_price_cents":1}],"total_cents":1,"currency":"USD","created_at":"2026-11-22T10:00:00Z"}"#;
        assert!(serde_json::from_str::<OrderCreated>(json).is_err());
    }
}
