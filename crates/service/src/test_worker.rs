//! Running a whole worker in a test (feature `test-util`): on a listener bound to port 0 and
//! with a broker that never answers, so it serves its API from its store and stays not ready.

use crate::args::Settings;
use crate::test_http::fetch;
use axum::http::StatusCode;
use broker::{BrokerConfig, RetryPolicy};
use serde_json::json;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// How long a worker gets to stop once told.
const STOP_WITHIN: Duration = Duration::from_secs(30);

/// Settings for worker `app_id` with its store at `database_url` and a broker at a port nothing
/// listens on (1): the runtime keeps reconnecting. The HTTP address is unused: the test passes
/// its listener to the worker's `run`.
#[must_use]
pub fn offline(app_id: &str, database_url: &str) -> Settings {
    Settings {
        broker: BrokerConfig::new("amqp://guest:guest@127.0.0.1:1/%2f", app_id),
        database_url: database_url.to_owned(),
        sqlite_synchronous: "normal".to_owned(),
        postgres_group_commit: false,
        http_addr: ([127, 0, 0, 1], 0).into(),
        retry: RetryPolicy::default(),
        prefetch: 1,
        concurrency: 1,
        worker_threads: 1,
        // On, as by default: a worker's tests then also see the pruning task stop on shutdown.
        retention: Some(Duration::from_secs(168 * 3600)),
        publisher_users: std::collections::BTreeMap::new(),
        operator_users: Vec::new(),
    }
}

/// A worker running in the background until [`TestWorker::stop`].
#[derive(Debug)]
pub struct TestWorker {
    /// Where it serves HTTP.
    pub addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl TestWorker {
    /// Binds port 0 and spawns `run` (a worker's `run` with everything but the listener and the
    /// shutdown given) on it.
    ///
    /// # Panics
    /// When no port can be bound.
    pub async fn start<F, Fut>(run: F) -> Self
    where
        F: FnOnce(TcpListener, WaitForCancellationFutureOwned) -> Fut,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding port 0");
        let addr = listener.local_addr().expect("a bound address");
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(listener, stop.clone().cancelled_owned()));
        Self { addr, stop, task }
    }

    /// Asserts `/readyz` answers 503: the store is reachable, the broker is not.
    ///
    /// # Panics
    /// When it says otherwise.
    pub async fn assert_waiting_for_the_broker(&self) {
        let (status, ready) = fetch(self.addr, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(ready, json!({"broker": false, "store": true}));
    }

    /// Shuts the worker down and waits for `run` to return.
    ///
    /// # Panics
    /// When it does not stop within 30 s or returns an error.
    pub async fn stop(self) {
        self.stop.cancel();
        let stopped = tokio::time::timeout(STOP_WITHIN, self.task)
            .await
            .unwrap_or_else(|_| panic!("the worker did not stop within {STOP_WITHIN:?}"));
        stopped
            .expect("the worker's task")
            .expect("the worker's run");
    }
}
