//! The supervisor: connect, declare the topology, run every consumer, and on any failure start
//! over on a fresh connection with backoff; on shutdown drain in-flight handlers and close.

use crate::connection::{BrokerConfig, Cursor, Readiness, connect_any, reconnect_backoff};
use crate::consumer::{ConsumerSpec, Ended, Stopping, consume};
use crate::error::BrokerError;
use crate::failure::FailedBy;
use crate::publisher::Publisher;
use crate::topology::Topology;
use crate::version::{self, BrokerVersion};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use lapin::{Connection, Event};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A session that lasted this long resets the reconnect backoff.
const HEALTHY_SESSION: Duration = Duration::from_secs(30);

/// How long a lost session's cancelled handlers get to unwind before the next session consumes.
const ABANDON_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs consumers with recovery and shares a publisher; see the crate docs for the guarantees.
pub struct Runtime {
    config: BrokerConfig,
    topology: Topology,
    consumers: Vec<Arc<ConsumerSpec>>,
    publisher: Publisher,
    readiness: Readiness,
    /// Where the consumer connection's next attempt starts (a cluster's nodes in turn).
    cursor: Cursor,
    failed_by: Arc<FailedBy>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("app_id", &self.config.app_id)
            .field("consumers", &self.consumers.len())
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// A runtime for `config`; nothing connects until [`Runtime::run`].
    ///
    /// # Errors
    /// When the publisher's pool cannot be built from the URL.
    pub fn new(config: BrokerConfig) -> Result<Self, BrokerError> {
        let publisher = Publisher::new(&config)?;
        let failed_by = Arc::new(FailedBy::new(
            &config.host,
            &config.app_id,
            config.app_version.as_deref(),
        ));
        Ok(Self {
            failed_by,
            config,
            topology: Topology::default(),
            consumers: Vec::new(),
            publisher,
            readiness: Readiness::default(),
            cursor: Cursor::default(),
        })
    }

    /// Adds exchanges and queues to declare on every (re)connect.
    #[must_use]
    pub fn with_topology(mut self, topology: Topology) -> Self {
        self.topology = std::mem::take(&mut self.topology).merge(topology);
        self
    }

    /// Adds a consumer; its queue joins the topology.
    #[must_use]
    pub fn with_consumer(mut self, consumer: ConsumerSpec) -> Self {
        self.topology = std::mem::take(&mut self.topology)
            .merge(Topology::default().queue(consumer.queue.clone()));
        self.consumers.push(Arc::new(consumer));
        self
    }

    /// The shared publisher (also used to store retry and dead-letter copies).
    #[must_use]
    pub fn publisher(&self) -> Publisher {
        self.publisher.clone()
    }

