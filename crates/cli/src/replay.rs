//! Replaying dead letters into the queue they failed in, without losing one: the copy is
//! confirmed before the dead letter is acked, and a failed copy leaves the dead letter in place.

use crate::dead_letters::{self, requeue_all};
use crate::queues::DeadLetterQueue;
use crate::target::{Session, Target};
use anyhow::bail;
use broker::Publisher;
use broker::copies;
use broker::lapin::message::Delivery;
use broker::lapin::options::{BasicAckOptions, BasicNackOptions};

/// Which dead letters to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// The first `n` (all when `None`).
    First(Option<u32>),
    /// Only the one with this `message_id`.
    MessageId(String),
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
    let copy = copies::replay(&delivery.data, &delivery.properties, &dlq.source);
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
