//! Replaying dead letters into the queue they failed in, without losing one: the copy is
//! confirmed before the dead letter is acked, and a failed copy leaves the dead letter in place.

use crate::dead_letters::{self, requeue_all};
use crate::queues::DeadLetterQueue;
use crate::target::{Session, Target};
use anyhow::bail;
use broker::headers;
use broker::lapin::BasicProperties;
use broker::lapin::message::Delivery;
use broker::lapin::options::{BasicAckOptions, BasicNackOptions};
use broker::lapin::types::FieldTable;
use broker::{Outgoing, Publisher};

/// Which dead letters to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// The first `n` (all when `None`).
    First(Option<u32>),
    /// Only the one with this `message_id`.
    MessageId(String),
}

/// The headers a replayed copy loses: the broker's own (`x-` prefix) and the failure record.
const DROPPED: [&str; 3] = [headers::ERROR, headers::ERROR_KIND, headers::FAILED_AT];

/// The copy of a dead letter that goes back to its source queue: same body and properties,
/// published to the default exchange with the `source-queue` header (else `dlq.source`) as
/// routing key, so a fanout event is not re-broadcast to subscribers that handled it already.
///
/// Headers: every `x-` header and `error`, `error-kind`, `failed-at` are dropped, `retry-count`
/// starts again at 0 and `replay-count` goes up by one; everything else is kept.
#[must_use]
pub fn replay_copy(body: &[u8], properties: &BasicProperties, dlq: &DeadLetterQueue) -> Outgoing {
    let original = properties.headers().as_ref();
    let target = headers::text(original, headers::SOURCE_QUEUE)
        .filter(|queue| !queue.is_empty())
        .unwrap_or_else(|| dlq.source.clone());
    let replays = headers::integer(original, headers::REPLAY_COUNT).unwrap_or(0);
    let mut table = FieldTable::default();
    for (name, value) in original.into_iter().flat_map(FieldTable::inner) {
        if !name.as_str().starts_with("x-") && !DROPPED.contains(&name.as_str()) {
            table.insert(name.clone(), value.clone());
        }
    }
    headers::set_integer(&mut table, headers::RETRY_COUNT, 0);
    headers::set_integer(
        &mut table,
        headers::REPLAY_COUNT,
        u32::try_from(replays.saturating_add(1)).unwrap_or(u32::MAX),
    );
    Outgoing {
        exchange: String::new(),
        routing_key: target,
        body: body.to_vec(),
        properties: properties.clone().with_headers(table),
    }
}

/// What a replay did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    /// Dead letters moved back (published, confirmed, then removed from the DLQ).
    pub count: u32,
    /// Dead letters in the DLQ when the replay started.
    pub found: u32,
}

/// Replays the selected dead letters of `dlq`.
///
/// Only the messages present at the start are considered, so a message that fails again at once
/// and returns to the DLQ is not replayed in a loop. With [`Selection::MessageId`] the others
/// are held unacked while scanning, then handed back.
///
/// # Errors
/// When the DLQ does not exist, the message id is not found, or a copy cannot be stored (that
/// dead letter and every held one stay in the DLQ).
pub async fn replay(
    target: &Target,
    dlq: &DeadLetterQueue,
    selection: &Selection,
) -> anyhow::Result<Replayed> {
    let mut session = Session::open(target).await?;
    let found = dead_letters::existing_count(&mut session, target, dlq).await?;
    let publisher = target.publisher()?;
    let mut held: Vec<Delivery> = Vec::new();
    let result = run(&session, &publisher, dlq, selection, found, &mut held).await;
    requeue_all(&held).await;
    publisher.close().await;
    session.close().await;
    let count = result?;
    if let Selection::MessageId(id) = selection
        && count == 0
    {
        bail!(
            "no dead letter with message id '{id}' among the {found} in '{}'; nothing replayed",
            dlq.name
        );
    }
    Ok(Replayed { count, found })
}

async fn run(
    session: &Session,
    publisher: &Publisher,
    dlq: &DeadLetterQueue,
    selection: &Selection,
    found: u32,
    held: &mut Vec<Delivery>,
) -> anyhow::Result<u32> {
    let budget = match selection {
        Selection::First(Some(limit)) => (*limit).min(found),
        Selection::First(None) | Selection::MessageId(_) => found,
    };
    let mut replayed = 0;
    for _ in 0..budget {
        let Some(delivery) = crate::dead_letters::take(session, dlq).await? else {
            break;
        };
        let id = delivery
            .properties
            .message_id()
            .as_ref()
            .map(|id| id.as_str().to_owned());
        if let Selection::MessageId(wanted) = selection
            && id.as_deref() != Some(wanted.as_str())
        {
            held.push(delivery);
            continue;
        }
        move_back(publisher, dlq, &delivery, id.as_deref()).await?;
        replayed += 1;
        if matches!(selection, Selection::MessageId(_)) {
            break;
        }
    }
    Ok(replayed)
}