    /// The readiness flag: true while connected with every consumer running.
    #[must_use]
    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// Runs until `shutdown` completes, reconnecting as often as needed.
    ///
    /// # Errors
    /// Only for failures a reconnect cannot fix, such as a queue declared with other arguments.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), BrokerError> {
        tokio::pin!(shutdown);
        let mut delays = reconnect_backoff();
        let result = loop {
            let opened = tokio::select! {
                () = &mut shutdown => break Ok(()),
                opened = self.open() => opened,
            };
            let mut session = match opened {
                Ok(session) => session,
                Err(err) if err.is_recoverable() => {
                    let delay = delays.next().unwrap_or(Duration::from_secs(5));
                    tracing::warn!(error = %err, ?delay, "broker unavailable; reconnecting");
                    tokio::select! {
                        () = &mut shutdown => break Ok(()),
                        () = tokio::time::sleep(delay) => continue,
                    }
                }
                Err(err) => break Err(err),
            };
            let opened_at = std::time::Instant::now();
            self.readiness.set(true);
            tracing::info!(consumers = self.consumers.len(), "connected and consuming");
            let failure = tokio::select! {
                () = &mut shutdown => None,
                reason = session.failure() => Some(reason),
            };
            self.readiness.set(false);
            match failure {
                None => {
                    session.shutdown(self.config.shutdown_timeout).await;
                    break Ok(());
                }
                Some(reason) => {
                    session.abandon().await;
                    // Back off unless the session was healthy for a while, so that a failure
                    // that recurs at once (a consumer refused or cancelled on every attempt)
                    // does not spin.
                    if opened_at.elapsed() > HEALTHY_SESSION {
                        delays = reconnect_backoff();
                    }
                    let delay = delays.next().unwrap_or(Duration::from_secs(5));
                    tracing::warn!(%reason, ?delay, "lost the broker; reconnecting");
                    tokio::select! {
                        () = &mut shutdown => break Ok(()),
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        };
        self.publisher.close().await;
        tracing::info!("broker runtime stopped");
        result
    }

    async fn open(&self) -> Result<Connected, BrokerError> {
        let (connection, address) = connect_any(
            &self.config.url,
            &self.config.tls,
            &self.cursor,
            &self.config.app_id,
            "consumer",
        )
        .await?;
        let version = match version::detect(&address).await {
            Some(version) => {
                tracing::info!(%version, "broker version");
                version
            }
            None => {
                let version = BrokerVersion::OLDEST_SUPPORTED;
                tracing::warn!(assumed = %version, "cannot read the broker's version (TLS or no answer); declaring for the oldest supported");
                version
            }
        };
        let events = connection.events_listener().boxed();
        let channel = connection.create_channel().await?;
        match self.topology.declare(&channel, version).await {
            Ok(()) => {
                let _ = channel.close(200, "topology declared".into()).await;
            }
            Err(err) if err.is_access_refused() => {
                // A least-privilege user: the topology was applied by a deploy step.
                self.topology.verify(&connection).await?;
                tracing::info!("may not declare the topology; every exchange and queue is there");
            }
            Err(err) => return Err(err.into()),
        }
        let stopping = Stopping {
            stop: CancellationToken::new(),
            cancel: CancellationToken::new(),
        };
        let tracker = TaskTracker::new();
        let mut loops = JoinSet::new();
        for spec in &self.consumers {
            let channel = connection.create_channel().await?;
            loops.spawn(consume(
                channel,
                Arc::clone(spec),
                self.publisher.clone(),
                Arc::clone(&self.failed_by),
                tracker.clone(),
                stopping.clone(),
            ));
        }
        Ok(Connected {
            connection,
            events,
            loops,
            tracker,
            stopping,
        })
    }
}

/// One connection's worth of consumers.
struct Connected {
    connection: Connection,
    events: BoxStream<'static, Event>,
    loops: JoinSet<Ended>,
    tracker: TaskTracker,
    stopping: Stopping,
}

impl Connected {
    /// Waits for the first sign that the connection or a consumer is gone.
    async fn failure(&mut self) -> String {
        loop {
            tokio::select! {
                Some(ended) = self.loops.join_next(), if !self.loops.is_empty() => {
                    return match ended {
                        Ok(Ended::Failed(reason)) => reason,
                        Ok(Ended::Stopped) => "consumer stopped unexpectedly".to_owned(),
                        Err(err) => format!("consumer task failed: {err}"),
                    };
                }
                event = self.events.next() => match event {
                    // A channel's error (a declaration refused, a passive check missing) leaves
                    // the connection up; a consumer's channel ending ends its loop above.
                    Some(Event::Error(err)) if err.is_amqp_soft_error() => {
                        tracing::debug!(error = %err, "a channel closed; the connection stays");
                    }
                    Some(Event::Error(err)) => return format!("connection error: {err}"),
                    Some(Event::ConnectionBlocked(reason)) => {
                        tracing::warn!(%reason, "the broker blocked publishing on this connection");
                    }
                    Some(_) => {}
                    None => return "connection closed".to_owned(),
                },
            }
        }
    }

    /// Stops consuming, lets in-flight handlers settle (up to `timeout`), then closes.
    async fn shutdown(mut self, timeout: Duration) {
        self.stopping.stop.cancel();
        while self.loops.join_next().await.is_some() {}
        self.tracker.close();
        let in_flight = self.tracker.len();
        if tokio::time::timeout(timeout, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                in_flight = self.tracker.len(),
                "handlers still running at the shutdown timeout; their messages will be redelivered"
            );
            self.stopping.cancel.cancel();
            let _ = tokio::time::timeout(ABANDON_TIMEOUT, self.tracker.wait()).await;
        } else {
            tracing::info!(in_flight, "in-flight handlers settled");
        }
        // Everything is settled: a broker that never confirms the close must not hold the exit.
        if tokio::time::timeout(
            crate::connection::CLOSE_TIMEOUT,
            self.connection.close(200, "shutdown".into()),
        )
        .await
        .is_err()
        {
            tracing::warn!("the broker did not confirm closing the connection; leaving it");
        }
    }

    /// Gives up on a broken connection: cancels every running handler and waits (bounded) until
    /// they are gone, so the next session never runs a second copy of a message beside one from
    /// this session; their unsettled messages return to their queues broker-side.
    async fn abandon(mut self) {
        self.stopping.stop.cancel();
        self.stopping.cancel.cancel();
        self.loops.abort_all();
        while self.loops.join_next().await.is_some() {}
        self.tracker.close();
        if tokio::time::timeout(ABANDON_TIMEOUT, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::error!(
                running = self.tracker.len(),
                "handlers of the lost session did not stop in time (blocking code in a handler?)"
            );
        }
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            self.connection.close(320, "reconnecting".into()),
        )
        .await;
    }
}
