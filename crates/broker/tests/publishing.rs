//! Publisher confirms and topology declaration against a real broker.

mod common;

use common::{TestEvent, config};
use lapin::options::{QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use orderflow_broker::{
    BrokerError, ExchangeType, Publisher, QueueSpec, Runtime, Topology, TopologyError,
};
use std::time::Duration;
use testkit::TestVhost;
use testkit::inspect::Inspector;

/// Publishes one test event on a fresh publisher and returns the error it must fail with.
async fn publish_one(url: &str) -> BrokerError {
    // Nacks are retried within the publish window: a short one ends the test soon.
    let publisher =
        Publisher::new(&config(url).with_publish_retry_for(Duration::from_secs(1))).unwrap();
    let result = publisher
        .publish_event(&TestEvent {
            id: 1,
            fail_times: 0,
        })
        .await;
    publisher.close().await;
    result.expect_err("the publish must fail")
}

#[tokio::test]
async fn an_unroutable_publish_is_an_error_to_the_caller() {
    let vhost = TestVhost::new().await;
    let inspector = Inspector::connect(&vhost.url).await.unwrap();
    Topology::default()
        .exchange(common::EXCHANGE, ExchangeType::Direct)
        .declare(
            inspector.channel(),
            orderflow_broker::detect_version(&vhost.url).await.unwrap(),
        )
        .await
        .unwrap();
    let err = publish_one(&vhost.url).await;
    assert!(
        matches!(err, BrokerError::Unroutable { ref exchange, ref routing_key, .. }
        if exchange == common::EXCHANGE && routing_key == common::ROUTING_KEY),
        "{err}"
    );
    assert!(!err.is_recoverable());
}

#[tokio::test]
async fn a_nacked_publish_is_an_error_to_the_caller() {
    let vhost = TestVhost::new().await;
    let inspector = Inspector::connect(&vhost.url).await.unwrap();
    let channel = inspector.channel();
    Topology::default()
        .exchange(common::EXCHANGE, ExchangeType::Direct)
        .declare(
            channel,
            orderflow_broker::detect_version(&vhost.url).await.unwrap(),
        )
        .await
        .unwrap();
    // A full queue that rejects new publishes makes the broker nack them.
    let mut args = FieldTable::default();
    args.insert("x-max-length".into(), AMQPValue::LongLongInt(0));
    args.insert(
        "x-overflow".into(),
        AMQPValue::LongString("reject-publish".into()),
    );
    channel
        .queue_declare("full".into(), QueueDeclareOptions::default(), args)
        .await
        .unwrap();
    channel
        .queue_bind(
            "full".into(),
            common::EXCHANGE.into(),
            common::ROUTING_KEY.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let err = publish_one(&vhost.url).await;
    assert!(matches!(err, BrokerError::Nacked { .. }), "{err}");
}

#[tokio::test]
async fn declaring_twice_is_harmless_and_a_conflict_names_the_queue_and_argument() {
    let vhost = TestVhost::new().await;
    let inspector = Inspector::connect(&vhost.url).await.unwrap();
    let topology = Topology::default()
        .exchange(common::EXCHANGE, ExchangeType::Direct)
        .queue(QueueSpec::new("svc.q").bind(common::EXCHANGE, common::ROUTING_KEY));
    let version = orderflow_broker::detect_version(&vhost.url).await.unwrap();
    for _ in 0..2 {
        topology
            .declare(inspector.channel(), version)
            .await
            .unwrap();
    }

    // Someone created "svc.other" as a classic queue; we want a quorum queue of that name.
    inspector
        .channel()
        .queue_declare(
            "svc.other".into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let runtime = Runtime::new(config(&vhost.url))
        .unwrap()
        .with_topology(Topology::default().queue(QueueSpec::new("svc.other")));
    let err = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        runtime.run(std::future::pending()),
    )
    .await
    .expect("a conflicting declaration stops the runtime instead of retrying")
    .unwrap_err();
    match err {
        BrokerError::Topology(TopologyError::QueueMismatch {
            queue, argument, ..
        }) => {
            assert_eq!(queue, "svc.other");
            assert!(argument.starts_with("x-"), "{argument}");
        }
        other => panic!("expected a queue mismatch, got {other}"),
    }
}

#[tokio::test]
async fn the_broker_version_is_read_from_its_greeting() {
    let vhost = TestVhost::new().await;
    let version = orderflow_broker::detect_version(&vhost.url).await;
    assert!(
        version.is_some_and(|v| v >= orderflow_broker::BrokerVersion::OLDEST_SUPPORTED),
        "{version:?}"
    );
}

/// Many tasks pipeline mandatory publishes on one publisher, alternating a routable and an
/// unroutable key: each publish must get its own verdict. A return handed to another publish's
/// confirm would report a stored copy as lost, or, worse, a lost one as stored.
#[tokio::test]
async fn every_returned_publish_is_told_apart_from_the_confirmed_ones_around_it() {
    const TASKS: u32 = 16;
    const EACH: u32 = 500;
    let vhost = TestVhost::new().await;
    let mut inspector = Inspector::connect(&vhost.url).await.unwrap();
    let version = orderflow_broker::detect_version(&vhost.url).await.unwrap();
    Topology::default()
        .exchange(common::EXCHANGE, ExchangeType::Direct)
        .queue(QueueSpec::new("svc.routable").bind(common::EXCHANGE, "routable"))
        .declare(inspector.channel(), version)
        .await
        .unwrap();
    let publisher = Publisher::new(&config(&vhost.url)).unwrap();
    let tasks = (0..TASKS).map(|task| {
        let publisher = publisher.clone();
        tokio::spawn(async move {
            let publishes = (0..EACH).map(|n| {
                let routable = (task + n) % 2 == 0;
                let key = if routable { "routable" } else { "nowhere" };
                let message = orderflow_broker::Outgoing::json(
                    common::EXCHANGE,
                    key,
                    "test.event",
                    format!("{{\"task\":{task},\"n\":{n}}}").into_bytes(),
                    &format!("{task}-{n}"),
                    "broker-tests",
                );
                let publisher = publisher.clone();
                async move { (routable, publisher.publish(&message).await) }
            });
            futures_util::future::join_all(publishes).await
        })
    });
    let mut confirmed = 0;
    for task in futures_util::future::join_all(tasks).await {
        for (routable, result) in task.unwrap() {
            match (routable, result) {
                (true, Ok(())) => confirmed += 1,
                (false, Err(BrokerError::Unroutable { routing_key, .. })) => {
                    assert_eq!(routing_key, "nowhere");
                }
                (routable, other) => panic!("routable={routable} got {other:?}"),
            }
        }
    }
    publisher.close().await;
    assert_eq!(confirmed, TASKS * EACH / 2);
    let expected = TASKS * EACH / 2;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let stored = inspector.count("svc.routable").await.unwrap();
        if stored == expected {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "every confirmed publish is in the queue: {stored} of {expected}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
