//! The order worker's outbox relay: it backs off when marking rows sent fails, quarantines a row
//! the broker refuses for good without holding up newer ones, and publishes each event in the
//! trace of the request that caused it.

use e2e::{Options, System, metrics};
use lapin::options::{QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use serde_json::{Value, json};
use std::time::Duration;
use testkit::eventually;
use testkit::inspect::Inspector;

const WAIT: Duration = Duration::from_secs(120);

/// How long marking rows sent keeps failing.
const FAILURE_WINDOW: Duration = Duration::from_secs(5);

/// A queue of this test's own bound to `order.created`: every publish of the relay lands in it.
async fn tap(inspector: &Inspector, name: &str) {
    let channel = inspector.channel();
    channel
        .queue_declare(
            name.into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    channel
        .queue_bind(
            name.into(),
            contracts::names::ORDERS_EXCHANGE.into(),
            "order.created".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
}

async fn order_db(system: &System) -> sqlx::SqlitePool {
    let url = format!("sqlite://{}/order.db", system.dir.display());
    sqlx::SqlitePool::connect(&url).await.unwrap()
}

#[tokio::test]
async fn a_failing_mark_sent_backs_the_relay_off_and_loses_nothing() {
    let system = System::start(Options::default()).await;
    let mut inspector = Inspector::connect(&system.vhost.url).await.unwrap();
    tap(&inspector, "test.order-created-tap").await;
    let db = order_db(&system).await;
    sqlx::query(
        "CREATE TRIGGER test_mark_sent_fails BEFORE UPDATE OF sent_at ON outbox \
         WHEN NEW.sent_at IS NOT NULL BEGIN SELECT RAISE(ABORT, 'test: marking sent fails'); END",
    )
    .execute(&db)
    .await
    .unwrap();

    let id = system.create_order(Some("tok_visa"), "SKU-1", 1).await;
    eventually("the first publish", WAIT, || async {
        let published = Inspector::connect(&system.vhost.url)
            .await
            .ok()?
            .count("test.order-created-tap")
            .await
            .ok()?;
        (published >= 1).then_some(())
    })
    .await
    .unwrap();
    // The stimulus, not an assertion: marking stays broken for a while.
    tokio::time::sleep(FAILURE_WINDOW).await;
    let published = inspector.count("test.order-created-tap").await.unwrap();
    println!("order.created published {published} times in {FAILURE_WINDOW:?} of failing marks");
    assert!(
        published < 10,
        "the relay re-published one row {published} times while marking it sent failed"
    );

    sqlx::query("DROP TRIGGER test_mark_sent_fails")
        .execute(&db)
        .await
        .unwrap();
    let order = &system.wait_terminal(&[id], WAIT).await[&id];
    assert_eq!(order["status"], "completed");
    let unsent: (i64,) = eventually("the row marked sent", WAIT, || async {
        let unsent: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL")
            .fetch_one(&db)
            .await
            .ok()?;
        (unsent.0 == 0).then_some(unsent)
    })
    .await
    .unwrap();
    assert_eq!(unsent.0, 0);
    db.close().await;
}

/// Writes an outbox row older than every order, for `exchange` and `routing_key`.
async fn poison_row(db: &sqlx::SqlitePool, message_id: &str, exchange: &str, routing_key: &str) {
    sqlx::query(
        "INSERT INTO outbox (message_id, order_id, event_type, exchange, routing_key, body, created_at) \
         VALUES ($1, $2, 'order.created', $3, $4, '{}', '2000-01-01T00:00:00Z')",
    )
    .bind(message_id)
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(exchange)
    .bind(routing_key)
    .execute(db)
    .await
    .unwrap();
}

#[tokio::test]
async fn an_unpublishable_row_is_quarantined_and_newer_orders_complete() {
    let system = System::start(Options::default()).await;
    let db = order_db(&system).await;
    poison_row(
        &db,
        "poison-no-exchange",
        "no-such-exchange",
        "order.created",
    )
    .await;
    poison_row(&db, "poison-unroutable", "orders", "nowhere").await;

    let ids = system.create_orders(20, Some("tok_visa"), "SKU-1").await;
    let orders = system.wait_terminal(&ids, WAIT).await;
    assert!(
        orders.values().all(|o| o["status"] == "completed"),
        "every newer order completed"
    );

    let quarantined = eventually("both rows quarantined", WAIT, || async {
        let rows = system.get(&system.orders[0], "/outbox/quarantined").await?;
        (rows.as_array()?.len() == 2).then_some(rows)
    })
    .await
    .unwrap_or_else(|err| panic!("{err}; logs in {}", system.dir.display()));
    let by_id = |id: &str| -> Value {
        quarantined
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["message_id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} not quarantined: {quarantined}"))
    };
    let missing = by_id("poison-no-exchange");
    assert_eq!(missing["attempts"], 5);
    assert!(
        missing["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("no-such-exchange")),
        "{missing}"
    );
    let unroutable = by_id("poison-unroutable");
    assert!(
        unroutable["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("unroutable")),
        "{unroutable}"
    );
    let text = metrics::text(&system.orders[0])
        .await
        .expect("/metrics answers");
    assert_eq!(
        metrics::sample(&text, "orderflow_outbox_quarantined", &[]),
        Some(2.0)
    );
    // Kept, not dropped.
    let kept: (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM outbox WHERE message_id LIKE 'poison-%' AND sent_at IS NULL",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(kept.0, 2);

    let order_url = system.orders[0].url("");
    let (ok, listed) = system
        .cli(&["outbox", "list", "--order-url", &order_url])
        .await;
    assert!(ok);
    assert!(listed.contains("poison-no-exchange"), "{listed}");
    assert!(listed.contains("poison-unroutable"), "{listed}");

    // Fix the cause of one (a queue for its routing key) and release it: it goes out.
    let inspector = Inspector::connect(&system.vhost.url).await.unwrap();
    inspector
        .channel()
        .queue_declare(
            "test.nowhere".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    inspector
        .channel()
        .queue_bind(
            "test.nowhere".into(),
            "orders".into(),
            "nowhere".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let (ok, _) = system
        .cli(&[
            "outbox",
            "release",
            "poison-unroutable",
            "--order-url",
            &order_url,
        ])
        .await;
    assert!(ok);
    let sent = eventually("the released row published", WAIT, || async {
        let taken = inspector.take_all("test.nowhere").await.ok()?;
        taken.into_iter().next()
    })
    .await
    .unwrap();
    assert_eq!(
        sent.properties.message_id().as_ref().map(|s| s.as_str()),
        Some("poison-unroutable")
    );
    let (ok, listed) = system
        .cli(&["outbox", "list", "--order-url", &order_url, "--json"])
        .await;
    assert!(ok);
    let still: Vec<Value> = listed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(still.len(), 1, "{listed}");
    assert_eq!(still[0]["message_id"], "poison-no-exchange");
    db.close().await;
}

#[tokio::test]
async fn order_created_continues_the_trace_of_the_request() {
    let system = System::start(Options::default()).await;
    let inspector = Inspector::connect(&system.vhost.url).await.unwrap();
    tap(&inspector, "test.traced-tap").await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let body = json!({
        "customer_id": "c-42",
        "items": [{"sku": "SKU-1", "quantity": 1, "unit_price_cents": 1250}],
        "currency": "USD",
        "payment_token": "tok_visa",
    });
    let response = system
        .post_order(body.to_string(), &[("traceparent", &traceparent)])
        .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let published = eventually("order.created published", WAIT, || async {
        inspector
            .take_all("test.traced-tap")
            .await
            .ok()?
            .into_iter()
            .next()
    })
    .await
    .unwrap();
    let sent = published.header("traceparent").expect("a traceparent");
    let parts: Vec<&str> = sent.split('-').collect();
    assert_eq!(parts.len(), 4, "{sent}");
    assert_eq!(parts[1], trace_id, "the request's trace continues: {sent}");
    assert_ne!(parts[2], "00f067aa0ba902b7", "a span of its own: {sent}");
    let order: Value = serde_json::from_slice(&published.body).unwrap();
    assert_eq!(order["order_id"], created["order_id"]);
}
