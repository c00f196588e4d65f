//! What the broker holds, read over AMQP (no management plugin on the private node): ready
//! messages per consumer queue, retry tier and dead-letter queue, and the dead letters
//! themselves, read and handed back without removing them.

use anyhow::Context;
use broker::Naming;
use broker::headers;
use contracts::names::queues;
use lapin::options::{BasicGetOptions, BasicNackOptions};
use std::collections::BTreeMap;
use testkit::inspect::Inspector;

/// One dead letter, as the audit needs it.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The consumer queue it failed in (its DLQ is `<queue>.dlq`).
    pub queue: String,
    /// The event's `message_id`.
    pub message_id: Option<String>,
    /// The order id.
    pub correlation_id: Option<String>,
    /// The event name.
    pub kind: Option<String>,
    /// `error-kind` (the library's) or the broker's `x-death` reason (the delivery limit).
    pub why: String,
    /// The last handler error, if the library dead-lettered it.
    pub error: Option<String>,
}

/// What every queue holds right now.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    /// Ready messages in consumer queues and their retry tiers, per queue.
    pub in_flight: BTreeMap<String, u32>,
    /// Ready messages per dead-letter queue (only those holding some).
    pub dead_letters: BTreeMap<String, u32>,
}

impl Counts {
    /// Messages still on their way (consumer queues plus retry tiers).
    #[must_use]
    pub fn in_flight_total(&self) -> u32 {
        self.in_flight.values().sum()
    }

    /// Dead letters in all DLQs.
    #[must_use]
    pub fn dead_letter_total(&self) -> u32 {
        self.dead_letters.values().sum()
    }
}

/// A short-lived connection to the node, for counting and peeking.
pub struct Broker {
    inspector: Inspector,
    tiers: u32,
}

impl Broker {
    /// Connects to `url`; `tiers` is the workers' `RETRY_MAX` (the retry tiers per queue).
    ///
    /// # Errors
    /// When the broker cannot be reached.
    pub async fn connect(url: &str, tiers: u32) -> anyhow::Result<Self> {
        let inspector = Inspector::connect(url)
            .await
            .context("connecting to the private node")?;
        Ok(Self { inspector, tiers })
    }

    /// Counts every consumer queue, retry tier and DLQ of the system.
    ///
    /// # Errors
    /// When the connection fails.
    pub async fn counts(&mut self) -> anyhow::Result<Counts> {
        let mut counts = Counts::default();
        for queue in queues::ALL {
            let mut names = vec![queue.to_owned()];
            let naming = Naming::default();
            names.extend((1..=self.tiers).map(|tier| naming.retry_queue(queue, tier)));
            for name in names {
                let n = self.count(&name).await?;
                counts.in_flight.insert(name, n);
            }
            let dlq = naming.dead_letter_queue(queue);
            let n = self.count(&dlq).await?;
            if n > 0 {
                counts.dead_letters.insert(dlq, n);
            }
        }
        Ok(counts)
    }

    async fn count(&mut self, queue: &str) -> anyhow::Result<u32> {
        self.inspector.count(queue).await
    }

    /// Every dead letter in every DLQ, left in place: each is got without an ack, and all are
    /// handed back with one nack (requeue) per queue.
    ///
    /// # Errors
    /// When the connection fails (unacked messages then return to their queue by themselves).
    pub async fn dead_letters(&mut self) -> anyhow::Result<Vec<DeadLetter>> {
        let mut letters = Vec::new();
        for queue in queues::ALL {
            let dlq = Naming::default().dead_letter_queue(queue);
            let total = self.count(&dlq).await?;
            let mut last = None;
            for _ in 0..total {
                let Some(got) = self
                    .inspector
                    .channel()
                    .basic_get(dlq.as_str().into(), BasicGetOptions::default())
                    .await?
                else {
                    break;
                };
                let delivery = got.delivery;
                letters.push(read(queue, &delivery.properties));
                last = Some(delivery);
            }
            if let Some(last) = last {
                let requeue = BasicNackOptions {
                    multiple: true,
                    requeue: true,
                };
                last.acker.nack(requeue).await?;
            }
        }
        Ok(letters)
    }
}

fn read(queue: &str, properties: &lapin::BasicProperties) -> DeadLetter {
    let text =
        |value: &Option<lapin::types::ShortString>| value.as_ref().map(|v| v.as_str().to_owned());
    let table = properties.headers().as_ref();
    let why = headers::text(table, headers::ERROR_KIND)
        .or_else(|| headers::death_reason(table).map(|reason| format!("x-death:{reason}")))
        .unwrap_or_else(|| "unknown".to_owned());
    DeadLetter {
        queue: queue.to_owned(),
        message_id: text(properties.message_id()),
        correlation_id: text(properties.correlation_id()),
        kind: text(properties.kind()),
        why,
        error: headers::text(table, headers::ERROR),
    }
}
