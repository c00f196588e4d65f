//! The outbox relay: publishes unsent outbox rows with confirms (pipelined, a batch at a time)
//! and marks them sent. A crash between publish and mark re-sends the row with the same
//! `message_id`, which consumers recognise; nothing is ever lost or invented.
//!
//! Every failure (a publish, marking rows sent, reading the outbox) backs the relay off, so a
//! store or broker that keeps failing is not hammered with the same rows. A row the broker
//! refuses for good (no such exchange, unroutable, nacked) counts an attempt on the row; after
//! [`QUARANTINE_AFTER`] of them it is quarantined: skipped, so it no longer holds up newer rows,
//! but kept, listed by `GET /outbox/quarantined` and the `orderflow_outbox_quarantined` gauge
//! until an operator releases it (`POST /outbox/quarantined/{message_id}/release`).
//!
//! Replicas on one PostgreSQL database relay one at a time: the relay runs while its replica
//! holds a lease, and a standby takes over within a second of the holder's end.

use crate::store::{OrderStore, OutboxRow};
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use broker::Publish;
use service::http::ApiError;
use service::lease::Lease;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Rows published per batch.
const BATCH: i64 = 256;

/// Permanent publish failures after which a row is quarantined.
pub const QUARANTINE_AFTER: i64 = 5;

/// The first pause after a failure; it doubles with each failure in a row.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// The longest pause after failures.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// The relay's lease: one relay per order database, so that replicas never publish one order's
/// events out of order or each publish every row.
pub const RELAY_LEASE: &str = "outbox-relay";

/// How often a standby replica tries to take the relay over.
const STANDBY_POLL: Duration = Duration::from_secs(1);

/// Relays until `stop` while this replica holds the relay's lease (see [`service::lease`]);
/// `wake` is notified whenever a transaction added rows.
pub async fn relay(
    store: OrderStore,
    mut lease: Lease,
    publisher: impl Publish,
    wake: Arc<Notify>,
    stop: CancellationToken,
) {
    refresh_quarantined_gauge(&store).await;
    let mut failures = 0u32;
    while !stop.is_cancelled() {
        match lease.held().await {
            Ok(true) => {}
            Ok(false) => {
                pause(&stop, None, STANDBY_POLL).await;
                continue;
            }
            Err(err) => {
                tracing::warn!(error = %err, "outbox: trying the relay's lease failed");
                failures = failures.saturating_add(1);
                pause(&stop, None, backoff(failures)).await;
                continue;
            }
        }
        let failed = match store.unsent(BATCH).await {
            Ok(batch) if batch.is_empty() => {
                pause(&stop, Some(&wake), Duration::from_millis(500)).await;
                continue;
            }
            Ok(batch) => !relay_batch(&store, &publisher, &batch).await,
            Err(err) => {
                tracing::warn!(error = %err, "outbox: reading unsent rows failed");
                true
            }
        };
        if failed {
            failures = failures.saturating_add(1);
            // A new row does not cut a backoff short: under load that would retry at the order
            // rate.
            pause(&stop, None, backoff(failures)).await;
        } else {
            failures = 0;
        }
    }
}

/// Publishes `batch`, marks what was published sent and records permanent failures; true when
/// everything succeeded.
async fn relay_batch(store: &OrderStore, publisher: &impl Publish, batch: &[OutboxRow]) -> bool {
    let publishes = batch.iter().map(|row| publish(publisher, row));
    let results = futures_util::future::join_all(publishes).await;
    let mut sent = Vec::with_capacity(batch.len());
    let mut refused = Vec::new();
    let mut ok = true;
    for (row, result) in batch.iter().zip(results) {
        match result {
            Ok(()) => sent.push(row.message_id.as_str()),
            Err(err) if err.is_recoverable() => {
                // The broker is away (the publisher already retried for its window): no fault
                // of the row's.
                ok = false;
                tracing::warn!(error = %err, message_id = %row.message_id, event = %row.event_type, "outbox: publish failed; will retry");
            }
            Err(_) => refused.push(row),
        }
    }
    // A refused publish can fail the others on the shared channel (a missing exchange closes
    // it): try each refused row alone before blaming it.
    for row in refused {
        ok = false;
        match publish(publisher, row).await {
            Ok(()) => sent.push(row.message_id.as_str()),
            Err(err) => record_refusal(store, row, &err).await,
        }
    }
    if !sent.is_empty() {
        if let Err(err) = store.mark_sent(&sent).await {
            ok = false;
            tracing::warn!(error = %err, rows = sent.len(), "outbox: marking rows sent failed; they will be re-sent");
        }
        metrics::counter!("orderflow_outbox_published_total").increment(sent.len() as u64);
    }
    ok
}

