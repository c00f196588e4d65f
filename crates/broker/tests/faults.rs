//! Faults on a delivery's path against a real broker: panics before a handler's future exists,
//! a dependency outage longer than the whole retry schedule, handlers outliving a reconnect, and
//! and deliveries whose handlers are slow.

mod common;

use common::{Recorder, Running, TestEvent, all_succeeded, config};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use orderflow_broker::{
    ConsumerSpec, ExchangeType, HandlerError, Message, QueueSpec, RetryPolicy, Runtime, Topology,
    headers,
};
use serde::{Deserialize, Deserializer};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::inspect::{Inspector, Taken};
use testkit::{TestVhost, eventually};

fn queue(name: &str, policy: RetryPolicy) -> QueueSpec {
    QueueSpec::new(name)
        .bind(common::EXCHANGE, common::ROUTING_KEY)
        .with_retry(policy)
}

fn short_retries(max_retries: u32) -> RetryPolicy {
    RetryPolicy::default()
        .with_max_retries(max_retries)
        .with_initial_delay(Duration::from_millis(100))
        .with_multiplier(2.0)
}

async fn start(url: &str, consumer: ConsumerSpec) -> Running {
    let runtime = Runtime::new(config(url))
        .unwrap()
        .with_topology(Topology::default().exchange(common::EXCHANGE, ExchangeType::Direct))
        .with_consumer(consumer);
    Running::start(runtime).await
}

async fn publish(running: &Running, ids: impl Iterator<Item = u32>) {
    for id in ids {
        running
            .publisher
            .publish_event(&TestEvent { id, fail_times: 0 })
            .await
            .unwrap();
    }
}

async fn dead_letters(inspector: &Inspector, queue: &str, at_least: usize) -> Vec<Taken> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut kept = Vec::new();
    while kept.len() < at_least {
        assert!(
            Instant::now() < deadline,
            "{} of {at_least} dead letters in {queue}",
            kept.len()
        );
        kept.extend(inspector.take_all(queue).await.unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    kept
}

/// A closure handler whose synchronous part panics on the first delivery: the panic happens
/// before any future exists, so only a catch around the call itself turns it into a retry.
#[tokio::test]
async fn a_panic_before_the_handler_future_exists_is_a_retryable_failure() {
    let vhost = TestVhost::new().await;
    let recorder = Recorder::default();
    let calls = recorder.clone();
    let handler = move |msg: Message<TestEvent>| -> BoxFuture<'static, Result<(), HandlerError>> {
        assert!(msg.meta.retry_count > 0, "boom before the future exists");
        calls.succeeded(&msg);
        async { Ok(()) }.boxed()
    };
    let running = start(
        &vhost.url,
        ConsumerSpec::new(queue("svc.panicky", short_retries(3)), handler),
    )
    .await;
    publish(&running, 0..5).await;
    all_succeeded(&recorder, 0..5, Duration::from_secs(20)).await;
    for id in 0..5 {
        let seen: Vec<u32> = recorder
            .calls_for(id)
            .iter()
            .map(|c| c.retry_count)
            .collect();
        assert_eq!(seen, [1], "id {id}: retried once after the panic");
    }
    running.shutdown().await.unwrap();
}

/// An event whose `Deserialize` panics.
#[derive(Debug)]
struct Explosive;

impl<'de> Deserialize<'de> for Explosive {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        panic!("a custom Deserialize panicked")
    }
}

#[tokio::test]
async fn a_panic_while_decoding_is_retried_and_then_dead_lettered_with_its_reason() {
    let vhost = TestVhost::new().await;
    let handler = |_: Message<Explosive>| async { Ok::<(), HandlerError>(()) };
    let running = start(
        &vhost.url,
        ConsumerSpec::new(queue("svc.explosive", short_retries(2)), handler),
    )
    .await;
    publish(&running, 0..1).await;
    let inspector = Inspector::connect(&vhost.url).await.unwrap();
    let dead = dead_letters(&inspector, "svc.explosive.dlq", 1).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].header(headers::ERROR_KIND).as_deref(),
        Some("retries-exhausted")
    );
    assert_eq!(dead[0].header_int(headers::RETRY_COUNT), Some(2));
    let error = dead[0].header(headers::ERROR).unwrap_or_default();
    assert!(
        error.contains("panicked: a custom Deserialize panicked"),
        "{error}"
    );
    running.shutdown().await.unwrap();
}

/// The store's error type in this test: a connection failure.
#[derive(Debug, thiserror::Error)]
#[error("store connection refused")]
struct StoreDown;

