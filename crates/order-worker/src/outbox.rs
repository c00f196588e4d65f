//! The outbox relay: publishes unsent outbox rows with confirms (pipelined, a batch at a time)
//! and marks them sent. A crash between publish and mark re-sends the row with the same
//! `message_id`, which consumers recognise; nothing is ever lost or invented.

use crate::store::OrderStore;
use broker::Publisher;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Rows published per batch.
const BATCH: i64 = 256;

/// Relays until `stop`; `wake` is notified whenever a transaction added rows.
pub async fn relay(
    store: OrderStore,
    publisher: Publisher,
    wake: Arc<Notify>,
    stop: CancellationToken,
) {
    let mut failures = 0u32;
    while !stop.is_cancelled() {
        let batch = match store.unsent(BATCH).await {
            Ok(batch) => batch,
            Err(err) => {
                tracing::warn!(error = %err, "outbox: reading unsent rows failed");
                pause(&stop, &wake, Duration::from_secs(1)).await;
                continue;
            }
        };
        if batch.is_empty() {
            pause(&stop, &wake, Duration::from_millis(500)).await;
            continue;
        }
        let publishes = batch.iter().map(|row| {
            let message = row.message(publisher.app_id());
            let publisher = publisher.clone();
            async move { publisher.publish(&message).await }
        });
        let results = futures_util::future::join_all(publishes).await;
        let mut sent = Vec::with_capacity(batch.len());
        let mut failed = 0;
        for (row, result) in batch.iter().zip(results) {
            match result {
                Ok(()) => sent.push(row.message_id.as_str()),
                Err(err) => {
                    failed += 1;
                    tracing::warn!(error = %err, message_id = %row.message_id, event = %row.event_type, "outbox: publish failed; will retry");
                }
            }
        }
        if let Err(err) = store.mark_sent(&sent).await {
            tracing::warn!(error = %err, "outbox: marking rows sent failed; they will be re-sent");
        }
        metrics::counter!("orderflow_outbox_published_total").increment(sent.len() as u64);
        if failed > 0 {
            failures = failures.saturating_add(1);
            let backoff = Duration::from_millis(100 * 2u64.pow(failures.min(6)));
            pause(&stop, &wake, backoff).await;
        } else {
            failures = 0;
        }
    }
}

async fn pause(stop: &CancellationToken, wake: &Notify, at_most: Duration) {
    tokio::select! {
        () = stop.cancelled() => {}
        () = wake.notified() => {}
        () = tokio::time::sleep(at_most) => {}
    }
}
