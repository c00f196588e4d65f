//! Dead-letter queues: counting, listing, showing without removing, and purging whole.

use crate::exit::Exit;
use crate::filter::Filter;
use crate::letter::DeadLetter;
use crate::management;
use crate::queues::DeadLetterQueue;
use crate::scan::Scan;
use crate::target::{Session, Target, is_not_found};
use anyhow::Context;
use lapin::Queue;
use lapin::message::Delivery;
use lapin::options::{BasicNackOptions, QueueDeclareOptions, QueuePurgeOptions};
use lapin::types::FieldTable;

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
/// When the queue does not exist (saying so, exit code 4) or the connection fails.
pub async fn existing_count(
    session: &mut Session,
    target: &Target,
    dlq: &DeadLetterQueue,
) -> anyhow::Result<u32> {
    count(session, &dlq.name).await?.ok_or_else(|| {
        Exit::not_found(format!(
            "there is no dead-letter queue '{}' in vhost '{}'",
            dlq.name, target.vhost
        ))
        .into()
    })
}

pub(crate) async fn passive_declare(session: &Session, queue: &str) -> Result<Queue, lapin::Error> {
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    session
        .channel
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await
}

/// The names of every dead-letter queue in the vhost, sorted (from the management API).
///
/// # Errors
/// When the management API cannot be reached.
pub async fn names(target: &Target) -> anyhow::Result<Vec<String>> {
    let mut names: Vec<String> = management::queues(target)
        .await?
        .into_iter()
        .map(|q| q.name)
        .filter(|name| {
            broker::Naming::default()
                .queue_of_dead_letter_queue(name)
                .is_some()
        })
        .collect();
    names.sort();
    Ok(names)
}

/// Every dead-letter queue in the vhost with its ready messages, sorted by name.
///
/// Names come from the management API, counts from the broker itself (exact, not sampled).
///
/// # Errors
/// When the management API or the broker cannot be reached.
pub async fn list(target: &Target) -> anyhow::Result<Vec<(String, u32)>> {
    let names = names(target).await?;
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

/// `only`, or every dead-letter queue of the vhost.
///
/// # Errors
/// When the management API cannot be reached.
pub async fn these_or_all(
    target: &Target,
    only: Option<&DeadLetterQueue>,
) -> anyhow::Result<Vec<DeadLetterQueue>> {
    match only {
        Some(dlq) => Ok(vec![dlq.clone()]),
        None => names(target)
            .await?
            .iter()
            .map(|name| DeadLetterQueue::parse(name))
            .collect(),
    }
}

/// What `dlq show` found.
#[derive(Debug)]
pub struct Shown {
    /// The dead letters shown, in the order read.
    pub letters: Vec<DeadLetter>,
    /// Messages in the queue when it started.
    pub present: u32,
}

/// Up to `limit` dead letters of `dlq` that `filter` selects, left in the queue.
///
/// They are read with `basic.get` and handed back with `basic.nack` + requeue (which does not
/// count as a failed delivery), at most [`crate::scan::WINDOW`] unacked at once. A quorum queue
/// puts messages handed back behind the others, so showing can change their order (never their
/// number).
///
/// # Errors
/// When the queue does not exist or the connection fails (unacked messages then return to the
/// queue by themselves).
pub async fn show(
    target: &Target,
    dlq: &DeadLetterQueue,
    filter: &Filter,
    limit: u32,
) -> anyhow::Result<Shown> {
    let mut session = Session::open(target).await?;
    let mut scan = Scan::start(&mut session, target, dlq).await?;
    let present = scan.present;
    let mut letters = Vec::new();
    let result = scan
        .each_match(filter, Some(limit), async |delivery, letter| {
            letters.push(letter);
            Ok(Some(delivery))
        })
        .await;
    scan.finish().await;
    session.close().await;
    result?;
    Ok(Shown { letters, present })
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

/// Refuses a purge without `confirmed` (exit code 2), pointing at `dlq show`.
///
/// # Errors
/// Without `confirmed`.
pub fn confirm_purge(dlq: &DeadLetterQueue, confirmed: bool) -> anyhow::Result<()> {
    if confirmed {
        return Ok(());
    }
    Err(Exit::usage(format!(
        "refusing to purge '{}' without --yes: its dead letters would be deleted for good \
         (see them with `orderflow dlq show {}`, or add --dry-run)",
        dlq.name, dlq.source
    ))
    .into())
}

/// Deletes every message in `dlq` at once (`queue.purge`); returns how many were removed.
///
/// # Errors
/// When the queue does not exist, or when the broker refuses.
pub async fn purge_all(target: &Target, dlq: &DeadLetterQueue) -> anyhow::Result<u32> {
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
