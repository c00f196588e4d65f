//! Publishing with confirms: persistent, mandatory, pipelined on one confirm channel, retried
//! through connection failures; unroutable and nacked publishes are errors.

use crate::connection::{BrokerConfig, properties, with_frame_max};
use crate::error::BrokerError;
use crate::event::Event;
use crate::message::Outgoing;
use backon::{BackoffBuilder, ExponentialBuilder};
use deadpool_lapin::{Pool, Runtime};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{Channel, Confirmation};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Publishes messages and waits for the broker's confirm; cheap to clone and share.
#[derive(Clone)]
pub struct Publisher {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    app_id: String,
    confirm_timeout: Duration,
    retry_for: Duration,
    link: Mutex<Option<Link>>,
    generations: AtomicU64,
}

/// The pooled connection and the confirm channel opened on it.
struct Link {
    channel: Channel,
    generation: u64,
    connection: deadpool_lapin::Object,
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
    /// When the URL cannot be used to build a connection pool.
    pub fn new(config: &BrokerConfig) -> Result<Self, BrokerError> {
        let app_id = config.app_id.clone();
        let pool_config = deadpool_lapin::Config {
            url: Some(with_frame_max(&config.url)),
            ..deadpool_lapin::Config::default()
        };
        let props_app_id = app_id.clone();
        let pool = pool_config
            .create_pool(
                move || properties(&props_app_id, "publisher"),
                Runtime::Tokio1,
            )
            .map_err(|err| BrokerError::Pool(err.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                app_id,
                confirm_timeout: config.confirm_timeout,
                retry_for: config.publish_retry_for,
                link: Mutex::new(None),
                generations: AtomicU64::new(0),
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
        let deadline = Instant::now() + self.inner.retry_for;
        let mut delays = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(50))
            .with_max_delay(Duration::from_secs(2))
            .with_jitter()
            .without_max_times()
            .build();
        loop {
            // Bound each attempt (connecting included) by what is left of the window.
            let left = deadline
                .saturating_duration_since(Instant::now())
                .max(self.inner.confirm_timeout);
            let result = match tokio::time::timeout(left, self.publish_once(message)).await {
                Ok(result) => result,
                Err(_) => Err(BrokerError::ConfirmTimeout(left)),
            };
            record(message, &result);
            match result {
                Err(err) if err.is_recoverable() && Instant::now() < deadline => {
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

    async fn publish_once(&self, message: &Outgoing) -> Result<(), BrokerError> {
        let (channel, generation) = self.channel().await?;
        let properties = message.properties.clone().with_delivery_mode(2);
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
            .await;
        let pending = match pending {
            Ok(pending) => pending,
            Err(err) => return Err(self.discard(generation, err.into()).await),
        };
        let confirmation = match tokio::time::timeout(self.inner.confirm_timeout, pending).await {
            Ok(Ok(confirmation)) => confirmation,
            Ok(Err(err)) => return Err(self.discard(generation, err.into()).await),
            Err(_) => {
                let err = BrokerError::ConfirmTimeout(self.inner.confirm_timeout);
                return Err(self.discard(generation, err).await);
            }
        };
        match confirmation {
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
        }
    }

    /// The shared confirm channel, opened on demand.
    async fn channel(&self) -> Result<(Channel, u64), BrokerError> {
        let mut link = self.inner.link.lock().await;
        if let Some(current) = link.as_ref()
            && current.channel.status().connected()
        {
            return Ok((current.channel.clone(), current.generation));
        }
        let generation = self.inner.generations.fetch_add(1, Ordering::Relaxed);
        *link = None;
        let connection = self.inner.pool.get().await.map_err(|err| match err {
            deadpool_lapin::PoolError::Closed => BrokerError::Closed,
            err => BrokerError::Pool(err.to_string()),
        })?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        *link = Some(Link {
            channel: channel.clone(),
            generation,
            connection,
        });
        Ok((channel, generation))
    }

    /// Drops the channel of `generation` (if still current) so the next publish opens a new one.
    async fn discard(&self, generation: u64, err: BrokerError) -> BrokerError {
        let stale = {
            let mut link = self.inner.link.lock().await;
            if link.as_ref().is_some_and(|l| l.generation == generation) {
                link.take()
            } else {
                None
            }
        };
        if let Some(stale) = stale {
            let _ = stale.channel.close(200, "publish failed".into()).await;
        }
        err
    }

    /// Closes the channel and the pooled connections.
    pub async fn close(&self) {
        if let Some(link) = self.inner.link.lock().await.take() {
            let closing = async {
                let _ = link.channel.close(200, "shutdown".into()).await;
                let _ = link.connection.close(200, "shutdown".into()).await;
            };
            if tokio::time::timeout(crate::connection::CLOSE_TIMEOUT, closing)
                .await
                .is_err()
            {
                tracing::warn!("the broker did not confirm closing the publisher; leaving it");
            }
        }
        self.inner.pool.close();
    }
}

fn record(message: &Outgoing, result: &Result<(), BrokerError>) {
    let outcome = match result {
        Ok(()) => "confirmed",
        Err(BrokerError::Unroutable { .. }) => "unroutable",
        Err(BrokerError::Nacked { .. }) => "nacked",
        Err(_) => "failed",
    };
    metrics::counter!(
        "orderflow_published_total",
        "exchange" => message.exchange.clone(),
        "outcome" => outcome
    )
    .increment(1);
}
