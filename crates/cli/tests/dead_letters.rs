//! The real `orderflow` binary against a real broker, each test in its own vhost: dead letters are
//! listed, shown without being removed, replayed into their queue, purged only when confirmed.

mod common;

use broker::headers;
use broker::topology::DEAD_LETTER_EXCHANGE;
use common::*;
use contracts::names::queues::STOCK_ORDER_PAID;
use lapin::BasicProperties;
use lapin::options::{BasicGetOptions, BasicRejectOptions};
use lapin::types::FieldTable;
use std::time::Duration;
use testkit::eventually;

#[tokio::test]
async fn list_counts_and_show_leaves_every_dead_letter_in_place() {
    let mut fx = Fixture::new().await;
    fx.dead_letter(QUEUE, "m-1", &body("o-1")).await;
    fx.dead_letter(QUEUE, "m-2", &body("o-2")).await;
    fx.expect_count(DLQ, 2).await;

    let list = fx.orderflow(&["dlq", "list"]).await;
    assert_success(&list);
    let list = stdout(&list);
    assert_eq!(listed_count(&list, DLQ), Some(2), "{list}");
    assert_eq!(
        listed_count(&list, "stock.order-paid.dlq"),
        Some(0),
        "{list}"
    );

    let show = fx.orderflow(&["dlq", "show", QUEUE]).await;
    assert_success(&show);
    let text = stdout(&show);
    for expected in [
        "message_id:     m-1",
        "message_id:     m-2",
        "correlation_id: order-42",
        "type:           order.created",
        "  retry-count: 5",
        "  error-kind: retries-exhausted",
        "  error: card processor timed out",
        "  failed-at: 2026-11-22T10:00:00Z",
        "  source-queue: payment.order-created",
        "  original-exchange: orders",
        "  original-routing-key: order.created",
        r#"{"order_id":"o-1","customer_id":"c-42","total_cents":2500}"#,
        "2 of 2 dead letters in 'payment.order-created.dlq' shown; all left in place",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    fx.expect_count(DLQ, 2).await;

    // Again, as JSON lines and limited: the same first message is still there.
    let json = fx
        .orderflow(&["dlq", "show", DLQ, "--limit", "1", "--json"])
        .await;
    assert_success(&json);
    let lines: Vec<serde_json::Value> = stdout(&json)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["message_id"], "m-1");
    assert_eq!(lines[0]["headers"]["retry-count"], 5);
    assert_eq!(lines[0]["headers"]["error-kind"], "retries-exhausted");
    assert_eq!(lines[0]["body"], String::from_utf8(body("o-1")).unwrap());
    fx.expect_count(DLQ, 2).await;

    // A quorum queue puts messages handed back behind the others: the order may change.
    let taken = fx.take_all(DLQ).await;
    let mut ids: Vec<_> = taken
        .iter()
        .map(|t| t.properties.message_id().clone().unwrap().to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, ["m-1", "m-2"], "both dead letters survived");
}

#[tokio::test]
async fn show_prints_the_broker_death_reason_of_a_delivery_limit_dead_letter() {
    let mut fx = Fixture::new().await;
    let mut headers = FieldTable::default();
    headers::set_text(&mut headers, "note", "crashes its consumer");
    fx.publish(
        "",
        QUEUE,
        &body("o-9"),
        BasicProperties::default()
            .with_message_id("m-9".into())
            .with_headers(headers),
    )
    .await;
    fx.expect_count(QUEUE, 1).await;
    // A consumer that keeps failing hands it back until the broker's delivery limit
    // dead-letters it into the DLQ by itself.
    let channel = fx.inspector.channel().clone();
    let dead = eventually("the broker to dead-letter it", WAIT, || {
        let channel = channel.clone();
        async move {
            let taken = channel
                .basic_get(QUEUE.into(), BasicGetOptions::default())
                .await
                .unwrap();
            if let Some(message) = taken {
                let requeue = BasicRejectOptions { requeue: true };
                message.delivery.acker.reject(requeue).await.unwrap();
            }
            (ready(&channel, DLQ).await == 1).then_some(())
        }
    })
    .await;
    assert!(dead.is_ok(), "{dead:?}");

    let show = fx.orderflow(&["dlq", "show", QUEUE]).await;
    assert_success(&show);
    let text = stdout(&show);
    assert!(text.contains("x-death reason: delivery_limit"), "{text}");
    assert!(text.contains("  note: crashes its consumer"), "{text}");
    assert!(text.contains("message_id:     m-9"), "{text}");
    fx.expect_count(DLQ, 1).await;
}

