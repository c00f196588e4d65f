//! The handlers without a broker: how each outcome reaches the runtime and what it stores.

use super::{Adopt, ApplyFact};
use crate::store::OrderStore;
use broker::{Handler, HandlerError, Message};
use contracts::fixtures::{order_created, order_paid};
use contracts::names::queues;
use contracts::{OrderCreated, OrderPaid, StockRejected};
use service::test_store::TestStore;
use std::sync::Arc;
use time::OffsetDateTime;
use tokio::sync::Notify;
use uuid::Uuid;

struct Setup {
    apply_fact: ApplyFact,
    adopt: Adopt,
    store: OrderStore,
    _scratch: TestStore,
}

async fn setup() -> Setup {
    let scratch = TestStore::sqlite(&crate::MIGRATOR).await;
    let store = OrderStore::new(scratch.db());
    Setup {
        apply_fact: ApplyFact {
            store: store.clone(),
            wake: Arc::new(Notify::new()),
        },
        adopt: Adopt {
            store: store.clone(),
        },
        store,
        _scratch: scratch,
    }
}

fn created(order_id: Uuid) -> Message<OrderCreated> {
    let event = order_created(order_id, &[("SKU-1", 1)], None);
    Message::delivered(event, queues::ORDER_ORDER_CREATED, "created-1")
}

fn paid(order_id: Uuid) -> Message<OrderPaid> {
    let event = order_paid(order_id);
    Message::delivered(event, queues::ORDER_ORDER_PAID, "paid-1")
}

fn rejected(order_id: Uuid) -> Message<StockRejected> {
    let event = StockRejected {
        order_id,
        reason: "out_of_stock".into(),
        skus: vec!["SKU-1".into()],
        rejected_at: OffsetDateTime::now_utc(),
    };
    Message::delivered(event, queues::ORDER_STOCK_REJECTED, "rejected-1")
}

async fn status(store: &OrderStore, order_id: Uuid) -> Option<String> {
    store
        .get(&order_id.to_string())
        .await
        .unwrap()
        .map(|order| order.status)
}

#[tokio::test]
async fn a_fact_about_an_unknown_order_is_retried() {
    let s = setup().await;
    let outcome = s.apply_fact.handle(paid(Uuid::new_v4())).await;
    assert!(
        matches!(outcome, Err(HandlerError::Retry(_))),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_rejection_cancels_the_order_and_wakes_the_relay() {
    let s = setup().await;
    let order = Uuid::new_v4();
    s.adopt.handle(created(order)).await.unwrap();
    s.apply_fact.handle(rejected(order)).await.unwrap();
    assert_eq!(status(&s.store, order).await.as_deref(), Some("cancelled"));
    // The relay's wake-up is pending: it publishes the order.cancelled now, not at its next poll.
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        s.apply_fact.wake.notified(),
    )
    .await
    .expect("the relay was woken");
    let queued: Vec<_> = s.store.unsent(10).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].event_type, "order.cancelled");
}

#[tokio::test]
async fn an_order_from_outside_is_adopted_as_pending() {
    let s = setup().await;
    let order = Uuid::new_v4();
    s.adopt.handle(created(order)).await.unwrap();
    assert_eq!(status(&s.store, order).await.as_deref(), Some("pending"));
    // Redelivered: still one order.
    s.adopt.handle(created(order)).await.unwrap();
    assert_eq!(s.store.summary().await.unwrap()["pending"], 1);
}

#[tokio::test]
async fn an_order_from_the_own_outbox_is_not_written_again() {
    let s = setup().await;
    let order = Uuid::new_v4();
    let mut own = created(order);
    own.meta.app_id = Some(crate::APP_ID.to_owned());
    s.adopt.handle(own).await.unwrap();
    assert_eq!(status(&s.store, order).await, None);
}

#[tokio::test]
async fn an_order_that_breaks_the_contract_is_rejected_and_not_adopted() {
    let s = setup().await;
    let order = Uuid::new_v4();
    let mut message = created(order);
    message.event.total_cents += 1;
    let outcome = s.adopt.handle(message).await;
    let Err(HandlerError::Reject(err)) = outcome else {
        panic!("expected a rejection, got {outcome:?}");
    };
    assert!(err.to_string().contains("total_cents"), "{err}");
    assert_eq!(status(&s.store, order).await, None);
}
