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

/// Currencies orderflow accepts (ISO 4217).
pub const CURRENCIES: [&str; 10] = [
    "USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "SEK", "NOK", "DKK",
];
/// Most lines in one order.
pub const MAX_ITEMS: usize = 100;
/// Most units of one line.
pub const MAX_QUANTITY: u32 = 10_000;
/// Highest unit price in cents (one million in the currency's major unit). With the limits
/// above, every total fits the stores' signed 64-bit columns.
pub const MAX_UNIT_PRICE_CENTS: u64 = 100_000_000;

/// A field of an order that breaks the contract, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidField {
    /// Path of the field, e.g. `items[0].quantity`.
    pub field: String,
    /// What is wrong, in words a client can act on.
    pub message: String,
}

impl InvalidField {
    /// `field` is at fault: `message` says why.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for InvalidField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for InvalidField {}

impl InvalidField {
    /// The error type of an `order.created` rejected for breaking the contract.
    pub const ERROR_TYPE: &'static str = "invalid-order";

    /// The rejection every consumer returns for an `order.created` that breaks the contract
    /// (one error type, so those dead letters group together across the workers' DLQs).
    #[must_use]
    pub fn into_rejection(self) -> broker::HandlerError {
        broker::HandlerError::reject(format!("invalid order.created: {self}"))
            .with_type(Self::ERROR_TYPE)
    }
}

fn check_text(field: &str, value: &str, max: usize) -> Result<(), InvalidField> {
    if value.trim().is_empty() {
        return Err(InvalidField::new(
            field,
            format!("{field} must not be empty"),
        ));
    }
    if value.chars().count() > max {
        return Err(InvalidField::new(
            field,
            format!("{field} is longer than {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(InvalidField::new(
            field,
            format!("{field} contains control characters"),
        ));
    }
    Ok(())
}

/// Checks what every order must satisfy, whether it came through the API or was published by
/// another system, and returns the sum of its lines. One check for every consumer, so an order
/// one worker refuses is refused by all of them.
///
/// # Errors
/// The first field that breaks the contract.
pub fn check_order(
    customer_id: &str,
    items: &[LineItem],
    currency: &str,
    payment_token: Option<&str>,
) -> Result<u64, InvalidField> {
    check_text("customer_id", customer_id, 64)?;
    if items.is_empty() {
        return Err(InvalidField::new(
            "items",
            "an order needs at least one item",
        ));
    }
    if items.len() > MAX_ITEMS {
        return Err(InvalidField::new(
            "items",
            format!("at most {MAX_ITEMS} items per order"),
        ));
    }
    let mut total: u64 = 0;
    for (i, item) in items.iter().enumerate() {
        let at = |name: &str| format!("items[{i}].{name}");
        check_text(&at("sku"), &item.sku, 64)?;
        if !item
            .sku
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(InvalidField::new(
                at("sku"),
                "sku may hold letters, digits, '-' and '_' only",
            ));
        }
        if item.quantity == 0 || item.quantity > MAX_QUANTITY {
            return Err(InvalidField::new(
                at("quantity"),
                format!("quantity must be 1 to {MAX_QUANTITY}"),
            ));
        }
        if item.unit_price_cents > MAX_UNIT_PRICE_CENTS {
            return Err(InvalidField::new(
                at("unit_price_cents"),
                format!("unit_price_cents must be at most {MAX_UNIT_PRICE_CENTS}"),
            ));
        }
        // Bounded by the limits above: at most 10^14.
        total += u64::from(item.quantity) * item.unit_price_cents;
    }
    if !CURRENCIES.contains(&currency) {
        return Err(InvalidField::new(
            "currency",
            format!(
                "unknown currency '{currency}': use one of {}",
                CURRENCIES.join(", ")
            ),
        ));
    }
    if let Some(token) = payment_token {
        check_text("payment_token", token, 64)?;
    }
    Ok(total)
}

impl OrderCreated {
    /// A new order with a fresh id, `total_cents` summed from `items` and `created_at` now,
    /// checked against the contract as `POST /orders` checks a request.
    ///
    /// # Errors
    /// The first field that breaks the contract.
    pub fn new(
        customer_id: &str,
        items: Vec<LineItem>,
        currency: &str,
        payment_token: Option<String>,
    ) -> Result<Self, InvalidField> {
        let total_cents = check_order(customer_id, &items, currency, payment_token.as_deref())?;
        Ok(Self {
            order_id: Uuid::new_v4(),
            customer_id: customer_id.to_owned(),
            items,
            total_cents,
            currency: currency.to_owned(),
            payment_token,
            created_at: OffsetDateTime::now_utc(),
        })
    }

