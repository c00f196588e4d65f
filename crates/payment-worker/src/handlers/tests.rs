//! The handlers with the simulated provider and a recording publisher, no broker: what each
//! publishes and how each outcome reaches the runtime.

use super::{Charge, Refund, payment_id};
use crate::provider::{ChargeRequest, Charges, Provider, Simulated, Tries, Verdict};
use crate::store::{PaymentStore, Status};
use broker::{Handler, HandlerError, Message, RecordingPublisher};
use contracts::fixtures::{only_published, order_cancelled, order_created, published};
use contracts::names::queues;
use contracts::{OrderCancelled, OrderCreated, OrderPaid, PaymentFailed, PaymentRefunded};
use service::inbox::Claim;
use service::test_store::TestStore;
use uuid::Uuid;

struct Setup {
    charge: Charge<RecordingPublisher, Simulated>,
    refund: Refund<RecordingPublisher>,
    publisher: RecordingPublisher,
    store: PaymentStore,
    provider: Simulated,
    scratch: TestStore,
}

async fn setup() -> Setup {
    let scratch = TestStore::sqlite(&crate::MIGRATOR).await;
    let store = PaymentStore::new(scratch.db());
    let provider = Simulated::new(scratch.db());
    let publisher = RecordingPublisher::new(crate::APP_ID);
    Setup {
        charge: Charge {
            store: store.clone(),
            publisher: publisher.clone(),
            provider: provider.clone(),
        },
        refund: Refund {
            store: store.clone(),
            publisher: publisher.clone(),
        },
        publisher,
        store,
        provider,
        scratch,
    }
}

/// An order of 25 units at 100 cents (2,500) paid with `token`.
fn created(order_id: Uuid, token: &str) -> Message<OrderCreated> {
    let event = order_created(order_id, &[("SKU-1", 25)], Some(token));
    Message::delivered(event, queues::PAYMENT_ORDER_CREATED, "created-1")
}

fn cancelled(order_id: Uuid) -> Message<OrderCancelled> {
    let event = order_cancelled(order_id, "out_of_stock");
    Message::delivered(event, queues::PAYMENT_ORDER_CANCELLED, "cancelled-1")
}

async fn charged(provider: &Simulated) -> Charges {
    provider.charges(None).await.unwrap()
}

#[tokio::test]
async fn an_approved_charge_is_announced_as_paid() {
    let s = setup().await;
    let order = Uuid::new_v4();
    s.charge.handle(created(order, "tok_visa")).await.unwrap();
    let paid: OrderPaid = only_published(&s.publisher);
    assert_eq!(paid.order_id, order);
    assert_eq!(paid.payment_id, payment_id(order));
    assert_eq!((paid.amount_cents, paid.currency.as_str()), (2500, "EUR"));
    assert_eq!(charged(&s.provider).await.charged_cents, 2500);
}

#[tokio::test]
async fn a_declined_card_is_announced_as_failed() {
    let s = setup().await;
    let order = Uuid::new_v4();
    s.charge
        .handle(created(order, "tok_declined"))
        .await
        .unwrap();
    let failed: PaymentFailed = only_published(&s.publisher);
    assert_eq!(failed.reason, "card_declined");
    let payment = s.store.get(&order.to_string()).await.unwrap().unwrap();
    assert_eq!(payment.status, Status::Declined);
}

#[tokio::test]
async fn a_provider_failure_is_retried_and_charges_once() {
    let s = setup().await;
    let order = Uuid::new_v4();
    let outcome = s.charge.handle(created(order, "tok_transient_1")).await;
    assert!(
        matches!(outcome, Err(HandlerError::Retry(_))),
        "{outcome:?}"
    );
    assert!(s.publisher.published().is_empty());
    let mut retried = created(order, "tok_transient_1");
    retried.meta.retry_count = 1;
    s.charge.handle(retried).await.unwrap();
    let paid: OrderPaid = only_published(&s.publisher);
    assert_eq!(paid.order_id, order);
    assert_eq!(charged(&s.provider).await.charges, 1);
}

#[tokio::test]
async fn an_order_that_breaks_the_contract_is_rejected_and_charged_nothing() {
    let s = setup().await;
    let mut message = created(Uuid::new_v4(), "tok_visa");
    message.event.currency = "XXX".into();
    let outcome = s.charge.handle(message).await;
    assert!(
        matches!(outcome, Err(HandlerError::Reject(_))),
        "{outcome:?}"
    );
    assert!(s.publisher.published().is_empty());
    assert_eq!(charged(&s.provider).await.charges, 0);
}

