//! Faults in the middle of a charge: the provider has charged the card and the payment worker
//! has not recorded it yet when it dies or loses its consumer connection. The redelivery asks
//! the provider again with the same idempotency key, so the customer is charged once.

use e2e::{Options, System};
use serde_json::{Value, json};
use std::time::Duration;
use testkit::eventually;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(120);

/// Long enough for the test to act in the provider's pause (it polls every 50 ms).
const SLOW_TOKEN: &str = "tok_slow_5000";

/// What the simulated provider charged for `id`.
async fn provider_charges(system: &System, id: Uuid) -> Option<Value> {
    system
        .get(&system.payments[0], &format!("/provider/charges/{id}"))
        .await
}

/// Waits until the provider has charged `id` while the payment worker still has it `pending`:
/// the window a crash must hit.
async fn charged_but_not_recorded(system: &System, id: Uuid) {
    eventually(
        "charged at the provider, not yet recorded",
        WAIT,
        || async {
            let charges = provider_charges(system, id).await?;
            let payment = system.payment(id).await?;
            (charges["charges"] == 1 && payment["status"] == "pending").then_some(())
        },
    )
    .await
    .unwrap_or_else(|err| panic!("{err}; logs in {}", system.dir.display()));
}

/// The order completes, its payment shows one charge of the total, and so does the provider.
async fn charged_once(system: &System, id: Uuid, total: i64) {
    let order = &system.wait_terminal(&[id], WAIT).await[&id];
    assert_eq!(order["status"], "completed");
    let payment = system.payment(id).await.unwrap();
    assert_eq!(payment["status"], "charged");
    assert_eq!(payment["charged_cents"], total);
    assert_eq!(
        provider_charges(system, id).await.unwrap(),
        json!({"charges": 1, "charged_cents": total, "declines": 0}),
        "the provider charged the customer once"
    );
    let all = system
        .get(&system.payments[0], "/provider/charges")
        .await
        .unwrap();
    assert_eq!(all["charges"], 1);
}

#[tokio::test]
async fn a_payment_worker_killed_mid_charge_charges_the_customer_once() {
    let mut system = System::start(Options::default()).await;
    let id = system.create_order(Some(SLOW_TOKEN), "SKU-1", 2).await;
    charged_but_not_recorded(&system, id).await;
    system.payments[0].kill();
    system.payments[0].restart();
    system.wait_ready(&system.payments[0]).await;
    charged_once(&system, id, 2500).await;
}

#[tokio::test]
async fn a_consumer_connection_closed_mid_charge_charges_the_customer_once() {
    let system = System::start(Options::default()).await;
    let id = system.create_order(Some(SLOW_TOKEN), "SKU-1", 3).await;
    charged_but_not_recorded(&system, id).await;
    let closed = system
        .vhost
        .close_connections("payment-worker-consumer", 1, "test: closed mid-charge")
        .await
        .unwrap();
    assert_eq!(closed, 1);
    charged_once(&system, id, 3750).await;
}

/// The stock runs short while the card is being charged: the cancel finds the payment pending,
/// then the payment worker dies before it records the charge. The redelivered `order.created`
/// asks the provider, finds the charge and refunds it.
#[tokio::test]
async fn a_payment_worker_killed_mid_charge_of_a_cancelled_order_refunds_the_customer() {
    let mut system = System::start(Options::default()).await;
    // Longer than the shortage takes to cancel the order; the kill cuts it short.
    let id = system
        .create_order(Some("tok_slow_30000"), "SKU-SCARCE", 6)
        .await;
    eventually(
        "charged at the provider, cancelled in the store",
        WAIT,
        || async {
            let charges = provider_charges(&system, id).await?;
            let payment = system.payment(id).await?;
            (charges["charges"] == 1 && payment["status"] == "cancelled").then_some(())
        },
    )
    .await
    .unwrap_or_else(|err| panic!("{err}; logs in {}", system.dir.display()));
    system.payments[0].kill();
    system.payments[0].restart();
    system.wait_ready(&system.payments[0]).await;

    let payment = eventually("refunded", WAIT, || async {
        let payment = system.payment(id).await?;
        (payment["status"] == "refunded").then_some(payment)
    })
    .await
    .unwrap_or_else(|err| panic!("{err}; logs in {}", system.dir.display()));
    assert_eq!(payment["charged_cents"], 7500);
    assert_eq!(payment["refunded_cents"], 7500, "the charge is refunded");
    assert_eq!(
        provider_charges(&system, id).await.unwrap()["charges"],
        1,
        "and was made once"
    );
    let order = &system.wait_terminal(&[id], WAIT).await[&id];
    assert_eq!(order["reason"], "out_of_stock");
    eventually("order worker saw the refund", WAIT, || async {
        (system.order(id).await["refunded"] == true).then_some(())
    })
    .await
    .unwrap();
}
