//! The store's orderings on SQLite and PostgreSQL: a payment or a cancellation that overtakes
//! the reservation, a shortage, a redelivery.

use super::{Lines, Reservation, StockLevel, StockStore};
use contracts::names::queues;
use service::db::Db;
use service::inbox::Claim;

const ORDER: &str = "0a7e2b4c-1111-4d4d-8e8e-000000000001";

/// A store holding `inventory` (units per SKU).
async fn stocked(db: Db, inventory: &[(&str, u64)]) -> StockStore {
    let store = StockStore::new(db);
    store
        .seed(&crate::catalogue::units(inventory))
        .await
        .unwrap();
    store
}

fn lines(lines: &[(&str, i64)]) -> Lines {
    lines
        .iter()
        .map(|(sku, units)| ((*sku).to_owned(), *units))
        .collect()
}

/// `sku`'s (available, reserved, committed).
async fn counts(store: &StockStore, sku: &str) -> (i64, i64, i64) {
    let StockLevel {
        available,
        reserved,
        committed,
        ..
    } = store.level(sku).await.unwrap().unwrap();
    (available, reserved, committed)
}

async fn reserve(store: &StockStore, wanted: &Lines) -> Reservation {
    store
        .reserve(
            ORDER,
            wanted,
            Claim::new(Some("created-1"), queues::STOCK_ORDER_CREATED),
        )
        .await
        .unwrap()
}

async fn paid(store: &StockStore) -> Reservation {
    store
        .commit(ORDER, Claim::new(Some("paid-1"), queues::STOCK_ORDER_PAID))
        .await
        .unwrap()
}

async fn cancelled(store: &StockStore) -> Reservation {
    store
        .release(
            ORDER,
            Claim::new(Some("cancelled-1"), queues::STOCK_ORDER_CANCELLED),
        )
        .await
        .unwrap()
}

async fn reserved_then_paid_sells_the_units(db: Db) {
    let store = stocked(db, &[("SKU-1", 10)]).await;
    assert_eq!(
        reserve(&store, &lines(&[("SKU-1", 3)])).await,
        Reservation::Reserved
    );
    assert_eq!(counts(&store, "SKU-1").await, (7, 3, 0));
    assert_eq!(paid(&store).await, Reservation::Committed);
    assert_eq!(counts(&store, "SKU-1").await, (7, 0, 3));
}

async fn reserved_then_cancelled_returns_the_units(db: Db) {
    let store = stocked(db, &[("SKU-1", 10)]).await;
    reserve(&store, &lines(&[("SKU-1", 3)])).await;
    assert_eq!(cancelled(&store).await, Reservation::Released);
    assert_eq!(counts(&store, "SKU-1").await, (10, 0, 0));
}

async fn paid_before_reservation_is_sold_on_reservation(db: Db) {
    let store = stocked(db, &[("SKU-1", 10)]).await;
    assert_eq!(paid(&store).await, Reservation::Paid);
    assert_eq!(
        counts(&store, "SKU-1").await,
        (10, 0, 0),
        "nothing to sell yet"
    );
    assert_eq!(
        reserve(&store, &lines(&[("SKU-1", 4)])).await,
        Reservation::Committed
    );
    assert_eq!(counts(&store, "SKU-1").await, (6, 0, 4), "sold at once");
    assert_eq!(
        store.reservation(ORDER).await.unwrap(),
        Some(Reservation::Committed)
    );
}

/// Cancels the order before its reservation and checks it is never reserved.
async fn cancel_then_reserve_takes_nothing(store: &StockStore) {
    assert_eq!(cancelled(store).await, Reservation::Cancelled);
    assert_eq!(
        reserve(store, &lines(&[("SKU-1", 4)])).await,
        Reservation::Cancelled
    );
    assert_eq!(counts(store, "SKU-1").await, (10, 0, 0));
}

async fn cancel_before_reservation_is_never_reserved(db: Db) {
    let store = stocked(db, &[("SKU-1", 10)]).await;
    cancel_then_reserve_takes_nothing(&store).await;
}

async fn paid_then_cancelled_before_reservation_is_never_reserved(db: Db) {
    let store = stocked(db, &[("SKU-1", 10)]).await;
    assert_eq!(paid(&store).await, Reservation::Paid);
    cancel_then_reserve_takes_nothing(&store).await;
}

