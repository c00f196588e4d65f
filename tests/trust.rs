//! Who may publish a fact: each worker on its own least-privilege broker user (the topology
//! applied by `orderflow topology apply`), the broker validating the `user_id` every publisher
//! stamps, and consumers taking a fact only from its publisher's user (`PUBLISHER_USERS`), or
//! from a copy their own user or an operator made of it.

use broker::{BrokerConfig, Outgoing, Publisher};
use e2e::process::Kind;
use e2e::{Options, System, least_privilege};
use serde_json::Value;
use std::time::Duration;
use testkit::eventually;

const WAIT: Duration = Duration::from_secs(120);

/// The dead letters `dlq show` lists for `queue`, once there is one.
async fn dead_letters(system: &System, queue: &str) -> Vec<Value> {
    eventually(&format!("a dead letter in {queue}.dlq"), WAIT, || async {
        let (ok, out) = system.cli(&["dlq", "show", queue, "--json"]).await;
        let letters: Vec<Value> = out
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        (ok && !letters.is_empty()).then_some(letters)
    })
    .await
    .unwrap_or_else(|err| panic!("{err}; logs in {}", system.dir.display()))
}

#[tokio::test]
async fn a_forged_order_paid_never_completes_an_order_and_the_real_one_does() {
    let system = System::start(Options {
        own_users: true,
        ..Options::default()
    })
    .await;
    // Its payment fails until an operator replays it: the order waits, reserved, unpaid.
    let id = system.create_order(Some("tok_outage"), "SKU-1", 1).await;

    // The stock worker's user claims the payment. The payment worker's exchange refuses it.
    let (stock_url, stock_user) = &system.users["stock-worker"];
    let forger = Publisher::new(&BrokerConfig::new(stock_url, "payment-worker")).unwrap();
    let paid = contracts::OrderPaid {
        order_id: id,
        payment_id: uuid::Uuid::new_v4(),
        amount_cents: 1250,
        currency: "USD".into(),
        paid_at: time::OffsetDateTime::now_utc(),
    };
    let refused = forger.publish_event(&paid).await.unwrap_err();
    assert!(refused.to_string().contains("ACCESS_REFUSED"), "{refused}");
    // Straight into the order worker's queue (its retry copies need the default exchange), with
    // the payment worker's app_id: the broker takes it, the order worker does not.
    let mut forged = Outgoing::event(&paid, "payment-worker").unwrap();
    forged.exchange = String::new();
    forged.routing_key = "order.order-paid".into();
    forger.publish(&forged).await.unwrap();
    forger.close().await;

    let letters = dead_letters(&system, "order.order-paid").await;
    assert_eq!(letters.len(), 1);
    let headers = &letters[0]["headers"];
    assert_eq!(headers["error-kind"], "rejected");
    assert_eq!(headers["error-type"], "untrusted-publisher");
    assert!(
        headers["error"]
            .as_str()
            .unwrap()
            .contains(stock_user.as_str()),
        "names the forger: {headers}"
    );
    let order = system.order(id).await;
    assert_eq!(
        (order["status"].as_str(), order["paid"].as_bool()),
        (Some("pending"), Some(false))
    );

    // The operator replays the real payment; the order completes on the payment worker's facts
    // (and the stock worker's, each published by its own user).
    dead_letters(&system, "payment.order-created").await;
    let (ok, out) = system
        .cli(&["dlq", "replay", "payment.order-created"])
        .await;
    assert!(ok, "{out}");
    let order = &system.wait_terminal(&[id], WAIT).await[&id];
    assert_eq!(order["status"], "completed", "{order}");
}

/// The Kubernetes users get the permissions the tests above run the workers with.
#[test]
fn the_kubernetes_users_have_the_tested_permissions() {
    let manifest = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/k8s/broker-users.yaml"
    ))
    .unwrap();
    for kind in [Kind::Order, Kind::Payment, Kind::Stock] {
        let grants = least_privilege(kind);
        let block = manifest
            .split("---")
            .find(|doc| {
                doc.contains("kind: Permission")
                    && doc.contains(&format!("name: {}", kind.binary()))
            })
            .unwrap_or_else(|| panic!("no Permission for {}", kind.binary()));
        for line in [
            format!("configure: \"{}\"", grants.configure),
            format!("write: '{}'", grants.write),
            format!("read: '{}'", grants.read),
        ] {
            assert!(
                block.contains(&line),
                "{}: {line} not in\n{block}",
                kind.binary()
            );
        }
    }
}

/// So do the compose users (`deploy/rabbitmq/definitions.json`, which `deploy/compose.yaml`
/// loads).
#[test]
fn the_compose_users_have_the_tested_permissions() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/rabbitmq/definitions.json"
    ))
    .unwrap();
    let definitions: Value = serde_json::from_str(&text).unwrap();
    let users: Vec<&str> = definitions["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["name"].as_str())
        .collect();
    assert!(!users.contains(&"guest"), "no guest: {users:?}");
    for kind in [Kind::Order, Kind::Payment, Kind::Stock] {
        let grants = least_privilege(kind);
        let granted = definitions["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["user"] == kind.binary())
            .unwrap_or_else(|| panic!("no permissions for {}", kind.binary()));
        assert_eq!(
            (&granted["configure"], &granted["write"], &granted["read"]),
            (
                &Value::from(grants.configure),
                &Value::from(grants.write),
                &Value::from(grants.read)
            ),
            "{}",
            kind.binary()
        );
    }
}
