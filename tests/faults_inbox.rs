//! The order worker's inbox and reused message ids: a fact about another order that carries the
//! `message_id` of a fact already applied is applied to its own order, never dropped.

use e2e::{Options, System, metrics};
use std::time::Duration;
use testkit::eventually;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(120);

#[tokio::test]
async fn a_reused_message_id_on_another_orders_fact_moves_that_order() {
    let mut system = System::start(Options::default()).await;
    // No stock worker: the only `stock.reserved` facts are the ones this test publishes (and no
    // catalogue: the orders come from outside the API).
    system.stocks[0].kill();
    let a = system.publish_order("tok_visa", "SKU-1", 1).await;
    let b = system.publish_order("tok_visa", "SKU-1", 1).await;
    for id in [a, b] {
        eventually("adopted and paid", WAIT, || async {
            let order = system
                .get(system.order_api(), &format!("/orders/{id}"))
                .await?;
            (order["paid"] == true).then_some(())
        })
        .await
        .unwrap();
    }
    let publisher =
        broker::Publisher::new(&broker::BrokerConfig::new(&system.vhost.url, "e2e")).unwrap();
    let reused = Uuid::new_v4().to_string();
    for (n, id) in [a, b].into_iter().enumerate() {
        let fact = contracts::StockReserved {
            order_id: id,
            reserved_at: time::OffsetDateTime::now_utc(),
        };
        let message = contracts::outgoing(&fact, "e2e")
            .unwrap()
            .with_message_id(&reused);
        publisher.publish(&message).await.unwrap();
        // Settled (acked) means the order worker has stored what it made of it.
        eventually("fact settled", WAIT, || async {
            let handled =
                metrics::deliveries(&system.orders[0], "order.stock-reserved", "handled").await?;
            (handled >= (n + 1) as f64).then_some(())
        })
        .await
        .unwrap();
    }
    for id in [a, b] {
        let order = system.order(id).await;
        assert_eq!(order["stock_reserved"], true, "{id}: {order}");
        assert_eq!(order["status"], "completed", "{id}: {order}");
    }
    publisher.close().await;
}
