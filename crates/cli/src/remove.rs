//! Deleting chosen dead letters for good: one by message id, or those a filter selects; every
//! other one is handed back untouched.

use crate::filter::Filter;
use crate::queues::DeadLetterQueue;
use crate::scan::{Touched, touch};
use crate::target::Target;
use anyhow::bail;
use lapin::options::BasicAckOptions;

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
    touch(
        target,
        dlq,
        filter,
        limit,
        "nothing deleted",
        async |delivery, letter| {
            if dry_run {
                return Ok(Some(delivery));
            }
            if !matches!(
                delivery.acker.ack(BasicAckOptions::default()).await,
                Ok(true)
            ) {
                bail!(
                    "could not delete message {} from '{}' (connection lost); it stays there",
                    letter.message_id.as_deref().unwrap_or("(no message id)"),
                    dlq.name
                );
            }
            Ok(None)
        },
    )
    .await
}
