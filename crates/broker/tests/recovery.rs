//! Crashes, torn-down connections, broker restarts and graceful shutdown: nothing is lost.

mod common;

use common::{
    Recorder, Running, TestEvent, all_succeeded, config, publish_all, recording_runtime as runtime,
    wait_for_successes,
};
use orderflow_broker::{ConsumerSpec, ExchangeType, QueueSpec, Runtime, Topology};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use testkit::inspect::Inspector;
use testkit::{PrivateNode, TestVhost, eventually};

const MESSAGES: u32 = 1000;

#[tokio::test]
async fn a_consumer_killed_mid_handler_loses_nothing() {
    let vhost = TestVhost::new().await;
    let recorder = Recorder::default();
    let first = Running::start(runtime(
        &vhost.url,
        "svc.crashy",
        &recorder,
        Duration::from_millis(2),
    ))
    .await;
    publish_all(first.publisher.clone(), MESSAGES, 50).await;
    wait_for_successes(&recorder, 200).await;

    // Kill: the runtime's task is aborted and its connections torn down mid-handler.
    first.handle.abort();
    vhost
        .close_connections("broker-tests", 1, "simulated crash")
        .await
        .unwrap();
    let handled_before_crash = recorder.successes().len();
    assert!(
        handled_before_crash < MESSAGES as usize,
        "the crash happened mid-run"
    );

    let second = Running::start(runtime(&vhost.url, "svc.crashy", &recorder, Duration::ZERO)).await;
    all_succeeded(&recorder, 0..MESSAGES, Duration::from_secs(60)).await;
    println!(
        "handled before crash: {handled_before_crash}; calls in total: {} for {MESSAGES} messages",
        recorder.calls().len()
    );
    second.shutdown().await.unwrap();
}

