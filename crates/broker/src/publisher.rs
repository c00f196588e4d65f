//! Publishing with confirms: persistent, mandatory, retried through connection failures;
//! unroutable and nacked publishes are errors.
//!
//! Publishes go out on a pool of confirm channels ("lanes"), each carrying one publish at a
//! time, so a `basic.return` can only belong to the one publish in flight on its channel. On a
//! single pipelined channel it cannot be told apart: lapin hands a waiting return to whichever
//! confirm completes next, and a broker's `multiple` ack completes several at once, so an
//! unroutable copy could be reported confirmed (and its original acked: a lost message) while a
//! routable publish was reported unroutable.

use crate::connection::{BrokerConfig, Cursor, connect_any};
use crate::error::BrokerError;
use crate::event::Event;
use crate::message::Outgoing;
use crate::metrics::MetricNames;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Confirmation};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, Semaphore};
use tracing::Instrument;

/// Publishes messages and waits for the broker's confirm; cheap to clone and share.
#[derive(Clone)]
pub struct Publisher {
    inner: Arc<Inner>,
}

struct Inner {
    /// The broker's address (or a cluster's, comma-separated).
    url: String,
    tls: crate::tls::Tls,
    /// Where the next connection attempt starts.
    cursor: Cursor,
    app_id: String,
    /// The login every message's `user_id` names (the broker refuses any other).
    user_id: Option<String>,
    confirm_timeout: Duration,
    retry_for: Duration,
    link: Mutex<Option<Link>>,
    /// Confirm channels with nothing in flight.
    idle: std::sync::Mutex<Vec<Lane>>,
    /// One permit per lane: publishes in flight at once.
    lanes: Semaphore,
    generations: AtomicU64,
    metric_names: &'static MetricNames,
}

/// The connection the lanes are opened on.
struct Link {
    generation: u64,
    connection: lapin::Connection,
}

/// A confirm channel that carries one publish at a time.
struct Lane {
    channel: Channel,
    generation: u64,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("app_id", &self.inner.app_id)
            .finish_non_exhaustive()
    }
}

impl Publisher {
    /// A publisher for `config.url`; it connects on first use.
    ///
    /// # Errors
    /// When the URL names no broker.
    pub fn new(config: &BrokerConfig) -> Result<Self, BrokerError> {
        let addresses = crate::connection::addresses(&config.url);
        if addresses.is_empty() {
            return Err(BrokerError::NoAddress);
        }
        if let Some(bad) = addresses
            .iter()
            .find(|address| address.parse::<lapin::uri::AMQPUri>().is_err())
        {
            return Err(BrokerError::InvalidUrl(crate::connection::redact(bad)));
        }
        Ok(Self {
            inner: Arc::new(Inner {
                url: config.url.clone(),
                tls: config.tls.clone(),
                cursor: Cursor::default(),
                app_id: config.app_id.clone(),
                user_id: crate::connection::login_user(&config.url),
                confirm_timeout: config.confirm_timeout,
                retry_for: config.publish_retry_for,
                link: Mutex::new(None),
                idle: std::sync::Mutex::new(Vec::new()),
                lanes: Semaphore::new(config.publish_channels.max(1)),
                generations: AtomicU64::new(0),
                metric_names: MetricNames::under(&config.metric_prefix),
            }),
        })
    }

    /// The `app_id` stamped on events.
    #[must_use]
    pub fn app_id(&self) -> &str {
        &self.inner.app_id
    }

    /// Serializes and publishes a typed event; returns its `message_id` once confirmed.
    ///
    /// # Errors
    /// See [`Publisher::publish`].
    pub async fn publish_event<E: Event>(&self, event: &E) -> Result<String, BrokerError> {
        let message = Outgoing::event(event, &self.inner.app_id)?;
        let id = message.message_id().unwrap_or_default().to_owned();
        self.publish(&message).await?;
        Ok(id)
    }

