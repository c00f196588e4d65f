//! Crashes and replicas: a payment worker killed mid-run, replicas sharing PostgreSQL, and the
//! order worker replica that relays the outbox killed mid-run.

use e2e::{Options, System, metrics};
use serde_json::json;
use std::time::Duration;
use testkit::eventually;

const WAIT: Duration = Duration::from_secs(240);

#[tokio::test]
async fn a_payment_worker_killed_mid_run_charges_every_order_exactly_once() {
    let mut system = System::start(Options {
        stock: json!({"SKU-A": 10_000}),
        ..Options::default()
    })
    .await;
    // Orders pile up while the payment worker is down; it is killed once it is busy with them.
    system.payments[0].kill();
    let ids = system.create_orders(500, Some("tok_visa"), "SKU-A").await;
    system.payments[0].restart();
    let handled_at_kill = eventually("payment worker busy", WAIT, || async {
        let handled =
            metrics::deliveries(&system.payments[0], "payment.order-created", "handled").await?;
        (handled >= 50.0).then_some(handled)
    })
    .await
    .unwrap();
    system.payments[0].kill();
    println!("SIGKILLed the payment worker after {handled_at_kill} of 500 charges");
    assert!(handled_at_kill < 500.0, "killed mid-run");
    system.payments[0].restart();
    system.wait_ready(&system.payments[0]).await;

    let orders = system.wait_terminal(&ids, WAIT).await;
    assert!(
        orders.values().all(|o| o["status"] == "completed"),
        "all 500 completed"
    );
    for id in &ids {
        let payment = system.payment(*id).await.unwrap();
        assert_eq!(payment["status"], "charged", "{id}");
        assert_eq!(payment["charged_cents"], 1250, "{id}: exactly one charge");
    }
    let stock = system.stock("SKU-A").await;
    assert_eq!(stock["committed"], 500);
    assert_eq!(stock["reserved"], 0);
}

#[tokio::test]
async fn replicas_on_postgres_never_oversell_or_double_charge() {
    let system = System::start(Options {
        stock: json!({"SKU-SCARCE": 50}),
        replicas: 2,
        postgres: true,
        ..Options::default()
    })
    .await;
    let ids = system
        .create_orders(200, Some("tok_visa"), "SKU-SCARCE")
        .await;
    let orders = system.wait_terminal(&ids, WAIT).await;
    let completed: Vec<_> = ids
        .iter()
        .filter(|id| orders[*id]["status"] == "completed")
        .collect();
    let cancelled: Vec<_> = ids
        .iter()
        .filter(|id| orders[*id]["status"] == "cancelled")
        .collect();
    assert_eq!(completed.len(), 50, "exactly the stock sold");
    assert_eq!(cancelled.len(), 150);
    assert!(
        cancelled
            .iter()
            .all(|id| orders[*id]["reason"] == "out_of_stock")
    );
    let stock = system.stock("SKU-SCARCE").await;
    assert_eq!(
        stock,
        json!({"sku": "SKU-SCARCE", "available": 0, "reserved": 0, "committed": 50})
    );
    for id in &completed {
        let payment = system.payment(**id).await.unwrap();
        assert_eq!(
            (
                payment["status"].as_str(),
                payment["charged_cents"].as_i64()
            ),
            (Some("charged"), Some(1250))
        );
    }
    for id in &cancelled {
        let payment = eventually("compensated", WAIT, || async {
            let payment = system.payment(**id).await?;
            matches!(payment["status"].as_str(), Some("refunded" | "cancelled")).then_some(payment)
        })
        .await
        .unwrap();
        assert_eq!(
            payment["charged_cents"], payment["refunded_cents"],
            "{id}: no charge without a refund"
        );
    }
}

/// The order worker whose relay holds the lease (its `orderflow_lease_held` is 1).
async fn relay_leader(system: &System) -> usize {
    eventually("one order worker relaying", WAIT, || async {
        let mut leaders = Vec::new();
        for (i, worker) in system
            .orders
            .iter()
            .enumerate()
            .filter(|(_, w)| w.running())
        {
            let text = metrics::text(worker).await?;
            let held = metrics::sample(&text, "orderflow_lease_held", &[("job", "outbox-relay")]);
            if held == Some(1.0) {
                leaders.push(i);
            }
        }
        (leaders.len() == 1).then(|| leaders[0])
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn an_order_worker_replica_killed_mid_run_loses_no_order_and_charges_each_once() {
    let mut system = System::start(Options {
        stock: json!({"SKU-A": 10_000}),
        replicas: 2,
        postgres: true,
        ..Options::default()
    })
    .await;
    let leader = relay_leader(&system).await;
    let standby = 1 - leader;
    // Orders through both APIs; the leader is killed while their events are still going out.
    let mut ids = system.create_orders(200, Some("tok_visa"), "SKU-A").await;
    system.orders[leader].kill();
    println!("SIGKILLed the relaying order worker {leader} after 200 orders");
    ids.extend(system.create_orders(100, Some("tok_visa"), "SKU-A").await);
    assert_eq!(
        relay_leader(&system).await,
        standby,
        "the standby took the relay over"
    );

    let orders = system.wait_terminal(&ids, WAIT).await;
    assert!(
        orders.values().all(|o| o["status"] == "completed"),
        "every order completed"
    );
    let charges = system
        .get(&system.payments[0], "/provider/charges")
        .await
        .unwrap();
    assert_eq!(charges["charges"], ids.len(), "one charge per order");
    assert_eq!(charges["charged_cents"], 1250 * ids.len());
    // The stock worker commits a reservation on `order.paid`, which may trail the completion.
    let stock = eventually("every reservation committed", WAIT, || async {
        let stock = system.stock("SKU-A").await;
        (stock["reserved"] == 0).then_some(stock)
    })
    .await
    .unwrap();
    assert_eq!(stock["committed"], ids.len(), "one reservation per order");
}