#[tokio::test]
async fn force_closed_connections_recover_without_a_restart() {
    let vhost = TestVhost::new().await;
    let recorder = Recorder::default();
    let running = Running::start(runtime(
        &vhost.url,
        "svc.closed",
        &recorder,
        Duration::from_millis(1),
    ))
    .await;
    let publishing = tokio::spawn(publish_all(running.publisher.clone(), MESSAGES, 50));
    wait_for_successes(&recorder, 300).await;

    // Both the consumer's and the publisher's connections.
    vhost
        .close_connections("broker-tests", 2, "operator closed it")
        .await
        .unwrap();
    publishing.await.unwrap();
    all_succeeded(&recorder, 0..MESSAGES, Duration::from_secs(60)).await;
    running.wait_ready().await;
    println!("calls: {} for {MESSAGES} messages", recorder.calls().len());
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_broker_restart_mid_run_loses_nothing() {
    let node = PrivateNode::start().await.expect("a private RabbitMQ node");
    let recorder = Recorder::default();
    let running = Running::start(runtime(
        &node.url(),
        "svc.restart",
        &recorder,
        Duration::from_millis(1),
    ))
    .await;
    let publishing = tokio::spawn(publish_all(running.publisher.clone(), MESSAGES, 50));
    wait_for_successes(&recorder, 300).await;

    node.restart().await.unwrap();
    publishing.await.unwrap();
    all_succeeded(&recorder, 0..MESSAGES, Duration::from_secs(90)).await;
    running.wait_ready().await;
    println!("calls: {} for {MESSAGES} messages", recorder.calls().len());
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn graceful_shutdown_lets_the_in_flight_handler_finish_and_acks_it() {
    let vhost = TestVhost::new().await;
    let started = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicBool::new(false));
    let handler = {
        let (started, finished) = (Arc::clone(&started), Arc::clone(&finished));
        move |_: orderflow_broker::Message<TestEvent>| {
            let (started, finished) = (Arc::clone(&started), Arc::clone(&finished));
            async move {
                started.store(true, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(1500)).await;
                finished.store(true, Ordering::SeqCst);
                Ok(())
            }
        }
    };
    let runtime = Runtime::new(config(&vhost.url))
        .unwrap()
        .with_topology(Topology::default().exchange(common::EXCHANGE, ExchangeType::Direct))
        .with_consumer(ConsumerSpec::new(
            QueueSpec::new("svc.slow").bind(common::EXCHANGE, common::ROUTING_KEY),
            handler,
        ));
    let running = Running::start(runtime).await;
    running
        .publisher
        .publish_event(&TestEvent {
            id: 1,
            fail_times: 0,
        })
        .await
        .unwrap();
    let flag = Arc::clone(&started);
    eventually("handler started", Duration::from_secs(10), || {
        let s = flag.load(Ordering::SeqCst);
        async move { s.then_some(()) }
    })
    .await
    .unwrap();
    assert!(!finished.load(Ordering::SeqCst));

    running.shutdown().await.unwrap();
    assert!(
        finished.load(Ordering::SeqCst),
        "the in-flight handler completed before run returned"
    );
    // The runtime's connection is closed: an unacked message would be back in the queue now.
    let mut inspector = Inspector::connect(&vhost.url).await.unwrap();
    assert_eq!(
        inspector.count("svc.slow").await.unwrap(),
        0,
        "acked, not redelivered"
    );
}

#[tokio::test]
async fn a_message_that_keeps_crashing_its_consumer_hits_the_delivery_limit() {
    let vhost = TestVhost::new().await;
    let deliveries = Arc::new(AtomicUsize::new(0));
    let handler = {
        let deliveries = Arc::clone(&deliveries);
        move |_: orderflow_broker::Message<TestEvent>| {
            deliveries.fetch_add(1, Ordering::SeqCst);
            // Never returns: the worker "hangs" until it is killed.
            std::future::pending::<Result<(), orderflow_broker::HandlerError>>()
        }
    };
    let runtime =
        Runtime::new(config(&vhost.url).with_shutdown_timeout(Duration::from_millis(100)))
            .unwrap()
            .with_topology(Topology::default().exchange(common::EXCHANGE, ExchangeType::Direct))
            .with_consumer(ConsumerSpec::new(
                QueueSpec::new("svc.poison")
                    .bind(common::EXCHANGE, common::ROUTING_KEY)
                    .with_delivery_limit(Some(2)),
                handler,
            ));
    let running = Running::start(runtime).await;
    running
        .publisher
        .publish_event(&TestEvent {
            id: 1,
            fail_times: 0,
        })
        .await
        .unwrap();
    let mut inspector = Inspector::connect(&vhost.url).await.unwrap();
    for crash in 1..=3 {
        let seen = Arc::clone(&deliveries);
        eventually("redelivery", Duration::from_secs(30), || {
            let n = seen.load(Ordering::SeqCst);
            async move { (n >= crash).then_some(()) }
        })
        .await
        .unwrap();
        // Tear down only the runtime's consumer connection.
        vhost
            .close_connections("broker-tests-consumer", 1, "crash")
            .await
            .unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let dead = loop {
        let taken = inspector.take_all("svc.poison.dlq").await.unwrap();
        if !taken.is_empty() {
            break taken;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never dead-lettered by the broker"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(dead.len(), 1);
    assert_eq!(
        orderflow_broker::headers::death_reason(dead[0].properties.headers().as_ref()).as_deref(),
        Some("delivery_limit")
    );
    assert_eq!(inspector.count("svc.poison").await.unwrap(), 0);
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_consumer_cancelled_by_the_broker_is_restarted() {
    let vhost = TestVhost::new().await;
    let recorder = Recorder::default();
    let running = Running::start(runtime(
        &vhost.url,
        "svc.cancelled",
        &recorder,
        Duration::ZERO,
    ))
    .await;
    // Deleting the queue makes the broker cancel the consumer: its stream simply ends.
    vhost
        .management()
        .delete_queue(&vhost.name, "svc.cancelled", false)
        .await
        .unwrap();
    // The runtime notices, reconnects, redeclares the queue and consumes again.
    let id = eventually("published after recovery", Duration::from_secs(30), || {
        let publisher = running.publisher.clone();
        async move {
            publisher
                .publish_event(&TestEvent {
                    id: 7,
                    fail_times: 0,
                })
                .await
                .ok()
                .map(|_| 7)
        }
    })
    .await
    .unwrap();
    all_succeeded(&recorder, id..=id, Duration::from_secs(30)).await;
    running.wait_ready().await;
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_slow_delivery_does_not_hold_back_the_acks_of_later_ones() {
    const PREFETCH: u16 = 20;
    const SENT: u32 = 200;
    let vhost = TestVhost::new().await;
    let recorder = Recorder::default();
    let release = Arc::new(tokio::sync::Notify::new());
    let handler = {
        let (recorder, release) = (recorder.clone(), Arc::clone(&release));
        move |msg: orderflow_broker::Message<TestEvent>| {
            let (recorder, release) = (recorder.clone(), Arc::clone(&release));
            async move {
                if msg.event.id == 0 {
                    release.notified().await;
                }
                recorder.record(common::Call {
                    id: msg.event.id,
                    retry_count: msg.meta.retry_count,
                    at: std::time::Instant::now(),
                    succeeded: true,
                });
                Ok(())
            }
        }
    };
    let runtime = Runtime::new(config(&vhost.url))
        .unwrap()
        .with_topology(Topology::default().exchange(common::EXCHANGE, ExchangeType::Direct))
        .with_consumer(
            ConsumerSpec::new(
                QueueSpec::new("svc.acks").bind(common::EXCHANGE, common::ROUTING_KEY),
                handler,
            )
            .with_prefetch(PREFETCH)
            .with_concurrency(usize::from(PREFETCH)),
        );
    let running = Running::start(runtime).await;
    for id in 0..SENT {
        running
            .publisher
            .publish_event(&TestEvent { id, fail_times: 0 })
            .await
            .unwrap();
    }
    // Id 0 holds the oldest delivery tag. Were the later ones acked only behind it, the broker
    // would stop at the prefetch window and fewer than PREFETCH would ever be handled.
    all_succeeded(&recorder, 1..SENT, Duration::from_secs(30)).await;
    release.notify_one();
    all_succeeded(&recorder, 0..SENT, Duration::from_secs(30)).await;
    running.shutdown().await.unwrap();

    let mut inspector = Inspector::connect(&vhost.url).await.unwrap();
    assert_eq!(inspector.count("svc.acks").await.unwrap(), 0, "all acked");
    let calls = recorder.calls();
    assert_eq!(
        calls.len(),
        SENT as usize,
        "each handled once: an ack the broker refused would close the channel and redeliver"
    );
}
