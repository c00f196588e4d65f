//! Deleting chosen dead letters for good: one by message id, or those a filter selects; every
//! other one is handed back untouched.

use crate::exit::Exit;
use crate::filter::Filter;
use crate::letter::Brief;
use crate::queues::DeadLetterQueue;
use crate::scan::Scan;
use crate::target::{Session, Target};
use anyhow::bail;
use broker::lapin::options::BasicAckOptions;

/// What a removal did (or, dry, would do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// The dead-letter queue.
    pub queue: String,
    /// The dead letters removed; on a dry run, those that would be.
    pub removed: Vec<Brief>,
    /// Dead letters in the DLQ when it started.
    pub found: u32,
}

/// Removes (acks) the dead letters of `dlq` that `filter` selects, at most `limit`; `dry_run`
/// only reads. At most [`crate::scan::WINDOW`] others are held unacked at once.
///
/// # Errors
/// When the DLQ does not exist, the broker refuses, or a selection by message id matches
/// nothing (exit code 1).
pub async fn remove(
    target: &Target,
    dlq: &DeadLetterQueue,
    filter: &Filter,
    limit: Option<u32>,
    dry_run: bool,
) -> anyhow::Result<Removed> {
    let mut session = Session::open(target).await?;
    let mut scan = Scan::start(&mut session, target, dlq).await?;
    let found = scan.present;
    let mut removed = Vec::new();
    let result = scan
        .each_match(filter, limit, async |delivery, letter| {
            if !dry_run
                && !matches!(
                    delivery.acker.ack(BasicAckOptions::default()).await,
                    Ok(true)
                )
            {
                bail!(
                    "could not delete message {} from '{}' (connection lost); it stays there",
                    letter.message_id.as_deref().unwrap_or("(no message id)"),
                    dlq.name
                );
            }
            removed.push(Brief::of(&letter));
            Ok(dry_run.then_some(delivery))
        })
        .await;
    scan.finish().await;
    session.close().await;
    result?;
    if let Some(id) = &filter.message_id
        && removed.is_empty()
    {
        return Err(Exit::nothing_matched(format!(
            "no dead letter with message id '{id}' among the {found} in '{}'; nothing deleted",
            dlq.name
        ))
        .into());
    }
    Ok(Removed {
        queue: dlq.name.clone(),
        removed,
        found,
    })
}