    /// Publishes and waits for the confirm, retrying on a fresh channel through connection
    /// failures for the configured window.
    ///
    /// # Errors
    /// [`BrokerError::Unroutable`] when no queue is bound, [`BrokerError::Nacked`] when the broker
    /// refuses the message, and a recoverable error when the broker stayed unreachable.
    pub async fn publish(&self, message: &Outgoing) -> Result<(), BrokerError> {
        let span = publish_span(message);
        let mut properties = message.properties.clone();
        // The message carries this publish's own context: its consumer's span is a child of it.
        let mut headers = properties.headers().clone().unwrap_or_default();
        crate::trace::inject_headers(&span, &mut headers);
        properties = properties.with_headers(headers);
        self.publish_within_window(message, &properties)
            .instrument(span)
            .await
    }

    async fn publish_within_window(
        &self,
        message: &Outgoing,
        properties: &BasicProperties,
    ) -> Result<(), BrokerError> {
        let deadline = Instant::now() + self.inner.retry_for;
        let mut delays =
            crate::backoff::jittered(Duration::from_millis(50), Duration::from_secs(2));
        loop {
            // Bound each attempt (connecting included) by what is left of the window.
            let left = deadline
                .saturating_duration_since(Instant::now())
                .max(self.inner.confirm_timeout);
            let result =
                match tokio::time::timeout(left, self.publish_once(message, properties)).await {
                    Ok(result) => result,
                    Err(_) => Err(BrokerError::ConfirmTimeout(left)),
                };
            record(self.inner.metric_names, message, &result);
            match result {
                // A nack says the broker could not take the message now (a quorum queue
                // electing a new leader after a node loss, a queue refusing while full): the
                // same publish may be taken a moment later.
                Err(err)
                    if (err.is_recoverable() || matches!(err, BrokerError::Nacked { .. }))
                        && Instant::now() < deadline =>
                {
                    tracing::warn!(error = %err, exchange = %message.exchange, "publish failed; retrying");
                    let delay = delays.next().unwrap_or(Duration::from_secs(1));
                    tokio::time::sleep(
                        delay.min(deadline.saturating_duration_since(Instant::now())),
                    )
                    .await;
                }
                other => return other,
            }
        }
    }

    async fn publish_once(
        &self,
        message: &Outgoing,
        properties: &BasicProperties,
    ) -> Result<(), BrokerError> {
        let _in_flight = self
            .inner
            .lanes
            .acquire()
            .await
            .map_err(|_| BrokerError::Closed)?;
        let lane = self.lane().await?;
        match self.publish_on(&lane.channel, message, properties).await {
            Ok(Err(nacked @ BrokerError::Nacked { .. })) => {
                // The channel's quorum-queue client may still aim at a leader that is gone (a
                // node stopped): on it every retry is nacked again after a timeout, for as long
                // as the channel lives. The next attempt takes a fresh channel.
                self.discard(lane, &nacked).await;
                Err(nacked)
            }
            Ok(outcome) => {
                // A return leaves the channel usable, with nothing left in flight.
                self.idle().push(lane);
                outcome
            }
            Err(err) => {
                // Its confirm may still arrive: the channel is never used again.
                self.discard(lane, &err).await;
                Err(err)
            }
        }
    }

