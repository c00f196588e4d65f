//! The consumer runtime for one queue: bounded concurrency, decoding, the handler call in a span,
//! the retry decision and settlement.

use crate::acks::Acks;
use crate::handler::{Handler, HandlerError};
use crate::headers;
use crate::message::{Message, Meta};
use crate::publisher::Publisher;
use crate::retry::{Outcome, decide};
use crate::settle::settle;
use crate::topology::QueueSpec;
use crate::trace::TraceParent;
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};
use lapin::Channel;
use lapin::message::Delivery;
use lapin::options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use serde::de::DeserializeOwned;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// One consumer: a queue (with its retry policy), prefetch, concurrency and a handler.
pub struct ConsumerSpec {
    pub(crate) queue: QueueSpec,
    pub(crate) prefetch: u16,
    pub(crate) concurrency: usize,
    pub(crate) handle: ErasedHandler,
}

/// What one attempt came to, with the error text for the headers.
pub(crate) struct Attempt {
    outcome: Outcome,
    error: Option<String>,
}

/// Decodes a body and, if it decodes, returns the handler's future.
pub(crate) type ErasedHandler =
    Arc<dyn Fn(&[u8], Meta) -> Result<BoxFuture<'static, Attempt>, String> + Send + Sync>;

impl ConsumerSpec {
    /// Consumes `queue`, decoding each body as `E` and passing it to `handler`.
    /// Defaults: prefetch 32, concurrency 8.
    pub fn new<E, H>(queue: QueueSpec, handler: H) -> Self
    where
        E: DeserializeOwned + Send + 'static,
        H: Handler<E>,
    {
        let handler = Arc::new(handler);
        let handle: ErasedHandler = Arc::new(move |body: &[u8], meta: Meta| {
            let event = serde_json::from_slice::<E>(body)
                .map_err(|err| format!("cannot decode body: {err}"))?;
            let handler = Arc::clone(&handler);
            Ok(async move {
                let result = AssertUnwindSafe(handler.handle(Message { event, meta }))
                    .catch_unwind()
                    .await;
                match result {
                    Ok(Ok(())) => Attempt {
                        outcome: Outcome::Handled,
                        error: None,
                    },
                    Ok(Err(err @ HandlerError::Retry(_))) => Attempt {
                        outcome: Outcome::Retryable,
                        error: Some(err.to_string()),
                    },
                    // Until the runtime holds deliveries through outages, an outage is retried.
                    Ok(Err(err @ HandlerError::Unavailable(_))) => Attempt {
                        outcome: Outcome::Retryable,
                        error: Some(err.to_string()),
                    },
                    Ok(Err(err @ HandlerError::Reject(_))) => Attempt {
                        outcome: Outcome::Rejected,
                        error: Some(err.to_string()),
                    },
                    Err(panic) => Attempt {
                        outcome: Outcome::Retryable,
                        error: Some(format!("handler panicked: {}", panic_text(&*panic))),
                    },
                }
            }
            .boxed())
        });
        Self {
            queue,
            prefetch: 32,
            concurrency: 8,
            handle,
        }
    }

    /// Sets how many unacknowledged messages the broker may push ahead (≥ concurrency is sensible).
    #[must_use]
    pub fn with_prefetch(mut self, prefetch: u16) -> Self {
        self.prefetch = prefetch.max(1);
        self
    }

