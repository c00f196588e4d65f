//! Bare-lapin plumbing the two ceilings share: a connection, confirm channels, consumers with
//! the workers' prefetch, persistent JSON properties, and a completion counter.

use broker::lapin::options::{BasicConsumeOptions, BasicQosOptions, ConfirmSelectOptions};
use broker::lapin::types::FieldTable;
use broker::lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Notify;

/// A connection with the workers' frame size.
///
/// # Errors
/// When the broker cannot be reached.
pub async fn connect(url: &str) -> anyhow::Result<Connection> {
    Ok(Connection::connect(
        &broker::connection::with_frame_max(url),
        ConnectionProperties::default(),
    )
    .await?)
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
