//! The saga end to end: the real workers, a real broker, each test in its own vhost.

use e2e::{Options, System, metrics};
use serde_json::json;
use std::time::Duration;
use testkit::eventually;
use testkit::inspect::Inspector;

const WAIT: Duration = Duration::from_secs(120);

#[tokio::test]
async fn two_hundred_approved_orders_complete_and_stock_adds_up() {
    let system = System::start(Options {
        stock: json!({"SKU-A": 1000}),
        ..Options::default()
    })
    .await;
    let ids = system.create_orders(200, Some("tok_visa"), "SKU-A").await;
    let orders = system.wait_terminal(&ids, WAIT).await;
    let completed = orders
        .values()
        .filter(|o| o["status"] == "completed")
        .count();
    assert_eq!(completed, 200, "every order completed");
    let stock = system.stock("SKU-A").await;
    assert_eq!(
        stock,
        json!({"sku": "SKU-A", "available": 800, "reserved": 0, "committed": 200})
    );
    for id in &ids[..10] {
        let payment = system.payment(*id).await.unwrap();
        assert_eq!(payment["status"], "charged");
        assert_eq!(payment["charged_cents"], 1250);
    }
}

#[tokio::test]
async fn a_declined_payment_cancels_the_order_and_releases_its_stock() {
    let system = System::start(Options {
        stock: json!({"SKU-A": 10}),
        ..Options::default()
    })
    .await;
    let id = system.create_order(Some("tok_declined"), "SKU-A", 3).await;
    let order = &system.wait_terminal(&[id], WAIT).await[&id];
    assert_eq!(order["status"], "cancelled");
    assert_eq!(order["reason"], "payment_declined");
    let stock = eventually("stock released", WAIT, || async {
        let stock = system.stock("SKU-A").await;
        (stock["reserved"] == 0 && stock["available"] == 10).then_some(stock)
    })
    .await
    .unwrap();
    assert_eq!(stock["committed"], 0);
    let payment = system.payment(id).await.unwrap();
    assert_eq!(payment["status"], "declined");
    assert_eq!(payment["charged_cents"], 0);
}

