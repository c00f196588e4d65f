//! Bare-lapin plumbing the two ceilings share: confirm channels, consumers with
//! the workers' prefetch, persistent JSON properties, and a completion counter.

use crate::procs;
use anyhow::Context;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    ExchangeDeleteOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, Consumer};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Confirms awaited together by the first publisher (the outbox relay's batch).
const CONFIRM_BATCH: usize = 256;

/// Where the first publisher sends each of a run's messages.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// Exchange ("" is the default exchange).
    pub exchange: &'a str,
    /// Routing key.
    pub routing_key: &'a str,
    /// The body every message carries.
    pub body: &'a [u8],
}

/// Publishes `n` messages to `target` on `channel` (pipelined confirms, `properties` for each),
/// waits until `finish` has counted everything, and measures: `n` per second, and the CPU ms per
/// message of the broker and of this process.
///
/// # Errors
/// When a publish fails or the run does not finish in 10 minutes.
pub async fn measure(
    channel: &Channel,
    n: usize,
    target: Target<'_>,
    properties: impl Fn() -> BasicProperties,
    finish: &Finish,
) -> anyhow::Result<(f64, BTreeMap<String, f64>)> {
    let meter = CpuMeter::start();
    let started = Instant::now();
    let mut pending = Vec::with_capacity(CONFIRM_BATCH);
    for _ in 0..n {
        pending.push(
            channel
                .basic_publish(
                    target.exchange.into(),
                    target.routing_key.into(),
                    BasicPublishOptions::default(),
                    target.body,
                    properties(),
                )
                .await?,
        );
        if pending.len() == CONFIRM_BATCH {
            for confirm in pending.drain(..) {
                confirm.await?;
            }
        }
    }
    for confirm in pending {
        confirm.await?;
    }
    tokio::time::timeout(Duration::from_secs(600), finish.all())
        .await
        .context("the ceiling did not finish in 10 minutes")?;
    Ok((n as f64 / started.elapsed().as_secs_f64(), meter.per(n)))
}

/// The CPU time the broker and this process (the client) spend from its start.
pub struct CpuMeter {
    broker: BTreeMap<String, procs::Sample>,
    client_ms: f64,
}

impl CpuMeter {
    /// Starts counting.
    #[must_use]
    pub fn start() -> Self {
        Self {
            broker: procs::sample(),
            client_ms: procs::own_cpu_ms(),
        }
    }

    /// CPU ms per message of `n` since the start: the broker's and the client's.
    #[must_use]
    pub fn per(&self, n: usize) -> BTreeMap<String, f64> {
        let mut cpu = procs::cpu_between(&self.broker, &procs::sample(), n as f64);
        cpu.retain(|name, _| name == procs::BROKER);
        cpu.insert(
            "client".to_owned(),
            (procs::own_cpu_ms() - self.client_ms) / n as f64,
        );
        cpu
    }
}

/// A channel in confirm mode, for pipelined publishes.
///
/// # Errors
/// When the channel cannot be opened.
pub async fn confirm_channel(conn: &Connection) -> anyhow::Result<Channel> {
    let channel = conn.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    Ok(channel)
}

/// A consumer of `queue` on its own channel with `prefetch` unacked deliveries at most.
///
/// # Errors
/// When the channel cannot be opened or the queue consumed.
pub async fn consume(
    conn: &Connection,
    queue: &str,
    prefetch: u16,
) -> anyhow::Result<(Channel, Consumer)> {
    let channel = conn.create_channel().await?;
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await?;
    let consumer = channel
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok((channel, consumer))
}

/// Persistent JSON, as the workers publish.
#[must_use]
pub fn properties() -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
}

/// Counts completions and wakes the waiter when the expected number is reached.
#[derive(Debug, Clone)]
pub struct Finish {
    done: Arc<AtomicUsize>,
    expected: usize,
    reached: Arc<Notify>,
}

impl Finish {
    /// Expects `expected` completions.
    #[must_use]
    pub fn new(expected: usize) -> Self {
        Self {
            done: Arc::new(AtomicUsize::new(0)),
            expected,
            reached: Arc::new(Notify::new()),
        }
    }

    /// Counts one completion.
    pub fn one(&self) {
        if self.done.fetch_add(1, Ordering::AcqRel) + 1 == self.expected {
            self.reached.notify_one();
        }
    }

    /// Waits until every expected completion was counted.
    pub async fn all(&self) {
        while self.done.load(Ordering::Acquire) < self.expected {
            self.reached.notified().await;
        }
    }
}

/// Deletes a run's `exchanges` and `queues` (what is already gone is skipped).
pub async fn delete(url: &str, exchanges: &[String], queues: &[String]) {
    let Ok(conn) =
        broker::connect(url, &broker::Tls::default(), "orderflow-bench", "cleanup").await
    else {
        return;
    };
    for queue in queues {
        // A missing queue closes the channel: one channel per deletion.
        if let Ok(channel) = conn.create_channel().await {
            let _ = channel
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
    }
    for exchange in exchanges {
        if let Ok(channel) = conn.create_channel().await {
            let _ = channel
                .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
                .await;
        }
    }
    let _ = conn.close(200, "done".into()).await;
}
