//! Settling a delivery: publish its retry or dead-letter copy, wait for the confirm, then ack;
//! when the copy could not be stored, back off, then return the original with `basic.reject`.

use crate::acks::Acks;
use crate::headers::{self, DeadLetterReason};
use crate::message::Outgoing;
use crate::publisher::Publisher;
use crate::retry::Decision;
use crate::topology::{DEAD_LETTER_EXCHANGE, retry_queue};
use lapin::message::Delivery;
use lapin::types::FieldTable;
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_util::sync::CancellationToken;

/// Carries out `decision` for `delivery` from consumer queue `queue`; its ack goes through `acks`.
/// A cancelled `cancel` leaves the delivery unsettled (the broker returns it on channel close).
pub(crate) async fn settle(
    publisher: &Publisher,
    acks: &Acks,
    delivery: &Delivery,
    queue: &str,
    decision: Decision,
    error: Option<&str>,
    cancel: &CancellationToken,
) {
    let copy = match decision {
        Decision::Ack => None,
        Decision::GiveBack => {
            acks.give_back(delivery.delivery_tag).await;
            return;
        }
        Decision::Retry { tier } => Some(retry_copy(delivery, queue, tier, error)),
        Decision::DeadLetter(reason) => Some(dead_letter_copy(delivery, queue, reason, error)),
    };
    if let Some(copy) = copy
        && let Err(err) = publisher.publish(&copy).await
    {
        let delay = return_delay(delivery_count(delivery));
        tracing::error!(error = %err, target_queue = %copy.routing_key, ?delay, "could not store the retry or dead-letter copy; returning the original after a pause");
        // A brief refusal must not spend the delivery limit in milliseconds.
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        acks.reject_requeue(delivery.delivery_tag).await;
        return;
    }
    acks.ack(delivery.delivery_tag).await;
}

/// How often the broker has delivered this message before (quorum queues' `x-delivery-count`).
fn delivery_count(delivery: &Delivery) -> u32 {
    headers::integer(
        delivery.properties.headers().as_ref(),
        headers::DELIVERY_COUNT,
    )
    .and_then(|n| u32::try_from(n).ok())
    .unwrap_or(0)
}

/// The pause before returning a delivery whose copy could not be stored for the `count`-th
/// time: 250 ms doubling to 30 s, so the delivery limit (10 by default) is reached only after
/// minutes of refusals.
fn return_delay(count: u32) -> Duration {
    let millis = 250u64.saturating_mul(1 << count.min(7));
    Duration::from_millis(millis.min(30_000))
}

/// The copy that waits in retry tier `tier` and then returns to `queue`.
pub(crate) fn retry_copy(
    delivery: &Delivery,
    queue: &str,
    tier: u32,
    error: Option<&str>,
) -> Outgoing {
    let mut table = forwarded_headers(delivery, queue, error);
    headers::set_integer(&mut table, headers::RETRY_COUNT, tier);
    copy(delivery, "", &retry_queue(queue, tier), table)
}

/// The copy that goes to `queue`'s dead-letter queue, saying why.
pub(crate) fn dead_letter_copy(
    delivery: &Delivery,
    queue: &str,
    reason: DeadLetterReason,
    error: Option<&str>,
) -> Outgoing {
    let mut table = forwarded_headers(delivery, queue, error);
    headers::set_integer(
        &mut table,
        headers::RETRY_COUNT,
        headers::retry_count(&delivery.properties),
    );
    headers::set_text(&mut table, headers::ERROR_KIND, reason.as_str());
    let now = OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default();
    headers::set_text(&mut table, headers::FAILED_AT, &now);
    copy(delivery, DEAD_LETTER_EXCHANGE, queue, table)
}

fn copy(delivery: &Delivery, exchange: &str, routing_key: &str, table: FieldTable) -> Outgoing {
    Outgoing {
        exchange: exchange.to_owned(),
        routing_key: routing_key.to_owned(),
        body: delivery.data.clone(),
        properties: delivery.properties.clone().with_headers(table),
    }
}

