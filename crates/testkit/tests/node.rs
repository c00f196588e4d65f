//! What a private node reports about its queues: the soak's quiet check relies on
//! `queue_messages` counting what a passive declare does not.

use lapin::options::{BasicGetOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use std::time::{Duration, Instant};
use testkit::PrivateNode;
use testkit::inspect::Inspector;

#[tokio::test]
async fn a_delivered_unacked_message_is_counted_though_no_message_is_ready() {
    let node = PrivateNode::start().await.unwrap();
    let (_connection, channel) = quorum_queue(&node, "held", &[], None).await;
    channel
        .basic_publish(
            "".into(),
            "held".into(),
            BasicPublishOptions::default(),
            b"{}",
            BasicProperties::default(),
        )
        .await
        .unwrap();
    let delivered = loop {
        if let Some(got) = channel
            .basic_get("held".into(), BasicGetOptions::default())
            .await
            .unwrap()
        {
            break got;
        }
    };

    let mut inspector = Inspector::connect(&node.url()).await.unwrap();
    assert_eq!(
        inspector.count("held").await.unwrap(),
        0,
        "nothing is ready"
    );
    assert_eq!(
        node.queue_messages("/").unwrap().get("held").copied(),
        Some(1),
        "the unacked delivery is still the queue's"
    );
    drop(delivered);
}

/// A retry tier's message that expired while its queue could not take it (after a broker
/// restart RabbitMQ 3.10 may not move one for minutes) is still the broker's: the soak must not
/// call the system quiet, nor the order lost, while one waits. `list_queues messages` says 0.
#[tokio::test]
async fn a_message_dead_lettered_and_not_yet_moved_is_counted() {
    let node = PrivateNode::start().await.unwrap();
    let dead_lettering = [
        ("x-dead-letter-strategy", "at-least-once"),
        ("x-overflow", "reject-publish"),
        ("x-dead-letter-exchange", ""),
        ("x-dead-letter-routing-key", "not-declared-yet"),
    ];
    let (_connection, channel) = quorum_queue(&node, "tier", &dead_lettering, Some(100)).await;
    channel
        .basic_publish(
            "".into(),
            "tier".into(),
            BasicPublishOptions::default(),
            b"{}",
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .unwrap()
        .await
        .unwrap();

    let mut inspector = Inspector::connect(&node.url()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while inspector.count("tier").await.unwrap() > 0 {
        assert!(Instant::now() < deadline, "the message never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        node.queue_messages("/").unwrap().get("tier").copied(),
        Some(1),
        "expired, not ready, and still held for its target"
    );
}

/// Declares the durable quorum queue `name` on `node` with the text arguments `args` and a
/// message TTL in ms; the connection (keep it) and a channel on it.
async fn quorum_queue(
    node: &PrivateNode,
    name: &str,
    args: &[(&str, &str)],
    ttl_ms: Option<i64>,
) -> (Connection, Channel) {
    let connection = Connection::connect(&node.url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let mut arguments = FieldTable::default();
    for (key, value) in [("x-queue-type", "quorum")].iter().chain(args) {
        arguments.insert((*key).into(), AMQPValue::LongString((*value).into()));
    }
    if let Some(ttl) = ttl_ms {
        arguments.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ttl));
    }
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(name.into(), durable, arguments)
        .await
        .unwrap();
    (connection, channel)
}
