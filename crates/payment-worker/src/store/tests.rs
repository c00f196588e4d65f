//! The payment's transitions on SQLite and PostgreSQL, in every order a charge and a
//! cancellation can arrive.

use super::{Payment, PaymentStore, Status};
use contracts::names::queues;
use service::db::Db;
use service::inbox::Claim;

const ORDER: &str = "0a7e2b4c-2222-4d4d-8e8e-000000000001";
const PAYMENT: &str = "0a7e2b4c-2222-4d4d-8e8e-00000000000f";

async fn open(store: &PaymentStore) -> Payment {
    store
        .open(
            ORDER,
            2500,
            "EUR",
            Claim::new(Some("created-1"), queues::PAYMENT_ORDER_CREATED),
        )
        .await
        .unwrap()
}

async fn cancel(store: &PaymentStore) -> Payment {
    store
        .cancel(
            ORDER,
            Claim::new(Some("cancelled-1"), queues::PAYMENT_ORDER_CANCELLED),
        )
        .await
        .unwrap()
}

/// (status, charged cents, refunded cents) as stored.
async fn books(store: &PaymentStore) -> (Status, i64, i64) {
    let payment = store.get(ORDER).await.unwrap().unwrap();
    (
        payment.status,
        payment.charged_cents,
        payment.refunded_cents,
    )
}

async fn a_charge_is_recorded_once(db: Db) {
    let store = PaymentStore::new(db);
    assert_eq!(open(&store).await.status, Status::Pending);
    // A redelivered order.created finds the payment it opened.
    assert_eq!(open(&store).await.status, Status::Pending);
    let charged = store.charge(ORDER, PAYMENT).await.unwrap();
    assert_eq!(charged.status, Status::Charged);
    assert_eq!(charged.payment_id.as_deref(), Some(PAYMENT));
    // A second charge (another replica, a redelivery) changes nothing.
    let again = store.charge(ORDER, PAYMENT).await.unwrap();
    assert_eq!(again.charged_at, charged.charged_at);
    assert_eq!(books(&store).await, (Status::Charged, 2500, 0));
}

async fn a_charge_after_a_cancel_is_recorded_with_its_refund(db: Db) {
    let store = PaymentStore::new(db);
    open(&store).await;
    // Cancelled while the provider was charging: the charge lands on a cancelled payment.
    assert_eq!(cancel(&store).await.status, Status::Cancelled);
    let charged = store.charge(ORDER, PAYMENT).await.unwrap();
    assert_eq!(charged.status, Status::Refunded);
    assert_eq!(charged.payment_id.as_deref(), Some(PAYMENT));
    assert!(charged.refunded_at.is_some());
    assert_eq!(books(&store).await, (Status::Refunded, 2500, 2500));
}

async fn a_cancel_before_the_order_is_never_charged(db: Db) {
    let store = PaymentStore::new(db);
    assert_eq!(cancel(&store).await.status, Status::Cancelled);
    // The order.created that comes later finds the tombstone: nothing to charge.
    assert_eq!(open(&store).await.status, Status::Cancelled);
    assert_eq!(
        store.charge(ORDER, PAYMENT).await.unwrap().status,
        Status::Cancelled
    );
    assert_eq!(books(&store).await, (Status::Cancelled, 0, 0));
}

async fn a_cancel_after_the_charge_refunds_it(db: Db) {
    let store = PaymentStore::new(db);
    open(&store).await;
    store.charge(ORDER, PAYMENT).await.unwrap();
    assert_eq!(cancel(&store).await.status, Status::Refunded);
    // A redelivered cancellation refunds nothing more.
    assert_eq!(cancel(&store).await.status, Status::Refunded);
    assert_eq!(books(&store).await, (Status::Refunded, 2500, 2500));
}

async fn a_declined_payment_stays_declined(db: Db) {
    let store = PaymentStore::new(db);
    open(&store).await;
    let declined = store.decline(ORDER, "card_declined").await.unwrap();
    assert_eq!(declined.status, Status::Declined);
    assert_eq!(declined.decline_reason.as_deref(), Some("card_declined"));
    assert_eq!(cancel(&store).await.status, Status::Declined);
    assert_eq!(
        store.charge(ORDER, PAYMENT).await.unwrap().status,
        Status::Declined
    );
    assert_eq!(books(&store).await, (Status::Declined, 0, 0));
}

async fn an_old_inbox_claim_is_pruned_and_a_young_one_still_a_duplicate(db: Db) {
    service::test_retention::an_old_claim_goes_and_a_young_one_stays(
        db,
        &[service::retention::INBOX],
        |id| Claim::new(Some(id), queues::PAYMENT_ORDER_CREATED),
    )
    .await;
}

service::store_tests!(crate::MIGRATOR;
    an_old_inbox_claim_is_pruned_and_a_young_one_still_a_duplicate,
    a_charge_is_recorded_once,
    a_charge_after_a_cancel_is_recorded_with_its_refund,
    a_cancel_before_the_order_is_never_charged,
    a_cancel_after_the_charge_refunds_it,
    a_declined_payment_stays_declined,
);