/// The original headers without the broker's `x-` ones, plus where the message came from and
/// what went wrong.
fn forwarded_headers(delivery: &Delivery, queue: &str, error: Option<&str>) -> FieldTable {
    let original = delivery.properties.headers().as_ref();
    let mut table = FieldTable::default();
    if let Some(original) = original {
        for (name, value) in original {
            if !name.as_str().starts_with("x-") {
                table.insert(name.clone(), value.clone());
            }
        }
    }
    let exchange = headers::text(original, headers::ORIGINAL_EXCHANGE)
        .unwrap_or_else(|| delivery.exchange.to_string());
    let routing_key = headers::text(original, headers::ORIGINAL_ROUTING_KEY)
        .unwrap_or_else(|| delivery.routing_key.to_string());
    headers::set_text(&mut table, headers::ORIGINAL_EXCHANGE, &exchange);
    headers::set_text(&mut table, headers::ORIGINAL_ROUTING_KEY, &routing_key);
    headers::set_text(&mut table, headers::SOURCE_QUEUE, queue);
    if let Some(error) = error {
        headers::set_text(&mut table, headers::ERROR, &headers::one_line(error));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_of_an_unstorable_copy_back_off() {
        let millis: Vec<u128> = [0, 1, 2, 6, 7, 20]
            .into_iter()
            .map(|n| return_delay(n).as_millis())
            .collect();
        assert_eq!(millis, [250, 500, 1000, 16_000, 30_000, 30_000]);
    }
    use lapin::BasicProperties;
    use lapin::types::AMQPValue;

    fn delivery(exchange: &str, routing_key: &str, headers: FieldTable) -> Delivery {
        let mut delivery = Delivery::mock(
            1,
            exchange.into(),
            routing_key.into(),
            false,
            b"{\"a\":1}".to_vec(),
        );
        delivery.properties = BasicProperties::default()
            .with_message_id("m-1".into())
            .with_headers(headers);
        delivery
    }

    #[test]
    fn first_retry_records_the_origin_and_drops_broker_headers() {
        let mut original = FieldTable::default();
        original.insert("x-death".into(), AMQPValue::Boolean(true));
        original.insert("traceparent".into(), AMQPValue::LongString("00-abc".into()));
        let d = delivery("orders", "order.created", original);
        let copy = retry_copy(&d, "payment.order-created", 1, Some("boom\nagain"));
        assert_eq!(copy.exchange, "");
        assert_eq!(copy.routing_key, "payment.order-created.retry.1");
        assert_eq!(copy.body, d.data);
        let h = copy.properties.headers().clone().unwrap();
        assert!(!h.contains_key("x-death"));
        assert_eq!(
            headers::text(Some(&h), "traceparent").as_deref(),
            Some("00-abc")
        );
        assert_eq!(headers::integer(Some(&h), headers::RETRY_COUNT), Some(1));
        assert_eq!(
            headers::text(Some(&h), headers::ERROR).as_deref(),
            Some("boom again")
        );
        assert_eq!(
            headers::text(Some(&h), headers::ORIGINAL_EXCHANGE).as_deref(),
            Some("orders")
        );
        assert_eq!(
            headers::text(Some(&h), headers::ORIGINAL_ROUTING_KEY).as_deref(),
            Some("order.created")
        );
        assert_eq!(
            headers::text(Some(&h), headers::SOURCE_QUEUE).as_deref(),
            Some("payment.order-created")
        );
        assert_eq!(copy.message_id(), Some("m-1"));
    }

    #[test]
    fn a_returning_retry_keeps_the_first_origin() {
        let mut original = FieldTable::default();
        headers::set_text(&mut original, headers::ORIGINAL_EXCHANGE, "order.paid");
        headers::set_text(&mut original, headers::ORIGINAL_ROUTING_KEY, "");
        headers::set_integer(&mut original, headers::RETRY_COUNT, 2);
        // After a tier expires, the broker delivers through the default exchange with key = queue.
        let d = delivery("", "stock.order-paid", original);
        let dead = dead_letter_copy(
            &d,
            "stock.order-paid",
            DeadLetterReason::RetriesExhausted,
            Some("x"),
        );
        assert_eq!(dead.exchange, DEAD_LETTER_EXCHANGE);
        assert_eq!(dead.routing_key, "stock.order-paid");
        let h = dead.properties.headers().clone().unwrap();
        assert_eq!(
            headers::text(Some(&h), headers::ORIGINAL_EXCHANGE).as_deref(),
            Some("order.paid")
        );
        assert_eq!(
            headers::text(Some(&h), headers::ORIGINAL_ROUTING_KEY).as_deref(),
            Some("")
        );
        assert_eq!(headers::integer(Some(&h), headers::RETRY_COUNT), Some(2));
        assert_eq!(
            headers::text(Some(&h), headers::ERROR_KIND).as_deref(),
            Some("retries-exhausted")
        );
        let failed_at = headers::text(Some(&h), headers::FAILED_AT).unwrap();
        assert!(
            OffsetDateTime::parse(&failed_at, &Rfc3339).is_ok(),
            "{failed_at}"
        );
    }
}
