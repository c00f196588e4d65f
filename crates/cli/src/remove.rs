//! Deleting chosen dead letters for good: one by message id, or those a filter selects; every
//! other one is handed back untouched.

use crate::filter::Filter;
use crate::letter::Brief;
use crate::queues::DeadLetterQueue;
use crate::scan::{Scan, Touched};
use crate::target::{Session, Target};
use anyhow::bail;
use broker::lapin::options::BasicAckOptions;

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
) -> anyhow::Result<Touched> {
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
    filter.ensure_id_matched(removed.len(), found, &dlq.name, "nothing deleted")?;
    Ok(Touched {
        queue: dlq.name.clone(),
        letters: removed,
        found,
    })
}