/// Publishes the copy and waits for its confirm, then acks the dead letter; on failure the
/// dead letter is nacked back into the DLQ.
async fn move_back(
    publisher: &Publisher,
    dlq: &DeadLetterQueue,
    delivery: &Delivery,
    id: Option<&str>,
) -> anyhow::Result<()> {
    let copy = replay_copy(&delivery.data, &delivery.properties, dlq);
    let id = id.unwrap_or("(no message id)");
    if let Err(err) = publisher.publish(&copy).await {
        let requeue = BasicNackOptions {
            multiple: false,
            requeue: true,
        };
        let _ = delivery.acker.nack(requeue).await;
        bail!(
            "could not replay message {id} to queue '{}': {err}; it stays in '{}'",
            copy.routing_key,
            dlq.name
        );
    }
    match delivery.acker.ack(BasicAckOptions::default()).await {
        Ok(true) => Ok(()),
        Ok(false) | Err(_) => bail!(
            "message {id} was replayed to '{}' but could not be removed from '{}' (connection \
             lost); it will show up there again: its consumers are idempotent, so it can be purged",
            copy.routing_key,
            dlq.name
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use broker::lapin::types::{AMQPValue, LongString};

    fn dlq() -> DeadLetterQueue {
        DeadLetterQueue::parse("stock.order-paid").unwrap()
    }

    fn dead_letter(extra: &[(&str, AMQPValue)]) -> BasicProperties {
        let mut table = broker::message::text_headers(&[
            (headers::ERROR, "boom"),
            (headers::ERROR_KIND, "retries-exhausted"),
            (headers::FAILED_AT, "2026-11-22T10:00:00Z"),
            (headers::ORIGINAL_EXCHANGE, "order.paid"),
            (headers::ORIGINAL_ROUTING_KEY, ""),
            (headers::TRACEPARENT, "00-abc-def-01"),
        ]);
        headers::set_integer(&mut table, headers::RETRY_COUNT, 5);
        for (name, value) in extra {
            table.insert((*name).into(), value.clone());
        }
        BasicProperties::default()
            .with_message_id("m-1".into())
            .with_correlation_id("order-1".into())
            .with_type("order.paid".into())
            .with_headers(table)
    }

    #[test]
    fn the_copy_goes_to_the_source_queue_with_a_clean_failure_record() {
        let props = dead_letter(&[
            (
                headers::SOURCE_QUEUE,
                AMQPValue::LongString(LongString::from("stock.order-paid")),
            ),
            ("x-death", AMQPValue::Boolean(true)),
            ("x-first-death-reason", AMQPValue::Boolean(true)),
        ]);
        let copy = replay_copy(b"{\"a\":1}", &props, &dlq());
        assert_eq!(
            copy.exchange, "",
            "never through the original (fanout) exchange"
        );
        assert_eq!(copy.routing_key, "stock.order-paid");
        assert_eq!(copy.body, b"{\"a\":1}");
        assert_eq!(copy.message_id(), Some("m-1"));
        assert_eq!(
            copy.properties
                .correlation_id()
                .as_ref()
                .map(|c| c.as_str()),
            Some("order-1")
        );
        let h = copy.properties.headers().clone().unwrap();
        for gone in [
            "x-death",
            "x-first-death-reason",
            "error",
            "error-kind",
            "failed-at",
        ] {
            assert!(!h.contains_key(gone), "{gone} must be dropped");
        }
        assert_eq!(headers::integer(Some(&h), headers::RETRY_COUNT), Some(0));
        assert_eq!(headers::integer(Some(&h), headers::REPLAY_COUNT), Some(1));
        for kept in [
            headers::ORIGINAL_EXCHANGE,
            headers::ORIGINAL_ROUTING_KEY,
            headers::SOURCE_QUEUE,
            headers::TRACEPARENT,
        ] {
            assert!(h.contains_key(kept), "{kept} must be kept");
        }
    }

    #[test]
    fn replay_count_goes_up_and_the_dlq_name_is_the_fallback_target() {
        let props = dead_letter(&[(headers::REPLAY_COUNT, AMQPValue::LongLongInt(2))]);
        let copy = replay_copy(b"x", &props, &dlq());
        assert_eq!(copy.routing_key, "stock.order-paid");
        let h = copy.properties.headers().clone().unwrap();
        assert_eq!(headers::integer(Some(&h), headers::REPLAY_COUNT), Some(3));
    }
}