/// Publishes `row` in a span continuing the trace of the request or delivery that wrote it.
async fn publish(publisher: &impl Publish, row: &OutboxRow) -> Result<(), broker::BrokerError> {
    let span = tracing::info_span!(
        "outbox relay",
        messaging.message.id = %row.message_id,
        messaging.message.conversation_id = %row.order_id,
        event = %row.event_type,
    );
    if let Some(traceparent) = &row.traceparent {
        broker::trace::continue_traceparent(&span, traceparent);
    }
    publisher
        .publish(&row.message(publisher.app_id()))
        .instrument(span)
        .await
}

/// Counts a permanent failure on `row`, quarantining it after [`QUARANTINE_AFTER`].
async fn record_refusal(store: &OrderStore, row: &OutboxRow, err: &broker::BrokerError) {
    let error = err.to_string();
    match store
        .record_publish_failure(&row.message_id, &error, QUARANTINE_AFTER)
        .await
    {
        Ok(true) => {
            tracing::error!(error = %error, message_id = %row.message_id, event = %row.event_type, "outbox: row quarantined after repeated refusals; release it once fixed");
            refresh_quarantined_gauge(store).await;
        }
        Ok(false) => {
            tracing::warn!(error = %error, message_id = %row.message_id, event = %row.event_type, "outbox: publish refused; will retry");
        }
        Err(store_err) => {
            tracing::warn!(error = %store_err, message_id = %row.message_id, "outbox: recording a refused publish failed");
        }
    }
}

/// The pause after `failures` failures in a row: doubling from [`FIRST_BACKOFF`], capped.
fn backoff(failures: u32) -> Duration {
    broker::backoff::doubling(FIRST_BACKOFF, MAX_BACKOFF, failures.saturating_sub(1))
}

async fn pause(stop: &CancellationToken, wake: Option<&Notify>, at_most: Duration) {
    let woken = async {
        match wake {
            Some(wake) => wake.notified().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = stop.cancelled() => {}
        () = woken => {}
        () = tokio::time::sleep(at_most) => {}
    }
}

/// How often the backlog gauges are refreshed (a count over an index, off the relay's path).
const BACKLOG_EVERY: Duration = Duration::from_secs(5);

/// Keeps `orderflow_outbox_backlog` and `orderflow_outbox_oldest_unsent_seconds` current until
/// `stop`: a relay that cannot publish shows as a growing age long before orders time out.
pub async fn watch_backlog(store: OrderStore, stop: CancellationToken) {
    while !stop.is_cancelled() {
        match store.backlog().await {
            Ok((waiting, oldest)) => {
                let age = oldest.map_or(0.0, |at| {
                    (time::OffsetDateTime::now_utc() - service::clock::parse(&at))
                        .as_seconds_f64()
                        .max(0.0)
                });
                metrics::gauge!("orderflow_outbox_backlog").set(waiting as f64);
                metrics::gauge!("orderflow_outbox_oldest_unsent_seconds").set(age);
            }
            Err(err) => tracing::warn!(error = %err, "outbox: measuring the backlog failed"),
        }
        pause(&stop, None, BACKLOG_EVERY).await;
    }
}

async fn refresh_quarantined_gauge(store: &OrderStore) {
    match store.quarantined().await {
        Ok(rows) => metrics::gauge!("orderflow_outbox_quarantined").set(rows.len() as f64),
        Err(err) => tracing::warn!(error = %err, "outbox: counting quarantined rows failed"),
    }
}

/// `GET /outbox/quarantined` (the rows the relay gave up on) and
/// `POST /outbox/quarantined/{message_id}/release` (another round of attempts).
pub fn routes(store: OrderStore, wake: Arc<Notify>) -> Router {
    Router::new()
        .route("/outbox/quarantined", get(list))
        .route("/outbox/quarantined/{message_id}/release", post(release))
        .with_state((store, wake))
}

async fn list(
    State((store, _)): State<(OrderStore, Arc<Notify>)>,
) -> Result<axum::Json<Vec<contracts::outbox::QuarantinedRow>>, ApiError> {
    Ok(axum::Json(store.quarantined().await?))
}

async fn release(
    State((store, wake)): State<(OrderStore, Arc<Notify>)>,
    Path(message_id): Path<String>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    if !store.release(&message_id).await? {
        return Err(ApiError::not_found(format!(
            "no quarantined outbox row {message_id}"
        )));
    }
    refresh_quarantined_gauge(&store).await;
    wake.notify_one();
    Ok(axum::Json(
        serde_json::json!({"message_id": message_id, "released": true}),
    ))
}

#[cfg(test)]
mod tests;