    /// Sets how many handlers run at once.
    #[must_use]
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// The queue consumed.
    #[must_use]
    pub fn queue(&self) -> &QueueSpec {
        &self.queue
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

/// Why a consume loop ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// Shutdown asked for it.
    Stopped,
    /// The channel or connection failed, or the broker cancelled the consumer.
    Failed(String),
}

/// Consumes until `stop` fires or the stream fails; handlers run as tasks on `tracker`.
pub(crate) async fn consume(
    channel: Channel,
    spec: Arc<ConsumerSpec>,
    publisher: Publisher,
    tracker: TaskTracker,
    stop: CancellationToken,
) -> Ended {
    let queue = spec.queue.name.clone();
    if let Err(err) = channel
        .basic_qos(spec.prefetch, BasicQosOptions::default())
        .await
    {
        return Ended::Failed(format!("basic.qos on '{queue}': {err}"));
    }
    let mut deliveries = match channel
        .basic_consume(
            queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
    {
        Ok(consumer) => consumer,
        Err(err) => return Ended::Failed(format!("basic.consume on '{queue}': {err}")),
    };
    let tag = deliveries.tag();
    let acks = Arc::new(Acks::new(channel.clone()));
    let slots = Arc::new(Semaphore::new(spec.concurrency));
    tracing::info!(queue = %queue, prefetch = spec.prefetch, concurrency = spec.concurrency, "consuming");
    let ended = loop {
        let slot = tokio::select! {
            () = stop.cancelled() => break Ended::Stopped,
            slot = Arc::clone(&slots).acquire_owned() => slot.expect("semaphore is never closed"),
        };
        let next = tokio::select! {
            () = stop.cancelled() => break Ended::Stopped,
            next = deliveries.next() => next,
        };
        match next {
            Some(Ok(delivery)) => {
                acks.received(delivery.delivery_tag);
                let spec = Arc::clone(&spec);
                let publisher = publisher.clone();
                // The channel closes when its last handle drops: each handler keeps it open,
                // through `acks`, until its delivery is settled.
                let acks = Arc::clone(&acks);
                tracker.spawn(async move {
                    process(&spec, &publisher, &acks, delivery).await;
                    drop((slot, acks));
                });
            }
            Some(Err(err)) => break Ended::Failed(format!("consumer on '{queue}' failed: {err}")),
            None => {
                break Ended::Failed(format!(
                    "consumer on '{queue}' ended (cancelled by the broker or connection lost)"
                ));
            }
        }
    };
    if matches!(ended, Ended::Stopped) {
        // Stop the broker from pushing more; unstarted prefetched messages are requeued when the
        // channel closes after in-flight handlers settle.
        let _ = channel
            .basic_cancel(tag, BasicCancelOptions::default())
            .await;
    }
    ended
}

/// Handles one delivery and settles it.
async fn process(spec: &ConsumerSpec, publisher: &Publisher, acks: &Acks, delivery: Delivery) {
    let queue = spec.queue.name.as_str();
    let props = &delivery.properties;
    let meta = Meta {
        queue: queue.to_owned(),
        message_id: props.message_id().as_ref().map(ToString::to_string),
        correlation_id: props.correlation_id().as_ref().map(ToString::to_string),
        app_id: props.app_id().as_ref().map(ToString::to_string),
        retry_count: headers::retry_count(props),
        redelivered: delivery.redelivered,
        headers: props.headers().clone().unwrap_or_default(),
    };
    let trace = headers::text(Some(&meta.headers), headers::TRACEPARENT)
        .and_then(|text| TraceParent::parse(&text))
        .unwrap_or_else(TraceParent::root);
    let span = tracing::info_span!(
        "delivery",
        queue = %queue,
        message_id = meta.message_id.as_deref().unwrap_or(""),
        correlation_id = meta.correlation_id.as_deref().unwrap_or(""),
        retry_count = meta.retry_count,
        trace_id = %trace.trace_id(),
    );
    let handled = async {
        let retry_count = meta.retry_count;
        let started = Instant::now();
        let attempt = match (spec.handle)(&delivery.data, meta) {
            Ok(handling) => handling.await,
            Err(error) => Attempt {
                outcome: Outcome::Malformed,
                error: Some(error),
            },
        };
        let elapsed = started.elapsed();
        let decision = decide(&spec.queue.retry, retry_count, attempt.outcome);
        metrics::histogram!("orderflow_handler_seconds", "queue" => queue.to_owned())
            .record(elapsed.as_secs_f64());
        metrics::counter!(
            "orderflow_deliveries_total",
            "queue" => queue.to_owned(),
            "outcome" => outcome_label(attempt.outcome)
        )
        .increment(1);
        match &attempt.error {
            None => tracing::debug!(?elapsed, "handled"),
            Some(error) => tracing::warn!(?elapsed, %error, ?decision, "handler failed"),
        }
        settle(
            publisher,
            acks,
            &delivery,
            queue,
            decision,
            attempt.error.as_deref(),
        )
        .await;
    }
    .instrument(span);
    // Events the handler publishes continue this delivery's trace.
    trace.scope(handled).await;
}

fn outcome_label(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Handled => "handled",
        Outcome::Retryable => "retryable",
        Outcome::Rejected => "rejected",
        Outcome::Malformed => "malformed",
    }
}
