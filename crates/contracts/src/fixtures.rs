//! For tests (feature `test-util`): a valid `order.created`, and reading back a published saga
//! event after checking it went out as [`crate::publish`] sends it.

use crate::{LineItem, OrderCreated, ids};
use broker::{Event, Outgoing};
use serde::de::DeserializeOwned;
use uuid::Uuid;

/// Price of every fixture unit.
pub const UNIT_PRICE_CENTS: u64 = 100;

/// A valid `order.created` for `order_id`: `lines` of (SKU, units) at [`UNIT_PRICE_CENTS`], in
/// EUR, paid with `payment_token`.
#[must_use]
pub fn order_created(
    order_id: Uuid,
    lines: &[(&str, u32)],
    payment_token: Option<&str>,
) -> OrderCreated {
    let items: Vec<LineItem> = lines
        .iter()
        .map(|(sku, quantity)| LineItem {
            sku: (*sku).to_owned(),
            quantity: *quantity,
            unit_price_cents: UNIT_PRICE_CENTS,
        })
        .collect();
    OrderCreated {
        order_id,
        customer_id: "c-1".to_owned(),
        total_cents: items
            .iter()
            .map(|item| u64::from(item.quantity) * item.unit_price_cents)
            .sum(),
        items,
        currency: "EUR".to_owned(),
        payment_token: payment_token.map(str::to_owned),
        created_at: time::OffsetDateTime::now_utc(),
    }
}

/// The `E` that `message` carries, once checked to go where `E` goes, with `E`'s type, its order
/// as the correlation id and the deterministic message id of that fact.
///
/// # Panics
/// When any of these differs or the body is not an `E`.
#[must_use]
pub fn published<E: Event + DeserializeOwned>(message: &Outgoing) -> E {
    assert_eq!(message.event_type(), Some(E::TYPE), "event type");
    assert_eq!(
        (message.exchange.as_str(), message.routing_key.as_str()),
        (E::EXCHANGE, E::ROUTING_KEY),
        "where {} goes",
        E::TYPE
    );
    let event: E = serde_json::from_slice(&message.body)
        .unwrap_or_else(|err| panic!("the body is no {}: {err}", E::TYPE));
    let order = event.correlation_id();
    assert_eq!(
        message.correlation_id(),
        Some(order.as_str()),
        "correlation id"
    );
    assert_eq!(
        message.message_id(),
        Some(ids::message_id(E::TYPE, &order).as_str()),
        "the deterministic message id of {} for {order}",
        E::TYPE
    );
    event
}
