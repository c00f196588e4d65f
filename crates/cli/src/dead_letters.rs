//! Dead-letter queues: counting, listing, showing without removing, and purging.

use crate::management;
use crate::queues::DeadLetterQueue;
use crate::target::{Session, Target, is_not_found};
use anyhow::{Context, bail};
use broker::headers;
use broker::lapin::Queue;
use broker::lapin::message::Delivery;
use broker::lapin::options::{
    BasicGetOptions, BasicNackOptions, QueueDeclareOptions, QueuePurgeOptions,
};
use broker::lapin::types::FieldTable;

/// One dead letter as an operator reads it.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The dead-letter queue it sits in.
    pub queue: String,
    /// The publisher's `message_id`.
    pub message_id: Option<String>,
    /// The `correlation_id` (the order id).
    pub correlation_id: Option<String>,
    /// The `type` property (the event name).
    pub kind: Option<String>,
    /// The `app_id` of its publisher.
    pub app_id: Option<String>,
    /// The `timestamp` property (seconds since the epoch).
    pub timestamp: Option<u64>,
    /// Every header, the library's (`retry-count`, `error-kind`, ...) and the broker's (`x-death`).
    pub headers: FieldTable,
    /// For dead letters the broker made (e.g. the delivery limit): the latest `x-death` reason.
    pub death_reason: Option<String>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl DeadLetter {
    /// Reads a delivery taken from `queue`.
    #[must_use]
    pub fn from_delivery(queue: &str, delivery: &Delivery) -> Self {
        let props = &delivery.properties;
        let text = |value: &Option<broker::lapin::types::ShortString>| {
            value.as_ref().map(|v| v.as_str().to_owned())
        };
        let headers = props.headers().clone().unwrap_or_default();
        Self {
            queue: queue.to_owned(),
            message_id: text(props.message_id()),
            correlation_id: text(props.correlation_id()),
            kind: text(props.kind()),
            app_id: text(props.app_id()),
            timestamp: *props.timestamp(),
            death_reason: headers::death_reason(Some(&headers)),
            headers,
            body: delivery.data.clone(),
        }
    }
}

/// The number of ready messages in `queue`, or `None` when it does not exist.
///
/// Unlike the management API's sampled statistics, this is the broker's count right now.
///
/// # Errors
/// When the connection fails or the broker refuses for another reason.
pub async fn count(session: &mut Session, queue: &str) -> anyhow::Result<Option<u32>> {
    match passive_declare(session, queue).await {
        Ok(declared) => Ok(Some(declared.message_count())),
        Err(err) if is_not_found(&err) => {
            // A failed passive declare closes the channel.
            session.reopen().await?;
            Ok(None)
        }
        Err(err) => Err(err).with_context(|| format!("cannot inspect queue '{queue}'")),
    }
}

/// The number of ready messages in the existing dead-letter queue `dlq`.
///
/// # Errors
/// When the queue does not exist (saying so) or the connection fails.
pub async fn existing_count(
    session: &mut Session,
    target: &Target,
    dlq: &DeadLetterQueue,
) -> anyhow::Result<u32> {
    count(session, &dlq.name).await?.with_context(|| {
        format!(
            "there is no dead-letter queue '{}' in vhost '{}'",
            dlq.name, target.vhost
        )
    })
}

async fn passive_declare(session: &Session, queue: &str) -> Result<Queue, broker::lapin::Error> {
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    session
        .channel
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await
}

/// Every dead-letter queue in the vhost with its ready messages, sorted by name.
///
/// Names come from the management API, counts from the broker itself (exact, not sampled).
///
/// # Errors
/// When the management API or the broker cannot be reached.
pub async fn list(target: &Target) -> anyhow::Result<Vec<(String, u32)>> {
    let mut names: Vec<String> = management::queues(target)
        .await?
        .into_iter()
        .map(|q| q.name)
        .filter(|name| broker::topology::queue_of_dead_letter_queue(name).is_some())
        .collect();
    names.sort();
    let mut session = Session::open(target).await?;
    let mut counted = Vec::with_capacity(names.len());
    for name in names {
        // A queue deleted since it was listed is left out.
        if let Some(n) = count(&mut session, &name).await? {
            counted.push((name, n));
        }
    }
    session.close().await;
    Ok(counted)
}

/// Up to `limit` dead letters of `dlq`, left in the queue, and how many it holds.
///
/// They are taken with `basic.get` without acking (so each get returns the next one) and then
/// handed back with `basic.nack` + requeue, which does not count as a failed delivery. A quorum
/// queue puts messages handed back behind the others, so showing fewer than all of them can
/// change their order (never their number).
///
/// # Errors
/// When the queue does not exist or the connection fails (unacked messages then return to the
/// queue by themselves).
pub async fn peek(
    target: &Target,
    dlq: &DeadLetterQueue,
    limit: u32,
) -> anyhow::Result<(Vec<DeadLetter>, u32)> {
    let mut session = Session::open(target).await?;
    let total = existing_count(&mut session, target, dlq).await?;
    let mut held: Vec<Delivery> = Vec::new();
    let mut letters = Vec::new();
    while letters.len() < usize::try_from(limit).unwrap_or(usize::MAX) {
        let Some(delivery) = take(&session, dlq).await? else {
            break;
        };
        letters.push(DeadLetter::from_delivery(&dlq.name, &delivery));
        held.push(delivery);
    }
    requeue_all(&held).await;
    session.close().await;
    Ok((letters, total))
}

/// Takes the next dead letter from `dlq` without acking it (`None` when it is empty).
///
/// # Errors
/// When the broker refuses the read.
pub async fn take(session: &Session, dlq: &DeadLetterQueue) -> anyhow::Result<Option<Delivery>> {
    let taken = session
        .channel
        .basic_get(dlq.name.as_str().into(), BasicGetOptions::default())
        .await
        .with_context(|| format!("cannot read from '{}'", dlq.name))?;
    Ok(taken.map(|message| message.delivery))
}

/// Hands every delivery in `held` back to its queue with one `basic.nack` (multiple, requeue),
/// which also covers any other unacked delivery before the last one; closing the channel would
/// requeue them too.
pub async fn requeue_all(held: &[Delivery]) {
    let Some(last) = held.last() else { return };
    let requeue = BasicNackOptions {
        multiple: true,
        requeue: true,
    };
    if !matches!(last.acker.nack(requeue).await, Ok(true)) {
        tracing::warn!("nack failed; the broker requeues the messages when the channel closes");
    }
}

/// Deletes every message in `dlq`; returns how many were removed.
///
/// # Errors
/// Without `confirmed`, when the queue does not exist, or when the broker refuses.
pub async fn purge(target: &Target, dlq: &DeadLetterQueue, confirmed: bool) -> anyhow::Result<u32> {
    if !confirmed {
        bail!(
            "refusing to purge '{}' without --yes: its dead letters would be deleted for good \
             (see them with `orderflow dlq show {}`)",
            dlq.name,
            dlq.source
        );
    }
    let mut session = Session::open(target).await?;
    existing_count(&mut session, target, dlq).await?;
    let removed = session
        .channel
        .queue_purge(dlq.name.as_str().into(), QueuePurgeOptions::default())
        .await
        .with_context(|| format!("cannot purge '{}'", dlq.name))?;
    session.close().await;
    Ok(removed)
}
