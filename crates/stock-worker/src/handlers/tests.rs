//! The handlers without a broker: what each publishes (with its deterministic `message_id`) and
//! how each outcome reaches the runtime.

use super::{Commit, Release, Reserve};
use crate::store::StockStore;
use broker::{Handler, HandlerError, Message, RecordingPublisher};
use contracts::fixtures::{self, only_published};
use contracts::names::queues;
use contracts::{OrderCancelled, OrderCreated, OrderPaid, StockRejected, StockReserved};
use service::test_store::TestStore;
use uuid::Uuid;

/// The handlers over one store holding 10 × SKU-1 and 1 × SKU-2, and the publisher they share.
struct Setup {
    reserve: Reserve<RecordingPublisher>,
    commit: Commit,
    release: Release,
    publisher: RecordingPublisher,
    store: StockStore,
    _scratch: TestStore,
}

async fn setup() -> Setup {
    let scratch = TestStore::sqlite(&crate::MIGRATOR).await;
    let store = StockStore::new(scratch.db());
    let inventory = crate::catalogue::units(&[("SKU-1", 10), ("SKU-2", 1)]);
    store.seed(&inventory).await.unwrap();
    let publisher = RecordingPublisher::new(crate::APP_ID);
    Setup {
        reserve: Reserve {
            store: store.clone(),
            publisher: publisher.clone(),
        },
        commit: Commit {
            store: store.clone(),
        },
        release: Release {
            store: store.clone(),
        },
        publisher,
        store,
        _scratch: scratch,
    }
}

fn created(order_id: Uuid, lines: &[(&str, u32)]) -> Message<OrderCreated> {
    let event = fixtures::order_created(order_id, lines, None);
    Message::delivered(event, queues::STOCK_ORDER_CREATED, "created-1")
}

fn paid(order_id: Uuid) -> Message<OrderPaid> {
    let event = fixtures::order_paid(order_id);
    Message::delivered(event, queues::STOCK_ORDER_PAID, "paid-1")
}

fn cancelled(order_id: Uuid) -> Message<OrderCancelled> {
    let event = fixtures::order_cancelled(order_id, "payment_declined");
    Message::delivered(event, queues::STOCK_ORDER_CANCELLED, "cancelled-1")
}

async fn available(store: &StockStore, sku: &str) -> i64 {
    store.level(sku).await.unwrap().unwrap().available
}

/// Delivers `order` for 3 × SKU-1; asserts it is announced as reserved and 7 units are left.
async fn assert_reserves_three(s: &Setup, order: Uuid) {
    s.reserve
        .handle(created(order, &[("SKU-1", 3)]))
        .await
        .unwrap();
    let event: StockReserved = only_published(&s.publisher);
    assert_eq!(event.order_id, order);
    assert_eq!(available(&s.store, "SKU-1").await, 7);
}

#[tokio::test]
async fn a_served_order_is_reserved_and_announced() {
    let s = setup().await;
    assert_reserves_three(&s, Uuid::new_v4()).await;
}

#[tokio::test]
async fn a_short_order_is_rejected_naming_the_short_skus() {
    let s = setup().await;
    let order = Uuid::new_v4();
    s.reserve
        .handle(created(order, &[("SKU-1", 3), ("SKU-2", 2)]))
        .await
        .unwrap();
    let event: StockRejected = only_published(&s.publisher);
    assert_eq!(event.order_id, order);
    assert_eq!(event.reason, "out_of_stock");
    assert_eq!(event.skus, ["SKU-2"]);
    assert_eq!(available(&s.store, "SKU-1").await, 10);
}

#[tokio::test]
async fn an_order_that_breaks_the_contract_is_rejected_and_reserves_nothing() {
    let s = setup().await;
    let outcome = s
        .reserve
        .handle(created(Uuid::new_v4(), &[("SKU-1", 0)]))
        .await;
    assert!(
        matches!(outcome, Err(HandlerError::Reject(_))),
        "{outcome:?}"
    );
    assert!(s.publisher.published().is_empty());
    assert_eq!(available(&s.store, "SKU-1").await, 10);
}

#[tokio::test]
async fn a_failed_announcement_is_retried_and_resent_with_the_same_id() {
    let s = setup().await;
    let order = Uuid::new_v4();
    s.publisher.fail_next(1);
    let outcome = s.reserve.handle(created(order, &[("SKU-1", 3)])).await;
    assert!(
        matches!(outcome, Err(HandlerError::Retry(_))),
        "{outcome:?}"
    );
    assert!(s.publisher.published().is_empty());
    // The redelivery finds the reservation made and announces it; stock is taken once.
    assert_reserves_three(&s, order).await;
}

#[tokio::test]
async fn a_cancelled_order_is_never_reserved_nor_announced() {
    let s = setup().await;
    let order = Uuid::new_v4();
    s.release.handle(cancelled(order)).await.unwrap();
    s.reserve
        .handle(created(order, &[("SKU-1", 3)]))
        .await
        .unwrap();
    assert!(s.publisher.published().is_empty());
    assert_eq!(available(&s.store, "SKU-1").await, 10);
}

#[tokio::test]
async fn a_payment_ahead_of_the_order_sells_on_reservation_and_announces_it() {
    let s = setup().await;
    let order = Uuid::new_v4();
    s.commit.handle(paid(order)).await.unwrap();
    s.reserve
        .handle(created(order, &[("SKU-1", 2)]))
        .await
        .unwrap();
    let event: StockReserved = only_published(&s.publisher);
    assert_eq!(event.order_id, order);
    let level = s.store.level("SKU-1").await.unwrap().unwrap();
    assert_eq!(
        (level.available, level.reserved, level.committed),
        (8, 0, 2)
    );
}
