//! Shared fixtures for the broker's integration tests: a test event, a recording handler, and a
//! runtime running in the background.
#![allow(dead_code, missing_docs)]

use orderflow_broker::{BrokerConfig, Event, Publisher, Readiness, Runtime};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const EXCHANGE: &str = "test.events";
pub const ROUTING_KEY: &str = "test.event";

/// A test event: `fail_times` says how often its handler fails before succeeding.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TestEvent {
    pub id: u32,
    pub fail_times: u32,
}

impl Event for TestEvent {
    const TYPE: &'static str = "test.event";
    const EXCHANGE: &'static str = EXCHANGE;
    const ROUTING_KEY: &'static str = ROUTING_KEY;
    fn correlation_id(&self) -> String {
        format!("order-{}", self.id)
    }
}

/// One handler call as seen by the handler.
#[derive(Debug, Clone)]
pub struct Call {
    pub id: u32,
    pub retry_count: u32,
    pub at: Instant,
    pub succeeded: bool,
}

/// Records every call.
#[derive(Debug, Clone, Default)]
pub struct Recorder(Arc<Mutex<Vec<Call>>>);

impl Recorder {
    pub fn record(&self, call: Call) {
        self.0.lock().unwrap().push(call);
    }
    /// Records a successful handling of `msg`, now.
    pub fn succeeded(&self, msg: &orderflow_broker::Message<TestEvent>) {
        self.record(Call {
            id: msg.event.id,
            retry_count: msg.meta.retry_count,
            at: Instant::now(),
            succeeded: true,
        });
    }
    pub fn calls(&self) -> Vec<Call> {
        self.0.lock().unwrap().clone()
    }
    pub fn calls_for(&self, id: u32) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.id == id).collect()
    }
    /// Successful handlings per id.
    pub fn successes(&self) -> HashMap<u32, usize> {
        let mut map = HashMap::new();
        for call in self.calls().into_iter().filter(|c| c.succeeded) {
            *map.entry(call.id).or_default() += 1;
        }
        map
    }
}

/// A handler failing (retryably) `fail_times` times per event, then succeeding after `work`.
pub fn flaky_handler(
    recorder: Recorder,
    work: Duration,
) -> impl Fn(
    orderflow_broker::Message<TestEvent>,
) -> futures_util::future::BoxFuture<'static, Result<(), orderflow_broker::HandlerError>>
+ Send
+ Sync
+ 'static {
    move |msg: orderflow_broker::Message<TestEvent>| {
        let recorder = recorder.clone();
        Box::pin(async move {
            if !work.is_zero() {
                tokio::time::sleep(work).await;
            }
            let succeeded = msg.meta.retry_count >= msg.event.fail_times;
            recorder.record(Call {
                id: msg.event.id,
                retry_count: msg.meta.retry_count,
                at: Instant::now(),
                succeeded,
            });
            if succeeded {
                Ok(())
            } else {
                Err(orderflow_broker::HandlerError::retry(format!(
                    "transient failure {} of {}",
                    msg.meta.retry_count + 1,
                    msg.event.fail_times
                )))
            }
        })
    }
}

/// A runtime running on a background task.
pub struct Running {
    pub stop: CancellationToken,
    pub handle: JoinHandle<Result<(), orderflow_broker::BrokerError>>,
    pub readiness: Readiness,
    pub publisher: Publisher,
}

impl Running {
    /// Starts `runtime` and waits until it is connected and consuming.
    pub async fn start(runtime: Runtime) -> Self {
        let stop = CancellationToken::new();
        let readiness = runtime.readiness();
        let publisher = runtime.publisher();
        let handle = tokio::spawn(runtime.run(stop.clone().cancelled_owned()));
        let running = Self {
            stop,
            handle,
            readiness,
            publisher,
        };
        running.wait_ready().await;
        running
    }

    pub async fn wait_ready(&self) {
        let readiness = self.readiness.clone();
        testkit::eventually("runtime ready", Duration::from_secs(30), || {
            let ready = readiness.is_ready();
            async move { ready.then_some(()) }
        })
        .await
        .unwrap();
    }

    /// Signals shutdown and waits for `run` to return.
    pub async fn shutdown(self) -> Result<(), orderflow_broker::BrokerError> {
        self.stop.cancel();
        self.handle.await.expect("runtime task")
    }
}

/// A config with short windows suitable for tests; failed copies name `broker-tests/<version>`.
pub fn config(url: &str) -> BrokerConfig {
    BrokerConfig::new(url, "broker-tests")
        .with_shutdown_timeout(Duration::from_secs(10))
        .with_app_version(env!("CARGO_PKG_VERSION"))
}

/// Waits until `recorder` has a success for every id in `ids`.
pub async fn all_succeeded(recorder: &Recorder, ids: impl Iterator<Item = u32>, timeout: Duration) {
    let ids: Vec<u32> = ids.collect();
    let recorder = recorder.clone();
    testkit::eventually("every message handled", timeout, || {
        let successes = recorder.successes();
        let missing = ids.iter().filter(|id| !successes.contains_key(id)).count();
        async move { (missing == 0).then_some(()) }
    })
    .await
    .unwrap_or_else(|err| {
        let successes = recorder.successes();
        let missing: Vec<_> = ids
            .iter()
            .filter(|id| !successes.contains_key(id))
            .take(20)
            .collect();
        panic!(
            "{err}: {} of {} missing, e.g. {missing:?}",
            ids.len() - successes.len().min(ids.len()),
            ids.len()
        )
    });
}

/// A runtime consuming `queue` with [`flaky_handler`] (each call takes `work`), retries after
/// 100 ms, prefetch 50, 8 handlers at once; publishes retry through outages for 120 s.
pub fn recording_runtime(url: &str, queue: &str, recorder: &Recorder, work: Duration) -> Runtime {
    use orderflow_broker::{ConsumerSpec, ExchangeType, QueueSpec, RetryPolicy, Topology};
    Runtime::new(config(url).with_publish_retry_for(Duration::from_secs(120)))
        .unwrap()
        .with_topology(Topology::default().exchange(EXCHANGE, ExchangeType::Direct))
        .with_consumer(
            ConsumerSpec::new(
                QueueSpec::new(queue)
                    .bind(EXCHANGE, ROUTING_KEY)
                    .with_retry(
                        RetryPolicy::default().with_initial_delay(Duration::from_millis(100)),
                    ),
                flaky_handler(recorder.clone(), work),
            )
            .with_prefetch(50)
            .with_concurrency(8),
        )
}

/// Publishes ids `0..count`, `wave` confirmed publishes at a time; each must succeed whatever
/// happens to the broker meanwhile.
pub async fn publish_all(publisher: Publisher, count: u32, wave: usize) {
    for ids in (0..count).collect::<Vec<_>>().chunks(wave) {
        let publishes = ids.iter().map(|&id| {
            let publisher = publisher.clone();
            async move {
                publisher
                    .publish_event(&TestEvent { id, fail_times: 0 })
                    .await
            }
        });
        for result in futures_util::future::join_all(publishes).await {
            result.expect("a publish survives broker disturbances");
        }
    }
}

/// Waits (up to 60 s) until at least `at_least` distinct messages were handled.
pub async fn wait_for_successes(recorder: &Recorder, at_least: usize) {
    let recorder = recorder.clone();
    testkit::eventually("progress", Duration::from_secs(60), || {
        let n = recorder.successes().len();
        async move { (n >= at_least).then_some(()) }
    })
    .await
    .unwrap();
}