#[tokio::test]
async fn replay_moves_a_dead_letter_back_to_its_queue_with_a_fresh_retry_count() {
    let mut fx = Fixture::new().await;
    fx.dead_letter(QUEUE, "m-1", &body("o-1")).await;
    fx.expect_count(DLQ, 1).await;

    let replay = fx.orderflow(&["dlq", "replay", QUEUE]).await;
    assert_success(&replay);
    assert!(
        stdout(&replay).contains("replayed 1 of 1 dead letters"),
        "{}",
        stdout(&replay)
    );
    fx.expect_count(DLQ, 0).await;
    fx.expect_count(QUEUE, 1).await;

    let taken = fx.take_all(QUEUE).await;
    let message = &taken[0];
    assert_eq!(
        message.body,
        body("o-1"),
        "the body is byte-for-byte the same"
    );
    assert_eq!(
        message.properties.message_id().as_ref().map(|m| m.as_str()),
        Some("m-1")
    );
    assert_eq!(
        message
            .properties
            .correlation_id()
            .as_ref()
            .map(|c| c.as_str()),
        Some("order-42")
    );
    assert_eq!(message.header_int(headers::RETRY_COUNT), Some(0));
    assert_eq!(message.header_int(headers::REPLAY_COUNT), Some(1));
    for gone in [headers::ERROR_KIND, headers::ERROR, headers::FAILED_AT] {
        assert_eq!(message.header(gone), None, "{gone} is dropped");
    }
    assert_eq!(
        message.header(headers::SOURCE_QUEUE).as_deref(),
        Some(QUEUE)
    );
    assert_eq!(
        message.header(headers::ORIGINAL_EXCHANGE).as_deref(),
        Some("orders")
    );
    assert!(message.header(headers::TRACEPARENT).is_some());
    // Only the failed consumer got it back: the other subscriber of order.created did not.
    assert_eq!(fx.count("stock.order-created").await, 0);
}

#[tokio::test]
async fn replay_by_message_id_moves_only_the_chosen_dead_letter() {
    let mut fx = Fixture::new().await;
    fx.dead_letter(QUEUE, "m-keep", &body("o-1")).await;
    fx.dead_letter(QUEUE, "m-replay", &body("o-2")).await;
    fx.dead_letter(QUEUE, "m-keep-too", &body("o-3")).await;
    fx.expect_count(DLQ, 3).await;

    let missing = fx
        .orderflow(&["dlq", "replay", QUEUE, "--message-id", "nope"])
        .await;
    assert_failure(&missing);
    assert!(stderr(&missing).contains("no dead letter with message id 'nope'"));
    fx.expect_count(DLQ, 3).await;

    let replay = fx
        .orderflow(&["dlq", "replay", DLQ, "--message-id", "m-replay"])
        .await;
    assert_success(&replay);
    fx.expect_count(QUEUE, 1).await;
    fx.expect_count(DLQ, 2).await;

    let replayed = fx.take_all(QUEUE).await;
    assert_eq!(
        replayed[0]
            .properties
            .message_id()
            .as_ref()
            .map(|m| m.as_str()),
        Some("m-replay")
    );
    let mut left: Vec<_> = fx
        .take_all(DLQ)
        .await
        .iter()
        .map(|t| {
            assert_eq!(
                t.header(headers::ERROR_KIND).as_deref(),
                Some("retries-exhausted")
            );
            t.properties.message_id().clone().unwrap().to_string()
        })
        .collect();
    left.sort();
    assert_eq!(left, ["m-keep", "m-keep-too"]);
}

#[tokio::test]
async fn a_replay_that_cannot_be_stored_leaves_the_dead_letter_in_place() {
    let mut fx = Fixture::new().await;
    // Its source queue no longer exists: the copy is unroutable.
    let mut properties = dead_letter_properties("payment.gone", "m-1");
    let mut table = properties.headers().clone().unwrap();
    headers::set_text(&mut table, headers::SOURCE_QUEUE, "payment.gone");
    properties = properties.with_headers(table);
    fx.publish(
        DEAD_LETTER_EXCHANGE,
        STOCK_ORDER_PAID,
        &body("o-1"),
        properties,
    )
    .await;
    fx.expect_count("stock.order-paid.dlq", 1).await;

    let replay = fx.orderflow(&["dlq", "replay", STOCK_ORDER_PAID]).await;
    assert_failure(&replay);
    let message = stderr(&replay);
    assert!(
        message.contains("could not replay message m-1 to queue 'payment.gone'")
            && message.contains("it stays in 'stock.order-paid.dlq'"),
        "{message}"
    );
    fx.expect_count("stock.order-paid.dlq", 1).await;
    let kept = fx.take_all("stock.order-paid.dlq").await;
    assert_eq!(kept[0].header_int(headers::RETRY_COUNT), Some(5));
    assert_eq!(kept[0].header(headers::REPLAY_COUNT), None);
}

