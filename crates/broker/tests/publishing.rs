//! Publisher confirms and topology declaration against a real broker.

mod common;

use broker::lapin::options::{QueueBindOptions, QueueDeclareOptions};
use broker::lapin::types::{AMQPValue, FieldTable};
use broker::{BrokerError, ExchangeType, Publisher, QueueSpec, Runtime, Topology, TopologyError};
use common::{TestEvent, config};
use testkit::TestVhost;
use testkit::inspect::Inspector;

/// Publishes one test event on a fresh publisher and returns the error it must fail with.
async fn publish_one(url: &str) -> BrokerError {
    let publisher = Publisher::new(&config(url)).unwrap();
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
        .declare(inspector.channel())
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
        .declare(channel)
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
    topology.declare(inspector.channel()).await.unwrap();
    topology.declare(inspector.channel()).await.unwrap();

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
