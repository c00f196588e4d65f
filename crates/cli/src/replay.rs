//! Replaying dead letters into the queue they failed in, without losing one: the copy is
//! confirmed before the dead letter is acked, and a failed copy leaves the dead letter in place.

use crate::filter::Filter;
use crate::queues::DeadLetterQueue;
use crate::scan::{Touched, touch};
use crate::target::Target;
use anyhow::bail;
use broker::copies;
use broker::{Naming, Publisher};
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions};

/// Replays the dead letters of `dlq` that `filter` selects, at most `limit` (one with a message
/// id); `dry_run` only reads.
///
/// Only the messages present at the start are considered, so a message that fails again at once
/// and returns to the DLQ is not replayed in a loop; at most [`crate::scan::WINDOW`] others are
/// held unacked at once.
///
/// # Errors
/// When the DLQ does not exist, the message id is not found (exit code 1), or a copy cannot be
/// stored (that dead letter and every unreplayed one stay in the DLQ).
pub async fn replay(
    target: &Target,
    dlq: &DeadLetterQueue,
    filter: &Filter,
    limit: Option<u32>,
    dry_run: bool,
) -> anyhow::Result<Touched> {
    let publisher = target.publisher()?;
    let replayed = touch(
        target,
        dlq,
        filter,
        limit,
        "nothing replayed",
        async |delivery, _| {
            if dry_run {
                return Ok(Some(delivery));
            }
            move_back(&publisher, dlq, &delivery, &delivery.data).await?;
            Ok(None)
        },
    )
    .await;
    publisher.close().await;
    replayed
}

/// Replays what `filter` selects from `only` or from every dead-letter queue of the vhost (a
/// failure group spans queues); one [`Touched`] per queue.
///
/// # Errors
/// As [`replay`]; queues before the failing one stay replayed.
pub async fn everywhere(
    target: &Target,
    only: Option<&DeadLetterQueue>,
    filter: &Filter,
    limit: Option<u32>,
    dry_run: bool,
) -> anyhow::Result<Vec<Touched>> {
    let queues = crate::dead_letters::these_or_all(target, only).await?;
    let mut touched = Vec::with_capacity(queues.len());
    for dlq in &queues {
        touched.push(replay(target, dlq, filter, limit, dry_run).await?);
    }
    Ok(touched)
}

/// Publishes the replay copy of `delivery` with `body` and waits for its confirm, then acks the
/// dead letter; on failure the dead letter is nacked back into the DLQ.
///
/// # Errors
/// When the copy is not confirmed, or the dead letter cannot be acked after it was.
pub async fn move_back(
    publisher: &Publisher,
    dlq: &DeadLetterQueue,
    delivery: &Delivery,
    body: &[u8],
) -> anyhow::Result<()> {
    let copy = copies::replay(body, &delivery.properties, &Naming::default(), &dlq.source);
    let id = delivery
        .properties
        .message_id()
        .as_ref()
        .map_or("(no message id)", |id| id.as_str());
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
             lost); it will show up there again: its consumers are idempotent, so it can be deleted",
            copy.routing_key,
            dlq.name
        ),
    }
}