#[tokio::test]
async fn purge_refuses_without_yes_and_empties_the_dlq_with_it() {
    let mut fx = Fixture::new().await;
    fx.dead_letter(QUEUE, "m-1", &body("o-1")).await;
    fx.dead_letter(QUEUE, "m-2", &body("o-2")).await;
    fx.expect_count(DLQ, 2).await;

    let refused = fx.orderflow(&["dlq", "purge", QUEUE]).await;
    assert_failure(&refused);
    assert!(stderr(&refused).contains("--yes"), "{}", stderr(&refused));
    fx.expect_count(DLQ, 2).await;

    let purged = fx.orderflow(&["dlq", "purge", QUEUE, "--yes"]).await;
    assert_success(&purged);
    assert!(
        stdout(&purged).contains("purged 2 dead letters from 'payment.order-created.dlq'"),
        "{}",
        stdout(&purged)
    );
    fx.expect_count(DLQ, 0).await;
}

#[tokio::test]
async fn unknown_queues_are_named_in_the_error() {
    let fx = Fixture::new().await;
    let show = fx.orderflow(&["dlq", "show", "nope"]).await;
    assert_failure(&show);
    assert!(
        stderr(&show).contains("there is no dead-letter queue 'nope.dlq'"),
        "{}",
        stderr(&show)
    );
}

#[tokio::test]
async fn topology_shows_ready_retrying_and_dead_messages_per_consumer_queue() {
    let fx = Fixture::new().await;
    fx.dead_letter(QUEUE, "m-1", &body("o-1")).await;
    fx.publish(
        "",
        &format!("{QUEUE}.retry.5"),
        &body("o-2"),
        BasicProperties::default(),
    )
    .await;
    fx.publish("", QUEUE, &body("o-3"), BasicProperties::default())
        .await;

    // The management API samples statistics every few seconds.
    let row = eventually(
        "the topology to show the messages",
        Duration::from_secs(30),
        || async {
            let output = fx.orderflow(&["topology"]).await;
            assert_success(&output);
            let text = stdout(&output);
            let row: Vec<String> = text
                .lines()
                .find(|line| line.split_whitespace().next() == Some(QUEUE))?
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            (row[1..] == ["1", "0", "0", "1", "1"]).then_some(row)
        },
    )
    .await;
    assert!(row.is_ok(), "{row:?}");
}

#[tokio::test]
async fn publish_sends_a_persistent_json_message_and_prints_its_id() {
    let mut fx = Fixture::new().await;
    let sent = body("o-7");
    let output = fx
        .orderflow_with_stdin(
            &[
                "publish",
                "orders",
                "order.created",
                "--type",
                "order.created",
                "--correlation-id",
                "o-7",
            ],
            &sent,
        )
        .await;
    assert_success(&output);
    let id = stdout(&output).trim().to_owned();
    fx.expect_count(QUEUE, 1).await;
    let taken = fx.take_all(QUEUE).await;
    let message = &taken[0];
    assert_eq!(message.body, sent);
    let props = &message.properties;
    assert_eq!(
        props.message_id().as_ref().map(|m| m.as_str()),
        Some(id.as_str())
    );
    assert_eq!(
        props.correlation_id().as_ref().map(|c| c.as_str()),
        Some("o-7")
    );
    assert_eq!(
        props.kind().as_ref().map(|k| k.as_str()),
        Some("order.created")
    );
    assert_eq!(
        props.content_type().as_ref().map(|c| c.as_str()),
        Some("application/json")
    );
    assert_eq!(*props.delivery_mode(), Some(2));

    let unroutable = fx
        .orderflow_with_stdin(&["publish", "orders", "no.such.key"], b"{}")
        .await;
    assert_failure(&unroutable);
    assert!(
        stderr(&unroutable).contains("unroutable"),
        "{}",
        stderr(&unroutable)
    );
    let no_exchange = fx
        .orderflow_with_stdin(&["publish", "nope", "order.created"], b"{}")
        .await;
    assert_failure(&no_exchange);
    assert!(
        stderr(&no_exchange).contains("there is no exchange 'nope'"),
        "{}",
        stderr(&no_exchange)
    );
    let not_json = fx
        .orderflow_with_stdin(&["publish", "orders", "order.created"], b"oops")
        .await;
    assert_failure(&not_json);
    assert!(stderr(&not_json).contains("not valid JSON"));
}