async fn shortage_gives_back_the_lines_already_taken(db: Db) {
    let store = stocked(db, &[("SKU-A", 10), ("SKU-B", 1), ("SKU-C", 10)]).await;
    let wanted = lines(&[("SKU-A", 3), ("SKU-B", 2), ("SKU-C", 1), ("SKU-UNKNOWN", 1)]);
    assert_eq!(
        reserve(&store, &wanted).await,
        Reservation::Rejected(vec!["SKU-B".to_owned(), "SKU-UNKNOWN".to_owned()])
    );
    for (sku, units) in [("SKU-A", 10), ("SKU-B", 1), ("SKU-C", 10)] {
        assert_eq!(
            counts(&store, sku).await,
            (units, 0, 0),
            "{sku} holds nothing"
        );
    }
}

async fn paid_first_shortage_sells_nothing(db: Db) {
    let store = stocked(db, &[("SKU-A", 10), ("SKU-B", 1)]).await;
    paid(&store).await;
    assert_eq!(
        reserve(&store, &lines(&[("SKU-A", 3), ("SKU-B", 2)])).await,
        Reservation::Rejected(vec!["SKU-B".to_owned()])
    );
    assert_eq!(counts(&store, "SKU-A").await, (10, 0, 0));
    assert_eq!(counts(&store, "SKU-B").await, (1, 0, 0));
}

async fn a_redelivered_reservation_takes_stock_once(db: Db) {
    let store = stocked(db, &[("SKU-1", 10)]).await;
    let wanted = lines(&[("SKU-1", 3)]);
    reserve(&store, &wanted).await;
    assert_eq!(reserve(&store, &wanted).await, Reservation::Reserved);
    // The same order under another message id (a re-publish) is decided already too.
    let again = store
        .reserve(
            ORDER,
            &wanted,
            Claim::new(Some("created-2"), queues::STOCK_ORDER_CREATED),
        )
        .await
        .unwrap();
    assert_eq!(again, Reservation::Reserved);
    assert_eq!(counts(&store, "SKU-1").await, (7, 3, 0));
}

async fn a_corrupt_reservation_is_an_error_and_moves_no_stock(db: Db) {
    let store = stocked(db.clone(), &[("SKU-1", 10)]).await;
    reserve(&store, &lines(&[("SKU-1", 3)])).await;
    sqlx::query("UPDATE reservations SET lines = '{\"SKU-1\": 3' WHERE order_id = $1")
        .bind(ORDER)
        .execute(db.pool())
        .await
        .unwrap();
    let refused = store
        .commit(ORDER, Claim::new(Some("paid-1"), queues::STOCK_ORDER_PAID))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("lines"), "{refused}");
    assert_eq!(counts(&store, "SKU-1").await, (7, 3, 0), "nothing moved");
    sqlx::query("UPDATE reservations SET status = 'lost' WHERE order_id = $1")
        .bind(ORDER)
        .execute(db.pool())
        .await
        .unwrap();
    assert!(
        store.reservation(ORDER).await.is_err(),
        "an unknown state is an error"
    );
}

async fn an_old_inbox_claim_is_pruned_and_a_young_one_still_a_duplicate(db: Db) {
    service::test_retention::an_old_claim_goes_and_a_young_one_stays(
        db,
        &[service::retention::INBOX],
        |id| Claim::new(Some(id), queues::STOCK_ORDER_CREATED),
    )
    .await;
}

service::store_tests!(crate::MIGRATOR;
    an_old_inbox_claim_is_pruned_and_a_young_one_still_a_duplicate,
    reserved_then_paid_sells_the_units,
    reserved_then_cancelled_returns_the_units,
    paid_before_reservation_is_sold_on_reservation,
    cancel_before_reservation_is_never_reserved,
    paid_then_cancelled_before_reservation_is_never_reserved,
    shortage_gives_back_the_lines_already_taken,
    paid_first_shortage_sells_nothing,
    a_redelivered_reservation_takes_stock_once,
    a_corrupt_reservation_is_an_error_and_moves_no_stock,
);