fn is_store_down(err: &(dyn std::error::Error + 'static)) -> bool {
    err.is::<StoreDown>()
}

/// The store is down for far longer than the retry schedule (3 retries within 0.7 s): every
/// message waits, none burns a retry or reaches the DLQ, and the consumer takes no new
/// deliveries meanwhile; when the store answers again, every message is handled once.
#[tokio::test]
async fn an_outage_longer_than_the_retry_schedule_holds_messages_instead_of_failing_them() {
    const MESSAGES: u32 = 40;
    const CONCURRENCY: usize = 4;
    let vhost = TestVhost::new().await;
    let recorder = Recorder::default();
    let down = Arc::new(AtomicBool::new(true));
    let tried_while_down = Arc::new(Mutex::new(Vec::<u32>::new()));
    let handler = {
        let (recorder, down, tried) = (recorder.clone(), down.clone(), tried_while_down.clone());
        move |msg: Message<TestEvent>| {
            let (recorder, down, tried) = (recorder.clone(), down.clone(), tried.clone());
            async move {
                if down.load(Ordering::SeqCst) {
                    tried.lock().unwrap().push(msg.event.id);
                    // Returned through `?` as an ordinary error; the outage check classifies it.
                    Err(StoreDown)?;
                }
                recorder.succeeded(&msg);
                Ok::<(), HandlerError>(())
            }
        }
    };
    let consumer = ConsumerSpec::new(queue("svc.outage", short_retries(3)), handler)
        .with_concurrency(CONCURRENCY)
        .with_prefetch(8)
        .with_outage_check(is_store_down);
    let running = start(&vhost.url, consumer).await;
    publish(&running, 0..MESSAGES).await;
    // Wait until the first held message has been tried for three times the whole schedule.
    let outage = Instant::now();
    eventually("a long outage", Duration::from_secs(30), || {
        let tries = tried_while_down.lock().unwrap().len();
        let long = outage.elapsed() > Duration::from_secs(2) && tries > 10;
        async move { long.then_some(()) }
    })
    .await
    .unwrap();
    down.store(false, Ordering::SeqCst);
    all_succeeded(&recorder, 0..MESSAGES, Duration::from_secs(30)).await;

    let mut inspector = Inspector::connect(&vhost.url).await.unwrap();
    assert_eq!(inspector.count("svc.outage.dlq").await.unwrap(), 0);
    for tier in 1..=3 {
        let waiting = inspector
            .count(&format!("svc.outage.retry.{tier}"))
            .await
            .unwrap();
        assert_eq!(waiting, 0, "nothing went to retry tier {tier}");
    }
    let mut handled: HashMap<u32, Vec<u32>> = HashMap::new();
    for call in recorder.calls() {
        handled.entry(call.id).or_default().push(call.retry_count);
    }
    assert!(
        handled.values().all(|retries| retries == &[0]),
        "each handled once, with no retry spent: {handled:?}"
    );
    let mut tried: Vec<u32> = tried_while_down.lock().unwrap().clone();
    tried.sort_unstable();
    tried.dedup();
    assert!(
        tried.len() <= CONCURRENCY,
        "the paused consumer took no new deliveries: {tried:?}"
    );
    running.shutdown().await.unwrap();
}

/// Counts the running copies of each message and remembers the most seen at once.
#[derive(Clone, Default)]
struct Copies(Arc<Mutex<(HashMap<u32, usize>, usize)>>);

/// One running copy; dropping it (returning, or cancelled) counts it out.
struct Running1(Copies, u32);

impl Copies {
    fn enter(&self, id: u32) -> Running1 {
        let mut guard = self.0.lock().unwrap();
        let (running, most) = &mut *guard;
        let now = running.entry(id).or_default();
        *now += 1;
        *most = (*most).max(*now);
        Running1(self.clone(), id)
    }
    fn most(&self) -> usize {
        self.0.lock().unwrap().1
    }
    fn running(&self) -> usize {
        self.0.lock().unwrap().0.values().sum()
    }
}

impl Drop for Running1 {
    fn drop(&mut self) {
        let mut guard = (self.0).0.lock().unwrap();
        *guard.0.get_mut(&self.1).expect("entered") -= 1;
    }
}

/// Handlers are running (held until the chaos is over) when the consumer's connection is
/// force-closed, five times: the lost session's handlers are cancelled before the next session
/// consumes, so no message ever runs twice at once in one process.
#[tokio::test]
async fn handlers_of_a_lost_connection_never_run_beside_their_redelivery() {
    const MESSAGES: u32 = 20;
    let vhost = TestVhost::new().await;
    let recorder = Recorder::default();
    let copies = Copies::default();
    let chaos_over = Arc::new(AtomicBool::new(false));
    let handler = {
        let (recorder, copies, over) = (recorder.clone(), copies.clone(), chaos_over.clone());
        move |msg: Message<TestEvent>| {
            let (recorder, copies, over) = (recorder.clone(), copies.clone(), over.clone());
            async move {
                let _copy = copies.enter(msg.event.id);
                while !over.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                recorder.succeeded(&msg);
                Ok::<(), HandlerError>(())
            }
        }
    };
    let consumer = ConsumerSpec::new(queue("svc.reconnect", short_retries(3)), handler)
        .with_concurrency(4)
        .with_prefetch(4);
    let running = start(&vhost.url, consumer).await;
    publish(&running, 0..MESSAGES).await;
    for round in 0..5 {
        let busy = copies.clone();
        eventually("handlers running", Duration::from_secs(30), || {
            let n = busy.running();
            async move { (n > 0).then_some(()) }
        })
        .await
        .unwrap();
        vhost
            .close_connections("broker-tests-consumer", 1, "chaos")
            .await
            .unwrap_or_else(|err| panic!("round {round}: {err}"));
        running.wait_ready().await;
    }
    chaos_over.store(true, Ordering::SeqCst);
    all_succeeded(&recorder, 0..MESSAGES, Duration::from_secs(60)).await;
    assert_eq!(copies.most(), 1, "never two copies of one message at once");
    running.shutdown().await.unwrap();
}
