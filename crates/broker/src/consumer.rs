//! The consumer runtime for one queue: bounded concurrency, decoding, the handler call in a span
//! (panics caught, time bounded), holding deliveries through a dependency outage, the retry
//! decision and settlement.

use crate::acks::Acks;
use crate::codec::{Decode, Json};
use crate::failure::{self, FailedBy, Failure};
use crate::handler::{Handler, HandlerError};
use crate::headers;
use crate::message::{Message, Meta};
use crate::metrics::{MetricNames, increment, record, set};
use crate::publisher::Publisher;
use crate::retry::{Decision, Outcome, decide};
use crate::settle::{Settler, settle};
use crate::topology::QueueSpec;
use crate::trace;
use crate::trust::Trust;
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};
use lapin::Channel;
use lapin::message::Delivery;
use lapin::options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use serde::de::DeserializeOwned;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// Tells whether an error a handler returned means a dependency is down (see
/// [`ConsumerSpec::with_outage_check`]).
pub type OutageCheck = fn(&(dyn std::error::Error + 'static)) -> bool;

/// One consumer: a queue (with its retry policy), prefetch, concurrency and a handler.
pub struct ConsumerSpec {
    pub(crate) queue: QueueSpec,
    pub(crate) prefetch: u16,
    pub(crate) concurrency: usize,
    pub(crate) handler_timeout: Duration,
    pub(crate) max_hold: Duration,
    pub(crate) outage_check: Option<OutageCheck>,
    /// Who may have published what it takes; `None` takes anyone's.
    pub(crate) trust: Option<Trust>,
    pub(crate) handle: ErasedHandler,
}

/// What one attempt came to, with the failure its copy records.
pub(crate) struct Attempt {
    outcome: Outcome,
    failure: Option<Failure>,
}

/// Decodes a body and, if it decodes, returns the handler's future; a panic in either is the
/// caller's to catch.
pub(crate) type ErasedHandler = Arc<
    dyn Fn(&[u8], Meta) -> Result<BoxFuture<'static, Result<(), HandlerError>>, String>
        + Send
        + Sync,
>;

impl ConsumerSpec {
    /// Consumes `queue`, decoding each body as JSON into `E` and passing it to `handler`.
    /// Defaults: prefetch 32, concurrency 8, a 60 s handler timeout, deliveries held through an
    /// outage for up to 10 min.
    pub fn new<E, H>(queue: QueueSpec, handler: H) -> Self
    where
        E: DeserializeOwned + Send + 'static,
        H: Handler<E>,
    {
        Self::with_decoder(queue, Json, handler)
    }

    /// As [`ConsumerSpec::new`], decoding each body with `decoder` (e.g. [`Raw`](crate::Raw)
    /// bytes, or a Protobuf closure).
    pub fn with_decoder<E, D, H>(queue: QueueSpec, decoder: D, handler: H) -> Self
    where
        E: Send + 'static,
        D: Decode<E>,
        H: Handler<E>,
    {
        let handler = Arc::new(handler);
        let handle: ErasedHandler = Arc::new(move |body: &[u8], meta: Meta| {
            let event = decoder
                .decode(body)
                .map_err(|err| format!("cannot decode body: {err}"))?;
            let handler = Arc::clone(&handler);
            // `handle` runs inside the future, so a panic in its synchronous part is caught with
            // the rest.
            Ok(async move { handler.handle(Message { event, meta }).await }.boxed())
        });
        Self {
            queue,
            prefetch: 32,
            concurrency: 8,
            handler_timeout: Duration::from_secs(60),
            max_hold: Duration::from_secs(600),
            outage_check: None,
            trust: None,
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

    /// Sets how long one handler call may take before it counts as a retryable failure. Keep it
    /// well below the broker's `consumer_timeout` (30 min by default), which would otherwise close
    /// the channel and redeliver everything on it.
    #[must_use]
    pub fn with_handler_timeout(mut self, timeout: Duration) -> Self {
        self.handler_timeout = timeout;
        self
    }

    /// Sets how long a delivery is held while its dependency is down before it is given back to
    /// the queue (below the broker's `consumer_timeout`).
    #[must_use]
    pub fn with_max_hold(mut self, hold: Duration) -> Self {
        self.max_hold = hold;
        self
    }

    /// Classifies ordinary (retryable) handler errors: those for which `check` is true (e.g. a
    /// store's connection error) are outages, handled like [`HandlerError::Unavailable`].
    #[must_use]
    pub fn with_outage_check(mut self, check: OutageCheck) -> Self {
        self.outage_check = Some(check);
        self
    }

    /// Takes messages only from `trust`'s publisher (or copies of them): any other is rejected
    /// to the DLQ (error type `untrusted-publisher`) and never reaches the handler.
    #[must_use]
    pub fn with_trust(mut self, trust: Trust) -> Self {
        self.trust = Some(trust);
        self
    }

    /// The queue consumed.
    #[must_use]
    pub fn queue(&self) -> &QueueSpec {
        &self.queue
    }

    /// Runs the handler once on `body`: decoding, panics and the timeout included.
    async fn attempt(&self, body: &[u8], meta: Meta) -> Attempt {
        if let Some(trust) = &self.trust
            && let Err(why) = trust.check(
                meta.user_id.as_deref(),
                headers::text(
                    Some(&meta.headers),
                    &self.queue.naming.header(headers::ORIGINAL_USER_ID),
                )
                .as_deref(),
            )
        {
            return Attempt::failed(
                Outcome::Rejected,
                Failure::new(failure::UNTRUSTED_PUBLISHER, &why),
            );
        }
        let started = std::panic::catch_unwind(AssertUnwindSafe(|| (self.handle)(body, meta)));
        let handling = match started {
            Ok(Ok(handling)) => handling,
            Ok(Err(error)) => {
                return Attempt::failed(
                    Outcome::Malformed,
                    Failure::new(failure::MALFORMED, &error),
                );
            }
            Err(panic) => return Attempt::panicked(&*panic),
        };
        let finished = tokio::time::timeout(
            self.handler_timeout,
            AssertUnwindSafe(handling).catch_unwind(),
        )
        .await;
        match finished {
            Err(_) => Attempt::failed(
                Outcome::Retryable,
                Failure::new(
                    failure::TIMEOUT,
                    &format!("handler timed out after {:?}", self.handler_timeout),
                ),
            ),
            Ok(Err(panic)) => Attempt::panicked(&*panic),
            Ok(Ok(Ok(()))) => Attempt {
                outcome: Outcome::Handled,
                failure: None,
            },
            Ok(Ok(Err(err))) => {
                let outcome = match &err {
                    HandlerError::Reject(_) => Outcome::Rejected,
                    HandlerError::Unavailable(_) => Outcome::Unavailable,
                    HandlerError::Retry(_) if self.is_outage(&err) => Outcome::Unavailable,
                    HandlerError::Retry(_) => Outcome::Retryable,
                };
                Attempt::failed(outcome, Failure::of(&err))
            }
        }
    }

    fn is_outage(&self, error: &HandlerError) -> bool {
        self.outage_check.is_some_and(|check| check(error.error()))
    }
}

impl Attempt {
    fn failed(outcome: Outcome, failure: Failure) -> Self {
        Self {
            outcome,
            failure: Some(failure),
        }
    }

    /// Any panic on a delivery's path is a retryable failure.
    fn panicked(panic: &(dyn std::any::Any + Send)) -> Self {
        Self::failed(
            Outcome::Retryable,
            Failure::new(
                failure::PANIC,
                &format!("handler panicked: {}", panic_text(panic)),
            ),
        )
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

/// How one session's consumers are stopped: `stop` ends consuming (in-flight handlers finish),
/// `cancel` also drops every running handler, leaving its delivery to the broker.
#[derive(Clone)]
pub(crate) struct Stopping {
    pub(crate) stop: CancellationToken,
    pub(crate) cancel: CancellationToken,
}

/// Consumes until `stop` fires or the stream fails; handlers run as tasks on `tracker`; copies
/// name `failed_by` as having failed them.
pub(crate) async fn consume(
    channel: Channel,
    spec: Arc<ConsumerSpec>,
    publisher: Publisher,
    failed_by: Arc<FailedBy>,
    tracker: TaskTracker,
    stopping: Stopping,
) -> Ended {
    let stop = &stopping.stop;
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
    let names = publisher.metric_names();
    let acks = Arc::new(Acks::new(channel.clone(), names));
    let slots = Arc::new(Semaphore::new(spec.concurrency));
    let pause = Pause::new(&queue, names);
    tracing::info!(queue = %queue, prefetch = spec.prefetch, concurrency = spec.concurrency, "consuming");
    let ended = loop {
        // While a delivery is held through an outage, take no new ones.
        tokio::select! {
            () = stop.cancelled() => break Ended::Stopped,
            () = pause.resumed() => {}
        }
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
                let failed_by = Arc::clone(&failed_by);
                // The channel closes when its last handle drops: each handler keeps it open,
                // through `acks`, until its delivery is settled.
                let acks = Arc::clone(&acks);
                let pause = pause.clone();
                let stopping = stopping.clone();
                tracker.spawn(async move {
                    let settler = Settler {
                        publisher: &publisher,
                        acks: &acks,
                        failed_by: &failed_by,
                    };
                    process(&spec, &settler, &pause, &stopping, delivery).await;
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

/// Handles one delivery and settles it. Cancelled (`stopping.cancel`), it returns at once and
/// leaves the delivery unsettled, so no copy of a message runs on after its session is gone.
async fn process(
    spec: &ConsumerSpec,
    settler: &Settler<'_>,
    pause: &Pause,
    stopping: &Stopping,
    delivery: Delivery,
) {
    let queue = spec.queue.name.as_str();
    let props = &delivery.properties;
    let meta = Meta {
        queue: queue.to_owned(),
        message_id: props.message_id().as_ref().map(ToString::to_string),
        correlation_id: props.correlation_id().as_ref().map(ToString::to_string),
        app_id: props.app_id().as_ref().map(ToString::to_string),
        user_id: props.user_id().as_ref().map(ToString::to_string),
        retry_count: headers::retry_count(props, &spec.queue.naming),
        redelivered: delivery.redelivered,
        headers: props.headers().clone().unwrap_or_default(),
    };
    let span = tracing::info_span!(
        "delivery",
        otel.name = %format_args!("process {queue}"),
        otel.kind = "consumer",
        messaging.system = "rabbitmq",
        messaging.operation.type = "process",
        messaging.destination.name = %queue,
        messaging.rabbitmq.destination.routing_key = %delivery.routing_key,
        messaging.message.body.size = delivery.data.len(),
        messaging.message.id = meta.message_id.as_deref().unwrap_or(""),
        messaging.message.conversation_id = meta.correlation_id.as_deref().unwrap_or(""),
        retry_count = meta.retry_count,
        trace_id = tracing::field::Empty,
    );
    // The message's context is the parent: the handler's publishes continue its trace.
    trace::follow_headers(&span, &meta.headers);
    let handled = async {
        let retry_count = meta.retry_count;
        let started = Instant::now();
        let Some(attempt) =
            attempt_through_outages(spec, &delivery.data, &meta, pause, stopping).await
        else {
            return;
        };
        let elapsed = started.elapsed();
        let decision = decide(&spec.queue.retry, retry_count, attempt.outcome);
        let names = settler.publisher.metric_names();
        record(
            names.handler_seconds,
            &[("queue", queue)],
            elapsed.as_secs_f64(),
        );
        increment(
            names.deliveries,
            &[
                ("queue", queue),
                ("outcome", outcome_label(attempt.outcome)),
            ],
        );
        record_decision(names, queue, decision);
        // Each is an event of the delivery's span as well as a log line.
        let (error, error_type) = attempt.failure.as_ref().map_or(("", ""), |failure| {
            (failure.message.as_str(), &*failure.error_type)
        });
        match decision {
            Decision::Ack if attempt.failure.is_none() => tracing::debug!(?elapsed, "handled"),
            Decision::Ack => tracing::warn!(?elapsed, error, error_type, "handler failed; acked"),
            Decision::Retry { tier } => tracing::warn!(
                ?elapsed,
                error,
                error_type,
                retry.tier = tier,
                retry.delay_ms = spec.queue.retry.delay(tier).as_millis(),
                "handler failed; retry"
            ),
            Decision::DeadLetter(reason) => tracing::warn!(
                ?elapsed,
                error,
                error_type,
                reason = reason.as_str(),
                "handler failed; dead-letter"
            ),
            Decision::GiveBack => {
                tracing::warn!(?elapsed, error, error_type, "handler failed; requeue");
            }
        }
        settle(
            settler,
            &delivery,
            &spec.queue,
            decision,
            attempt.failure.as_ref(),
            &stopping.cancel,
        )
        .await;
    }
    .instrument(span);
    tokio::select! {
        () = stopping.cancel.cancelled() => {}
        () = handled => {}
    }
}

/// Runs the handler; while it reports an outage, holds the delivery with the consumer paused and
/// runs it again with backoff, up to the spec's hold limit. `None` when stopped meanwhile (the
/// delivery stays unsettled).
async fn attempt_through_outages(
    spec: &ConsumerSpec,
    body: &[u8],
    meta: &Meta,
    pause: &Pause,
    stopping: &Stopping,
) -> Option<Attempt> {
    let mut held: Option<(Hold, Instant)> = None;
    let mut delays = crate::backoff::jittered(Duration::from_millis(100), Duration::from_secs(5));
    loop {
        let attempt = spec.attempt(body, meta.clone()).await;
        if attempt.outcome != Outcome::Unavailable {
            return Some(attempt);
        }
        let (_, since) = held.get_or_insert_with(|| (pause.hold(), Instant::now()));
        if since.elapsed() >= spec.max_hold {
            return Some(attempt);
        }
        let delay = delays.next().unwrap_or(Duration::from_secs(5));
        tracing::warn!(
            error = attempt.failure.as_ref().map_or("", |f| f.message.as_str()),
            ?delay,
            "dependency unavailable; holding the delivery"
        );
        tokio::select! {
            () = stopping.stop.cancelled() => return None,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// Pauses one consumer while any of its deliveries is held through an outage.
#[derive(Clone)]
struct Pause {
    held: Arc<watch::Sender<usize>>,
    queue: Arc<str>,
    names: &'static MetricNames,
}

/// One held delivery; dropping it releases the pause.
struct Hold(Pause);

impl Pause {
    fn new(queue: &str, names: &'static MetricNames) -> Self {
        Self {
            held: Arc::new(watch::Sender::new(0)),
            queue: queue.into(),
            names,
        }
    }

    fn hold(&self) -> Hold {
        self.held.send_modify(|held| {
            *held += 1;
            if *held == 1 {
                tracing::warn!(queue = %self.queue, "a dependency is down; pausing the consumer");
                set(self.names.consumer_paused, &[("queue", &self.queue)], 1.0);
            }
        });
        Hold(self.clone())
    }

    /// Returns once no delivery is held.
    async fn resumed(&self) {
        let mut held = self.held.subscribe();
        let _ = held.wait_for(|held| *held == 0).await;
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        let pause = &self.0;
        pause.held.send_modify(|held| {
            *held -= 1;
            if *held == 0 {
                tracing::info!(queue = %pause.queue, "dependency answers again; resuming the consumer");
                set(pause.names.consumer_paused, &[("queue", &pause.queue)], 0.0);
            }
        });
    }
}

/// Counts what the runtime does with a delivery, beside what its handler returned: an operator
/// alerts on dead letters by queue and reason, and on retries.
fn record_decision(names: &MetricNames, queue: &str, decision: Decision) {
    let label = match decision {
        Decision::Ack => "ack",
        Decision::Retry { .. } => "retry",
        Decision::DeadLetter(reason) => {
            increment(
                names.dead_letters,
                &[("queue", queue), ("reason", reason.as_str())],
            );
            "dead_letter"
        }
        Decision::GiveBack => "requeue",
    };
    increment(names.decisions, &[("queue", queue), ("decision", label)]);
}

fn outcome_label(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Handled => "handled",
        Outcome::Retryable => "retryable",
        Outcome::Rejected => "rejected",
        Outcome::Malformed => "malformed",
        Outcome::Unavailable => "unavailable",
    }
}