#[tokio::test]
async fn a_shortage_cancels_the_order_and_refunds_the_charge() {
    let mut system = System::start(Options {
        stock: json!({"SKU-SCARCE": 5}),
        ..Options::default()
    })
    .await;
    // Hold the stock worker back so that the payment goes through first (the order comes from
    // outside the API, which would ask the stock worker for prices).
    system.stocks[0].kill();
    let id = system.publish_order("tok_visa", "SKU-SCARCE", 6).await;
    eventually("charged", WAIT, || async {
        let payment = system.payment(id).await?;
        (payment["status"] == "charged").then_some(())
    })
    .await
    .unwrap();
    system.stocks[0].restart();
    system.wait_ready(&system.stocks[0]).await;

    let order = &system.wait_terminal(&[id], WAIT).await[&id];
    assert_eq!(order["status"], "cancelled");
    assert_eq!(order["reason"], "out_of_stock");
    let payment = eventually("refunded", WAIT, || async {
        let payment = system.payment(id).await?;
        (payment["status"] == "refunded").then_some(payment)
    })
    .await
    .unwrap();
    assert_eq!(
        payment["charged_cents"], 7500,
        "the payment store shows the charge"
    );
    assert_eq!(payment["refunded_cents"], 7500, "and its refund");
    let stock = system.stock("SKU-SCARCE").await;
    assert_eq!(
        stock,
        json!({"sku": "SKU-SCARCE", "available": 5, "reserved": 0, "committed": 0})
    );
    eventually("order worker saw the refund", WAIT, || async {
        (system.order(id).await["refunded"] == true).then_some(())
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn transient_failures_are_retried_until_the_order_completes() {
    let system = System::start(Options::default()).await;
    let id = system
        .create_order(Some("tok_transient_2"), "SKU-1", 1)
        .await;
    let order = &system.wait_terminal(&[id], WAIT).await[&id];
    assert_eq!(order["status"], "completed");
    let retried =
        metrics::deliveries(&system.payments[0], "payment.order-created", "retryable").await;
    assert_eq!(
        retried,
        Some(2.0),
        "two retries, visible in the worker's metrics"
    );
    let handled =
        metrics::deliveries(&system.payments[0], "payment.order-created", "handled").await;
    assert_eq!(handled, Some(1.0));
    // The redelivered messages carried retry-count 1 and 2: the worker's delivery spans say so.
    let log = system.payments[0].log();
    for retry_count in 1..=2 {
        assert!(
            log.lines().any(|line| line.contains(&id.to_string())
                && line.contains(&format!("retry_count={retry_count}"))),
            "a delivery of {id} with retry_count={retry_count} in the payment worker's log"
        );
    }
    let payment = system.payment(id).await.unwrap();
    assert_eq!(payment["status"], "charged");
    let mut system = system;
    for worker in [
        &mut system.orders[0],
        &mut system.payments[0],
        &mut system.stocks[0],
    ] {
        assert!(
            worker.terminate(),
            "{} exits cleanly on SIGTERM",
            worker.name()
        );
    }
}

#[tokio::test]
async fn a_malformed_order_created_lands_in_every_dlq_and_the_workers_go_on() {
    let system = System::start(Options::default()).await;
    let inspector = Inspector::connect(&system.vhost.url).await.unwrap();
    let garbage = br#"{"order_id": "not-a-uuid", "items": "#.to_vec();
    inspector
        .channel()
        .basic_publish(
            "orders".into(),
            "order.created".into(),
            lapin::options::BasicPublishOptions::default(),
            &garbage,
            lapin::BasicProperties::default()
                .with_delivery_mode(2)
                .with_type("order.created".into()),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    for queue in [
        "payment.order-created.dlq",
        "stock.order-created.dlq",
        "order.order-created.dlq",
    ] {
        let dead = eventually(queue, WAIT, || async {
            let taken = inspector.take_all(queue).await.ok()?;
            (!taken.is_empty()).then_some(taken)
        })
        .await
        .unwrap();
        assert_eq!(dead.len(), 1, "{queue}");
        assert_eq!(dead[0].header("error-kind").as_deref(), Some("malformed"));
        assert_eq!(dead[0].body, garbage, "kept byte for byte");
    }
    let id = system.create_order(Some("tok_visa"), "SKU-1", 1).await;
    assert_eq!(
        system.wait_terminal(&[id], WAIT).await[&id]["status"],
        "completed"
    );
}

#[tokio::test]
async fn the_same_event_twice_has_one_effect() {
    let system = System::start(Options {
        stock: json!({"SKU-A": 100}),
        ..Options::default()
    })
    .await;
    let id = system.create_order(Some("tok_visa"), "SKU-A", 4).await;
    assert_eq!(
        system.wait_terminal(&[id], WAIT).await[&id]["status"],
        "completed"
    );

    // Publish the very same order.created again (same deterministic message_id).
    let order = system.order(id).await;
    let event = contracts::OrderCreated {
        order_id: id,
        customer_id: "c-42".into(),
        items: serde_json::from_value(order["items"].clone()).unwrap(),
        total_cents: 5000,
        currency: "USD".into(),
        payment_token: Some("tok_visa".into()),
        created_at: time::OffsetDateTime::now_utc(),
    };
    let publisher =
        broker::Publisher::new(&broker::BrokerConfig::new(&system.vhost.url, "e2e")).unwrap();
    contracts::publish(&publisher, &event).await.unwrap();
    for (worker, queue) in [
        (&system.payments[0], "payment.order-created"),
        (&system.stocks[0], "stock.order-created"),
    ] {
        eventually("duplicate handled", WAIT, || async {
            let handled = metrics::deliveries(worker, queue, "handled").await;
            (handled == Some(2.0)).then_some(())
        })
        .await
        .unwrap();
    }
    let stock = system.stock("SKU-A").await;
    assert_eq!(
        stock,
        json!({"sku": "SKU-A", "available": 96, "reserved": 0, "committed": 4})
    );
    let payment = system.payment(id).await.unwrap();
    assert_eq!(payment["charged_cents"], 5000, "charged once");
    assert_eq!(system.order(id).await["status"], "completed");
    publisher.close().await;
}

#[tokio::test]
async fn an_always_failing_payment_is_dead_lettered_and_completes_after_replay() {
    let system = System::start(Options::default()).await;
    let id = system.create_order(Some("tok_outage"), "SKU-1", 1).await;
    let queue = "payment.order-created";
    let letters = eventually("dead letter", WAIT, || async {
        let (ok, out) = system.cli(&["dlq", "show", queue, "--json"]).await;
        let letters: Vec<serde_json::Value> = out
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        (ok && !letters.is_empty()).then_some(letters)
    })
    .await
    .unwrap();
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(letter["correlation_id"], id.to_string());
    assert_eq!(letter["type"], "order.created");
    let headers = &letter["headers"];
    assert_eq!(headers["error-kind"], "retries-exhausted");
    assert_eq!(headers["retry-count"], 3);
    assert_eq!(headers["source-queue"], queue);
    assert_eq!(headers["original-exchange"], "orders");
    assert_eq!(headers["original-routing-key"], "order.created");
    assert!(
        headers["error"].as_str().unwrap().contains("unavailable"),
        "{headers}"
    );
    assert!(headers["failed-at"].is_string());

    // What an operator alerts on: the dead letter by queue and reason, and latency as a
    // histogram (buckets) with its HELP text.
    let text = metrics::text(&system.payments[0])
        .await
        .expect("/metrics answers");
    assert_eq!(
        metrics::sample(
            &text,
            "orderflow_dead_letters_total",
            &[("queue", queue), ("reason", "retries-exhausted")]
        ),
        Some(1.0),
        "{text}"
    );
    assert!(text.contains("orderflow_handler_seconds_bucket{"), "{text}");
    assert!(
        text.contains("# HELP orderflow_dead_letters_total"),
        "{text}"
    );

    let order = system.order(id).await;
    assert_eq!(
        order["status"], "pending",
        "visibly stuck while its payment is dead-lettered"
    );
    assert_eq!(order["stock_reserved"], true);

    let (ok, out) = system.cli(&["dlq", "replay", queue]).await;
    assert!(ok, "{out}");
    let order = &system.wait_terminal(&[id], WAIT).await[&id];
    assert_eq!(
        order["status"], "completed",
        "the replayed payment went through"
    );
    let (_, out) = system.cli(&["dlq", "list"]).await;
    assert!(
        out.lines()
            .any(|l| l.starts_with("payment.order-created.dlq") && l.trim_end().ends_with(" 0")),
        "{out}"
    );
}

#[tokio::test]
async fn an_order_published_straight_to_the_exchange_is_adopted_and_compensated() {
    let system = System::start(Options {
        stock: json!({"SKU-A": 10}),
        ..Options::default()
    })
    .await;
    let id = uuid::Uuid::new_v4();
    let event = e2e::order_created(id, "SKU-A", 2, 500, "tok_declined");
    let publisher =
        broker::Publisher::new(&broker::BrokerConfig::new(&system.vhost.url, "e2e")).unwrap();
    contracts::publish(&publisher, &event).await.unwrap();
    let order = eventually("adopted and decided", WAIT, || async {
        let order = system
            .get(&system.orders[0], &format!("/orders/{id}"))
            .await?;
        (order["status"] == "cancelled").then_some(order)
    })
    .await
    .unwrap();
    assert_eq!(order["reason"], "payment_declined");
    eventually("stock released", WAIT, || async {
        let stock = system.stock("SKU-A").await;
        (stock["available"] == 10 && stock["reserved"] == 0).then_some(())
    })
    .await
    .unwrap();
    publisher.close().await;
}

#[tokio::test]
async fn a_fact_that_arrives_before_its_order_is_applied_once_the_order_shows_up() {
    let system = System::start(Options::default()).await;
    let id = uuid::Uuid::new_v4();
    let publisher =
        broker::Publisher::new(&broker::BrokerConfig::new(&system.vhost.url, "e2e")).unwrap();
    // The stock worker's own `stock.reserved` for this order will carry the same message_id.
    let early = contracts::StockReserved {
        order_id: id,
        reserved_at: time::OffsetDateTime::now_utc(),
    };
    contracts::publish(&publisher, &early).await.unwrap();
    eventually("the early fact retried", WAIT, || async {
        let retried =
            metrics::deliveries(&system.orders[0], "order.stock-reserved", "retryable").await;
        (retried >= Some(1.0)).then_some(())
    })
    .await
    .unwrap();

    let order = e2e::order_created(id, "SKU-1", 1, 700, "tok_visa");
    contracts::publish(&publisher, &order).await.unwrap();
    // Had the unknown order's attempt kept its inbox claim, every later `stock.reserved` would
    // count as a duplicate and the order would never complete.
    let order = eventually("adopted and decided", WAIT, || async {
        let order = system
            .get(&system.orders[0], &format!("/orders/{id}"))
            .await?;
        (order["status"] != "pending").then_some(order)
    })
    .await
    .unwrap_or_else(|err| panic!("{err}: logs in {}", system.dir.display()));
    assert_eq!(order["status"], "completed");
    let mut inspector = Inspector::connect(&system.vhost.url).await.unwrap();
    assert_eq!(
        inspector.count("order.stock-reserved.dlq").await.unwrap(),
        0
    );
    publisher.close().await;
}
