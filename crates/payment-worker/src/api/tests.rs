//! The payment API through the router, in process.

use super::{Api, routes};
use crate::provider::{ChargeRequest, Provider, Simulated, Tries, Verdict};
use crate::store::PaymentStore;
use axum::http::StatusCode;
use serde_json::json;
use service::inbox::Claim;
use service::test_http::get;
use service::test_store::TestStore;

const ORDER: &str = "0a7e2b4c-3333-4d4d-8e8e-000000000001";

#[tokio::test]
async fn a_payment_and_the_providers_books_are_shown_and_an_unknown_payment_is_404() {
    let scratch = TestStore::sqlite(&crate::MIGRATOR).await;
    let store = PaymentStore::new(scratch.db());
    let provider = Simulated::new(scratch.db());
    store
        .open(ORDER, 1200, "EUR", Claim::new(Some("created-1"), "q"))
        .await
        .unwrap();
    let request = ChargeRequest {
        key: "key-1",
        reference: ORDER,
        amount_cents: 1200,
        currency: "EUR",
        token: None,
        tries: Tries::default(),
    };
    assert_eq!(provider.charge(request).await, Verdict::Approved);
    store.charge(ORDER, "key-1").await.unwrap();
    let app = routes(Api { store, provider });

    let payment = get(&app, &format!("/payments/{ORDER}")).await;
    assert_eq!(payment.status, StatusCode::OK);
    assert_eq!(payment.body["status"], "charged");
    assert_eq!(payment.body["charged_cents"], 1200);

    let books = json!({"charges": 1, "charged_cents": 1200, "declines": 0});
    assert_eq!(get(&app, "/provider/charges").await.body, books);
    let mine = get(&app, &format!("/provider/charges/{ORDER}")).await;
    assert_eq!(mine.body, books);
    let other = get(&app, "/provider/charges/another-order").await;
    assert_eq!(
        other.body,
        json!({"charges": 0, "charged_cents": 0, "declines": 0})
    );

    let unknown = get(&app, "/payments/0a7e2b4c-3333-4d4d-8e8e-0000000000ff").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(
        unknown.body["error"],
        "no payment for order 0a7e2b4c-3333-4d4d-8e8e-0000000000ff"
    );
}
