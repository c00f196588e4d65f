//! `order.created` events from outside the API are checked like API requests: one that breaks
//! the contract is rejected into every consumer's DLQ with the reason, and nothing is charged,
//! reserved or adopted for it.

use e2e::{Options, System};
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;
use testkit::eventually;
use testkit::inspect::{Inspector, Taken};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(120);

/// Breaks one part of a valid outside order.
type Breakage = fn(&mut contracts::OrderCreated);

/// Each malformed variant, and the field its rejection must name.
fn variants() -> Vec<(&'static str, Breakage)> {
    vec![
        ("total_cents", |o| o.total_cents += 1),
        ("total_cents", |o| o.total_cents = u64::MAX),
        ("items", |o| {
            o.items.clear();
            o.total_cents = 0;
        }),
        ("items[0].quantity", |o| {
            o.items[0].quantity = 0;
            o.total_cents = 0;
        }),
        ("currency", |o| o.currency = "XXX".into()),
    ]
}

/// Takes dead letters from `queue` until `n` are in, whatever the polls bring each time.
async fn take(inspector: &Inspector, queue: &str, n: usize) -> Vec<Taken> {
    let letters = std::sync::Mutex::new(Vec::new());
    eventually(queue, WAIT, || async {
        let taken = inspector.take_all(queue).await.ok()?;
        let mut letters = letters.lock().unwrap();
        letters.extend(taken);
        (letters.len() >= n).then_some(())
    })
    .await
    .unwrap_or_else(|err| panic!("{err}: {} dead letters", letters.lock().unwrap().len()));
    letters.into_inner().unwrap()
}

#[tokio::test]
async fn an_order_created_that_breaks_the_contract_is_rejected_by_every_consumer() {
    let system = System::start(Options {
        stock: json!({"SKU-A": 10}),
        ..Options::default()
    })
    .await;
    let publisher =
        broker::Publisher::new(&broker::BrokerConfig::new(&system.vhost.url, "e2e")).unwrap();
    let mut expected = HashMap::new();
    for (field, break_it) in variants() {
        let id = Uuid::new_v4();
        let mut event = e2e::order_created(id, "SKU-A", 2, 500, "tok_visa");
        break_it(&mut event);
        contracts::publish(&publisher, &event).await.unwrap();
        expected.insert(id.to_string(), field);
    }
    let inspector = Inspector::connect(&system.vhost.url).await.unwrap();
    for queue in [
        "payment.order-created.dlq",
        "stock.order-created.dlq",
        "order.order-created.dlq",
    ] {
        let letters = take(&inspector, queue, expected.len()).await;
        assert_eq!(letters.len(), expected.len(), "{queue}");
        for letter in &letters {
            let id = letter
                .properties
                .correlation_id()
                .as_ref()
                .unwrap()
                .to_string();
            let field = expected[&id];
            assert_eq!(
                letter.header("error-kind").as_deref(),
                Some("rejected"),
                "{queue} {id}"
            );
            let error = letter.header("error").unwrap_or_default();
            assert!(
                error.contains("invalid order.created") && error.contains(field),
                "{queue} {id}: the error names {field}: {error}"
            );
        }
    }
    // Every consumer has settled every event: nothing was charged, reserved or adopted.
    let charges = system
        .get(&system.payments[0], "/provider/charges")
        .await
        .unwrap();
    assert_eq!(
        charges["charges"], 0,
        "no charge at the provider: {charges}"
    );
    for id in expected.keys() {
        assert_eq!(system.payment(id.parse().unwrap()).await, None, "{id}");
        assert_eq!(
            system
                .get(&system.orders[0], &format!("/orders/{id}"))
                .await,
            None,
            "{id} not adopted"
        );
    }
    assert_eq!(
        system.stock("SKU-A").await,
        json!({"sku": "SKU-A", "available": 10, "reserved": 0, "committed": 0})
    );
    publisher.close().await;
}
