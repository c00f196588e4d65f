//! The management API view of the vhost: every queue's statistics, and the per-consumer-queue
//! topology report built from them.

use crate::exit::Exit;
use crate::target::Target;
use anyhow::Context;
use broker::Naming;
use std::collections::BTreeMap;

/// One queue's statistics as the management API samples them (refreshed every few seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStats {
    /// The queue's name.
    pub name: String,
    /// Ready plus unacknowledged messages.
    pub messages: u64,
    /// Messages delivered and not yet acknowledged.
    pub unacked: u64,
    /// Consumers attached.
    pub consumers: u64,
}

impl QueueStats {
    /// Messages waiting to be delivered.
    #[must_use]
    pub fn ready(&self) -> u64 {
        self.messages.saturating_sub(self.unacked)
    }
}

/// Every queue in the target's vhost.
///
/// # Errors
/// When the management API cannot be reached or refuses (exit code 3).
pub async fn queues(target: &Target) -> anyhow::Result<Vec<QueueStats>> {
    let api = target.management()?;
    let listed = api.list_queues_in(&target.vhost).await.with_context(|| {
        Exit::unreachable(format!(
            "cannot list the queues of vhost '{}' through the management API at {} \
             (is the management plugin enabled? set --management-url or RABBITMQ_MANAGEMENT_URL)",
            target.vhost, target.management_api
        ))
    })?;
    Ok(listed
        .into_iter()
        .map(|q| QueueStats {
            name: q.name,
            messages: q.message_count,
            unacked: q.unacknowledged_message_count,
            consumers: q.consumer_count.into(),
        })
        .collect())
}

/// One consumer queue with its retry tiers and dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyRow {
    /// The consumer queue `Q`.
    pub queue: String,
    /// Messages ready in `Q`.
    pub ready: u64,
    /// Messages delivered from `Q` and not yet acknowledged.
    pub unacked: u64,
    /// Consumers on `Q`.
    pub consumers: u64,
    /// Messages waiting in `Q.retry.1` … `Q.retry.N`.
    pub retrying: u64,
    /// Messages in `Q.dlq`.
    pub dead: u64,
}

/// The consumer queues among `queues` (those with a `Q.dlq`), sorted by name.
#[must_use]
pub fn topology(queues: &[QueueStats]) -> Vec<TopologyRow> {
    let by_name: BTreeMap<&str, &QueueStats> =
        queues.iter().map(|q| (q.name.as_str(), q)).collect();
    let naming = Naming::default();
    let mut retrying: BTreeMap<&str, u64> = BTreeMap::new();
    for queue in queues {
        if let Some((owner, _)) = naming.queue_of_retry_tier(&queue.name) {
            *retrying.entry(owner).or_default() += queue.messages;
        }
    }
    by_name
        .values()
        .filter(|q| naming.queue_of_dead_letter_queue(&q.name).is_none())
        .filter_map(|q| {
            let dlq = by_name.get(naming.dead_letter_queue(&q.name).as_str())?;
            Some(TopologyRow {
                queue: q.name.clone(),
                ready: q.ready(),
                unacked: q.unacked,
                consumers: q.consumers,
                retrying: retrying.get(q.name.as_str()).copied().unwrap_or(0),
                dead: dlq.messages,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(name: &str, messages: u64, unacked: u64, consumers: u64) -> QueueStats {
        QueueStats {
            name: name.into(),
            messages,
            unacked,
            consumers,
        }
    }

    #[test]
    fn a_consumer_queue_sums_its_tiers_and_counts_its_dlq() {
        let queues = [
            stats("pay", 7, 2, 3),
            stats("pay.retry.1", 4, 0, 0),
            stats("pay.retry.2", 1, 0, 0),
            stats("pay.dlq", 6, 0, 0),
            stats("payment", 9, 0, 1),
            stats("payment.retry.1", 100, 0, 0),
            stats("payment.dlq", 0, 0, 0),
            stats("lonely", 5, 0, 0),
        ];
        assert_eq!(
            topology(&queues),
            [
                TopologyRow {
                    queue: "pay".into(),
                    ready: 5,
                    unacked: 2,
                    consumers: 3,
                    retrying: 5,
                    dead: 6,
                },
                TopologyRow {
                    queue: "payment".into(),
                    ready: 9,
                    unacked: 0,
                    consumers: 1,
                    retrying: 100,
                    dead: 0,
                },
            ]
        );
    }
}
