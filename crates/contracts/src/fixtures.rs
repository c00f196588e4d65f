//! For tests (feature `test-util`): valid saga events, and reading back a published one after
//! checking it went out as [`crate::publish`] sends it.

use crate::{LineItem, OrderCancelled, OrderCreated, OrderPaid, ids};
use broker::{Event, Outgoing, RecordingPublisher};
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
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
        created_at: OffsetDateTime::now_utc(),
    }
}

/// An `order.paid` for `order_id`: 100 EUR cents under a fresh payment id.
#[must_use]
pub fn order_paid(order_id: Uuid) -> OrderPaid {
    OrderPaid {
        order_id,
        payment_id: Uuid::new_v4(),
        amount_cents: UNIT_PRICE_CENTS,
        currency: "EUR".to_owned(),
        paid_at: OffsetDateTime::now_utc(),
    }
}

/// An `order.cancelled` for `order_id` because of `reason`.
#[must_use]
pub fn order_cancelled(order_id: Uuid, reason: &str) -> OrderCancelled {
    OrderCancelled {
        order_id,
        reason: reason.to_owned(),
        cancelled_at: OffsetDateTime::now_utc(),
    }
}

/// The one event `publisher` published, checked as [`published`] checks it.
///
/// # Panics
/// When it published none or several, or the one fails the checks.
#[must_use]
pub fn only_published<E: Event + DeserializeOwned>(publisher: &RecordingPublisher) -> E {
    let sent = publisher.published();
    assert_eq!(sent.len(), 1, "one publish, not {}", sent.len());
    published(&sent[0])
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
