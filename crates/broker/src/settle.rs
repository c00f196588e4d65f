//! Settling a delivery: publish its retry or dead-letter copy, wait for the confirm, then ack;
//! when the copy could not be stored, back off, then return the original with `basic.reject`.

use crate::acks::Acks;
use crate::copies;
use crate::failure::{FailedBy, Failure};
use crate::headers;
use crate::publisher::Publisher;
use crate::retry::Decision;
use crate::topology::QueueSpec;
use lapin::message::Delivery;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Where settling publishes and acks, and whom a copy names as having failed it.
pub(crate) struct Settler<'a> {
    pub(crate) publisher: &'a Publisher,
    pub(crate) acks: &'a Acks,
    pub(crate) failed_by: &'a FailedBy,
}

/// Carries out `decision` for `delivery` from consumer queue `queue`, recording `failure` on
/// its copy. A cancelled `cancel` leaves the delivery unsettled (the broker returns it on
/// channel close).
pub(crate) async fn settle(
    settler: &Settler<'_>,
    delivery: &Delivery,
    queue: &QueueSpec,
    decision: Decision,
    failure: Option<&Failure>,
    cancel: &CancellationToken,
) {
    let Settler {
        publisher,
        acks,
        failed_by,
    } = settler;
    let failed = failure.map(|failure| (failure, *failed_by));
    let copy = match decision {
        Decision::Ack => None,
        Decision::GiveBack => {
            acks.give_back(delivery.delivery_tag).await;
            return;
        }
        Decision::Retry { tier } => Some(copies::retry(delivery, queue, tier, failed)),
        Decision::DeadLetter(reason) => Some(copies::dead_letter(delivery, queue, reason, failed)),
    };
    if let Some(copy) = copy
        && let Err(err) = publisher.publish(&copy).await
    {
        let delay = return_delay(headers::delivery_count(&delivery.properties));
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

/// The pause before returning a delivery whose copy could not be stored for the `count`-th
/// time: 250 ms doubling to 30 s, so the delivery limit (10 by default) is reached only after
/// minutes of refusals.
fn return_delay(count: u32) -> Duration {
    crate::backoff::doubling(Duration::from_millis(250), Duration::from_secs(30), count)
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
}
