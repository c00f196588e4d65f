//! `orderflow topology apply`: declares the whole system's topology with an administrator's
//! login, so that the workers can run as users that may not configure.

use crate::args::RetryArgs;
use crate::target::Target;
use anyhow::Context;
use broker::{BrokerVersion, RetryPolicy};
use std::time::Duration;

/// How much was declared.
#[derive(Debug, Clone, Copy)]
pub struct Applied {
    pub exchanges: usize,
    pub queues: usize,
}

/// Declares every exchange, consumer queue (with its tiers and DLQ) and binding.
///
/// # Errors
/// When the broker is unreachable, refuses (the login may not configure), or a queue exists
/// with other arguments.
pub async fn apply(target: &Target, retry: &RetryArgs) -> anyhow::Result<Applied> {
    let policy = RetryPolicy::default()
        .with_max_retries(retry.retry_max)
        .with_initial_delay(Duration::from_millis(retry.retry_initial_ms))
        .with_multiplier(retry.retry_multiplier)
        .with_max_delay(Duration::from_millis(retry.retry_max_delay_ms));
    let topology = contracts::topology::system(&policy);
    let version = broker::detect_version(&target.amqp_url)
        .await
        .unwrap_or(BrokerVersion::OLDEST_SUPPORTED);
    let connection = target.connect().await?;
    let channel = connection
        .create_channel()
        .await
        .context("opening a channel")?;
    let declared = topology.declare(&channel, version).await;
    let _ = connection.close(200, "topology applied".into()).await;
    declared.context("declaring the topology")?;
    Ok(Applied {
        exchanges: topology.exchange_count(),
        queues: topology.queue_count(),
    })
}