    /// Publishes on `channel` and waits for the confirm. The outer error means the channel is
    /// spoiled (failed, or a confirm still outstanding); the inner one is the broker's verdict.
    async fn publish_on(
        &self,
        channel: &Channel,
        message: &Outgoing,
        properties: &BasicProperties,
    ) -> Result<Result<(), BrokerError>, BrokerError> {
        let mut properties = properties.clone().with_delivery_mode(2);
        if let Some(user) = &self.inner.user_id {
            properties = properties.with_user_id(user.as_str().into());
        }
        let options = BasicPublishOptions {
            mandatory: true,
            ..BasicPublishOptions::default()
        };
        let pending = channel
            .basic_publish(
                message.exchange.as_str().into(),
                message.routing_key.as_str().into(),
                options,
                &message.body,
                properties,
            )
            .await?;
        let confirmation = tokio::time::timeout(self.inner.confirm_timeout, pending)
            .await
            .map_err(|_| BrokerError::ConfirmTimeout(self.inner.confirm_timeout))??;
        Ok(match confirmation {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(returned)) => Err(BrokerError::Unroutable {
                exchange: message.exchange.clone(),
                routing_key: message.routing_key.clone(),
                reply: returned.reply_text.to_string(),
            }),
            Confirmation::Nack(_) | Confirmation::NotRequested => Err(BrokerError::Nacked {
                exchange: message.exchange.clone(),
                routing_key: message.routing_key.clone(),
            }),
        })
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Lane>> {
        self.inner
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// An idle lane on the current connection, or a new one.
    async fn lane(&self) -> Result<Lane, BrokerError> {
        let current = self.inner.generations.load(Ordering::Acquire);
        loop {
            let Some(lane) = self.idle().pop() else { break };
            if lane.generation == current && lane.channel.status().connected() {
                return Ok(lane);
            }
        }
        let mut link = self.inner.link.lock().await;
        if link
            .as_ref()
            .is_none_or(|l| !l.connection.status().connected())
        {
            *link = None;
            if self.inner.lanes.is_closed() {
                return Err(BrokerError::Closed);
            }
            let (connection, _) = connect_any(
                &self.inner.url,
                &self.inner.tls,
                &self.inner.cursor,
                &self.inner.app_id,
                "publisher",
            )
            .await?;
            let generation = self.inner.generations.fetch_add(1, Ordering::AcqRel) + 1;
            *link = Some(Link {
                generation,
                connection,
            });
        }
        let link = link.as_ref().expect("set above");
        let channel = link.connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Lane {
            channel,
            generation: link.generation,
        })
    }

    /// Closes a spoiled lane; a connection-level failure also drops the connection (if still
    /// current) so the next publish connects afresh.
    async fn discard(&self, lane: Lane, err: &BrokerError) {
        if err.is_recoverable() {
            let mut link = self.inner.link.lock().await;
            if link
                .as_ref()
                .is_some_and(|l| l.generation == lane.generation)
                && !lane.channel.status().connected()
            {
                *link = None;
            }
        }
        let _ = tokio::time::timeout(
            crate::connection::CLOSE_TIMEOUT,
            lane.channel.close(200, "publish failed".into()),
        )
        .await;
    }

    /// The names its runtime's metrics are recorded under.
    pub(crate) fn metric_names(&self) -> &'static MetricNames {
        self.inner.metric_names
    }

    /// Closes the lanes and the connection; later publishes fail with
    /// [`BrokerError::Closed`].
    pub async fn close(&self) {
        self.inner.lanes.close();
        let lanes: Vec<Lane> = std::mem::take(&mut *self.idle());
        let link = self.inner.link.lock().await.take();
        let closing = async {
            for lane in lanes {
                let _ = lane.channel.close(200, "shutdown".into()).await;
            }
            if let Some(link) = link {
                let _ = link.connection.close(200, "shutdown".into()).await;
            }
        };
        if tokio::time::timeout(crate::connection::CLOSE_TIMEOUT, closing)
            .await
            .is_err()
        {
            tracing::warn!("the broker did not confirm closing the publisher; leaving it");
        }
    }
}

/// A producer span with the messaging semantic conventions' attributes.
fn publish_span(message: &Outgoing) -> tracing::Span {
    let properties = &message.properties;
    let text =
        |value: Option<&lapin::types::ShortString>| value.map_or("", |v| v.as_str()).to_owned();
    let destination = if message.exchange.is_empty() {
        "(default)"
    } else {
        &message.exchange
    };
    tracing::info_span!(
        "publish",
        otel.name = %format_args!("publish {destination}"),
        otel.kind = "producer",
        messaging.system = "rabbitmq",
        messaging.operation.type = "send",
        messaging.destination.name = %message.exchange,
        messaging.rabbitmq.destination.routing_key = %message.routing_key,
        messaging.message.id = text(properties.message_id().as_ref()),
        messaging.message.conversation_id = text(properties.correlation_id().as_ref()),
        messaging.message.body.size = message.body.len(),
    )
}

fn record(names: &MetricNames, message: &Outgoing, result: &Result<(), BrokerError>) {
    let outcome = match result {
        Ok(()) => "confirmed",
        Err(BrokerError::Unroutable { .. }) => "unroutable",
        Err(BrokerError::Nacked { .. }) => "nacked",
        Err(_) => "failed",
    };
    crate::metrics::increment(
        names.published,
        &[("exchange", &message.exchange), ("outcome", outcome)],
    );
}
