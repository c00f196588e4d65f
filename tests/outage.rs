//! A store outage is not a message failure: payment and stock run on a private PostgreSQL that
//! goes down for longer than the whole retry schedule; once it is back every order completes and
//! nothing is dead-lettered.

use contracts::names::queues;
use e2e::{Options, System};
use serde_json::json;
use std::time::{Duration, Instant};
use testkit::inspect::Inspector;
use testkit::{PrivatePostgres, eventually};

const WAIT: Duration = Duration::from_secs(240);

/// Longer than every attempt of the retry schedule failing: each attempt waits up to the store
/// pool's 10 s acquire timeout before it fails (`service::database`), then 200 ms and 400 ms pass
/// between the three attempts of `RETRY_MAX=2`.
const OUTAGE: Duration = Duration::from_secs(40);

#[tokio::test]
async fn a_store_outage_longer_than_the_retry_schedule_dead_letters_nothing() {
    let pg = PrivatePostgres::start().await.unwrap();
    let system = System::start(Options {
        stock: json!({"SKU-A": 10_000}),
        retry_max: 2,
        retry_initial_ms: 200,
        postgres_server: Some(pg.url("postgres")),
        ..Options::default()
    })
    .await;
    let mut ids = system.create_orders(40, Some("tok_visa"), "SKU-A").await;

    pg.stop().unwrap();
    // The order worker's store (SQLite) is up: these are accepted and reach payment and stock
    // while their store is down.
    ids.extend(system.create_orders(40, Some("tok_visa"), "SKU-A").await);
    tokio::time::sleep(OUTAGE).await;
    pg.start_again().await.unwrap();
    ids.extend(system.create_orders(40, Some("tok_visa"), "SKU-A").await);

    let mut inspector = Inspector::connect(&system.vhost.url).await.unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let mut dead = Vec::new();
        for queue in queues::ALL {
            let dlq = broker::Naming::default().dead_letter_queue(queue);
            let count = inspector.count(&dlq).await.unwrap();
            if count > 0 {
                dead.push((dlq, count));
            }
        }
        assert!(
            dead.is_empty(),
            "the outage dead-lettered messages: {dead:?}; logs in {}",
            system.dir.display()
        );
        let mut pending = 0;
        for id in &ids {
            let order = system.order(*id).await;
            assert_ne!(order["status"], "cancelled", "{id}: {order}");
            if order["status"] != "completed" {
                pending += 1;
            }
        }
        if pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} of {} orders not completed after {WAIT:?}; logs in {}",
            ids.len(),
            system.dir.display()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for id in &ids {
        let payment = system.payment(*id).await.unwrap();
        assert_eq!(payment["charged_cents"], 1250, "{id}: exactly one charge");
    }
    // An order completes on its order.paid and stock.reserved; the stock worker commits the
    // reservation from its own copy of order.paid, which may still be held from the outage.
    let sold = eventually("every reservation committed", WAIT, || async {
        let stock = system.stock("SKU-A").await;
        (stock["committed"] == ids.len() && stock["reserved"] == 0).then_some(stock)
    })
    .await;
    assert!(
        sold.is_ok(),
        "{:?}; logs in {}",
        system.stock("SKU-A").await,
        system.dir.display()
    );
}