#[tokio::test]
async fn a_lost_announcement_is_resent_with_the_same_id_without_charging_again() {
    let s = setup().await;
    let order = Uuid::new_v4();
    s.publisher.fail_next(1);
    let outcome = s.charge.handle(created(order, "tok_visa")).await;
    assert!(
        matches!(outcome, Err(HandlerError::Retry(_))),
        "{outcome:?}"
    );
    s.charge.handle(created(order, "tok_visa")).await.unwrap();
    let paid: OrderPaid = only_published(&s.publisher);
    assert_eq!(paid.order_id, order);
    assert_eq!(charged(&s.provider).await.charges, 1);
}

#[tokio::test]
async fn a_cancelled_charge_is_refunded_and_announced() {
    let s = setup().await;
    let order = Uuid::new_v4();
    s.charge.handle(created(order, "tok_visa")).await.unwrap();
    s.refund.handle(cancelled(order)).await.unwrap();
    let sent = s.publisher.published();
    assert_eq!(sent.len(), 2);
    let refunded: PaymentRefunded = published(&sent[1]);
    assert_eq!(refunded.payment_id, payment_id(order));
    assert_eq!(refunded.amount_cents, 2500);
}

#[tokio::test]
async fn an_order_cancelled_before_it_arrives_is_never_charged() {
    let s = setup().await;
    let order = Uuid::new_v4();
    s.refund.handle(cancelled(order)).await.unwrap();
    s.charge.handle(created(order, "tok_visa")).await.unwrap();
    assert!(s.publisher.published().is_empty());
    assert_eq!(charged(&s.provider).await.charges, 0);
    let payment = s.store.get(&order.to_string()).await.unwrap().unwrap();
    assert_eq!(payment.status, Status::Cancelled);
}

#[tokio::test]
async fn a_charge_lost_in_a_crash_and_then_cancelled_is_refunded_on_redelivery() {
    let s = setup().await;
    let order = Uuid::new_v4();
    let delivery = created(order, "tok_visa");
    // The first attempt opened the payment and the provider charged the card; the worker died
    // before it recorded the charge.
    let key = payment_id(order).to_string();
    s.store
        .open(&order.to_string(), 2500, "EUR", Claim::of(&delivery.meta))
        .await
        .unwrap();
    let request = ChargeRequest {
        key: &key,
        reference: &order.to_string(),
        amount_cents: 2500,
        currency: "EUR",
        token: Some("tok_visa"),
        tries: Tries::default(),
    };
    assert_eq!(s.provider.charge(request).await, Verdict::Approved);
    // The cancel finds the payment pending; then order.created comes back.
    s.refund.handle(cancelled(order)).await.unwrap();
    assert!(s.publisher.published().is_empty());
    s.charge.handle(delivery).await.unwrap();

    let refunded: PaymentRefunded = only_published(&s.publisher);
    assert_eq!(refunded.amount_cents, 2500);
    let payment = s.store.get(&order.to_string()).await.unwrap().unwrap();
    assert_eq!(payment.status, Status::Refunded);
    assert_eq!(
        (payment.charged_cents, payment.refunded_cents),
        (2500, 2500)
    );
    assert_eq!(charged(&s.provider).await.charges, 1, "and charged once");
}

#[tokio::test]
async fn a_retry_after_a_cancel_asks_the_provider_and_charges_nothing() {
    let s = setup().await;
    let order = Uuid::new_v4();
    let outcome = s.charge.handle(created(order, "tok_transient_1")).await;
    assert!(
        matches!(outcome, Err(HandlerError::Retry(_))),
        "{outcome:?}"
    );
    s.refund.handle(cancelled(order)).await.unwrap();
    let mut retried = created(order, "tok_transient_1");
    retried.meta.retry_count = 1;
    s.charge.handle(retried).await.unwrap();
    assert!(s.publisher.published().is_empty());
    assert_eq!(charged(&s.provider).await.charges, 0);
    let payment = s.store.get(&order.to_string()).await.unwrap().unwrap();
    assert_eq!(payment.status, Status::Cancelled);
}

#[tokio::test]
async fn a_store_outage_is_held_not_failed() {
    let s = setup().await;
    s.scratch.db().pool().close().await;
    let outcome = s.charge.handle(created(Uuid::new_v4(), "tok_visa")).await;
    let Err(HandlerError::Retry(err)) = outcome else {
        panic!("expected a store error, got {outcome:?}");
    };
    // The consumer's outage check turns it into a hold: no retry tier, no dead letter.
    assert!(service::outage::is_outage(err.as_ref()), "{err}");
}