    /// Checks the order against the contract, as `POST /orders` checks a request (see
    /// [`check_order`]), and that `total_cents` is the sum of its lines. Consumers reject an
    /// event that fails (it goes to their DLQ): nothing is charged or reserved for it.
    ///
    /// # Errors
    /// The first field that breaks the contract.
    pub fn validate(&self) -> Result<(), InvalidField> {
        let total = check_order(
            &self.customer_id,
            &self.items,
            &self.currency,
            self.payment_token.as_deref(),
        )?;
        if self.total_cents != total {
            return Err(InvalidField::new(
                "total_cents",
                format!(
                    "total_cents {} is not the sum of the lines ({total})",
                    self.total_cents
                ),
            ));
        }
        Ok(())
    }
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

/// Checks a body as the consumers of `event_type` would read it: it must be JSON, decode as
/// that event when the type is one of the saga's, and, for an `order.created`, keep the
/// contract ([`OrderCreated::validate`]). Returns whether the type was known (an unknown one is
/// checked as JSON only).
///
/// # Errors
/// What is wrong, naming the field where the decoder or the contract can.
pub fn check_body(event_type: Option<&str>, body: &[u8]) -> Result<bool, String> {
    fn decode<E: serde::de::DeserializeOwned + Event>(body: &[u8]) -> Result<E, String> {
        let name = std::any::type_name::<E>()
            .rsplit("::")
            .next()
            .unwrap_or(E::TYPE);
        serde_json::from_slice(body).map_err(|err| format!("not a valid {name}: {err}"))
    }
    fn decodes<E: serde::de::DeserializeOwned + Event>(body: &[u8]) -> Result<(), String> {
        decode::<E>(body).map(|_| ())
    }
    type Check = fn(&[u8]) -> Result<(), String>;
    let checks: [(&str, Check); 7] = [
        (OrderCreated::TYPE, |body| {
            decode::<OrderCreated>(body)?
                .validate()
                .map_err(|invalid| format!("breaks the order.created contract: {invalid}"))
        }),
        (OrderPaid::TYPE, decodes::<OrderPaid>),
        (PaymentFailed::TYPE, decodes::<PaymentFailed>),
        (StockReserved::TYPE, decodes::<StockReserved>),
        (StockRejected::TYPE, decodes::<StockRejected>),
        (OrderCancelled::TYPE, decodes::<OrderCancelled>),
        (PaymentRefunded::TYPE, decodes::<PaymentRefunded>),
    ];
    serde_json::from_slice::<serde::de::IgnoredAny>(body)
        .map_err(|err| format!("not valid JSON: {err}"))?;
    match checks.iter().find(|(name, _)| Some(*name) == event_type) {
        Some((_, check)) => check(body).map(|()| true),
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_checked_as_their_event_and_its_contract() {
        let order = serde_json::to_vec(&valid()).unwrap();
        assert_eq!(check_body(Some("order.created"), &order), Ok(true));
        assert_eq!(check_body(Some("something.else"), b"{\"a\":1}"), Ok(false));
        assert_eq!(check_body(None, b"[]"), Ok(false));
        let not_json = check_body(Some("order.created"), b"{\"order_id\":").unwrap_err();
        assert!(not_json.starts_with("not valid JSON"), "{not_json}");
        let paid = check_body(Some("order.paid"), &order).unwrap_err();
        assert!(paid.starts_with("not a valid OrderPaid"), "{paid}");
        let mut broken = valid();
        broken.total_cents += 1;
        let broken = serde_json::to_vec(&broken).unwrap();
        let contract = check_body(Some("order.created"), &broken).unwrap_err();
        assert!(contract.contains("total_cents"), "{contract}");
    }

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

    fn valid() -> OrderCreated {
        OrderCreated {
            order_id: Uuid::new_v4(),
            customer_id: "c-42".into(),
            items: vec![LineItem {
                sku: "SKU-1".into(),
                quantity: 2,
                unit_price_cents: 1250,
            }],
            total_cents: 2500,
            currency: "USD".into(),
            payment_token: None,
            created_at: OffsetDateTime::now_utc(),
        }
    }

    /// Breaks one field of a valid event.
    type Breakage = fn(&mut OrderCreated);

    #[test]
    fn a_new_order_sums_its_lines_and_refuses_what_the_api_refuses() {
        let line = |quantity, unit_price_cents| LineItem {
            sku: "SKU-1".into(),
            quantity,
            unit_price_cents,
        };
        let order =
            OrderCreated::new("c-1", vec![line(2, 1250), line(1, 99)], "USD", None).unwrap();
        assert_eq!(order.total_cents, 2599);
        assert!(order.validate().is_ok());
        let refused = OrderCreated::new("c-1", vec![line(0, 1250)], "USD", None).unwrap_err();
        assert_eq!(refused.field, "items[0].quantity");
        assert!(OrderCreated::new("c-1", vec![], "USD", None).is_err());
        assert!(OrderCreated::new("c-1", vec![line(1, 1)], "XXX", None).is_err());
    }

    #[test]
    fn an_order_created_that_breaks_the_contract_names_the_field() {
        assert_eq!(valid().validate(), Ok(()));
        let cases: Vec<(Breakage, &str)> = vec![
            (|o| o.total_cents = 2499, "total_cents"),
            (|o| o.total_cents = u64::MAX, "total_cents"),
            (
                |o| {
                    o.items.clear();
                    o.total_cents = 0;
                },
                "items",
            ),
            (
                |o| {
                    o.items[0].quantity = 0;
                    o.total_cents = 0;
                },
                "items[0].quantity",
            ),
            (|o| o.currency = "XXX".into(), "currency"),
            (|o| o.customer_id = String::new(), "customer_id"),
            (|o| o.items[0].sku = "a b".into(), "items[0].sku"),
        ];
        for (break_it, field) in cases {
            let mut event = valid();
            break_it(&mut event);
            let invalid = event.validate().unwrap_err();
            assert_eq!(invalid.field, field, "{invalid}");
        }
    }
}
