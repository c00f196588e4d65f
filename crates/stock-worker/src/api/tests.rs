//! `GET /stock/{sku}` through the router, in process.

use super::routes;
use crate::store::StockStore;
use axum::http::StatusCode;
use serde_json::json;
use service::test_http::get;
use service::test_store::TestStore;

#[tokio::test]
async fn a_known_sku_shows_its_counts_and_an_unknown_one_is_404() {
    let scratch = TestStore::sqlite(&crate::MIGRATOR).await;
    let store = StockStore::new(scratch.db());
    store
        .seed(&crate::catalogue::units(&[("SKU-1", 7)]))
        .await
        .unwrap();
    let app = routes(store);

    let known = get(&app, "/stock/SKU-1").await;
    assert_eq!(known.status, StatusCode::OK);
    assert_eq!(
        known.body,
        json!({"sku": "SKU-1", "available": 7, "reserved": 0, "committed": 0})
    );

    let unknown = get(&app, "/stock/SKU-NONE").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.body["error"], "unknown SKU SKU-NONE");
}

#[tokio::test]
async fn a_reservation_shows_its_status_and_an_unknown_one_is_404() {
    let scratch = TestStore::sqlite(&crate::MIGRATOR).await;
    let store = StockStore::new(scratch.db());
    store
        .seed(&crate::catalogue::units(&[("SKU-1", 1)]))
        .await
        .unwrap();
    let order = "0a7e2b4c-1111-4d4d-8e8e-000000000001";
    let lines = std::collections::BTreeMap::from([("SKU-1".to_owned(), 2)]);
    let claim = service::inbox::Claim::new(Some("m-1"), "q");
    store.reserve(order, &lines, claim).await.unwrap();
    let app = routes(store);

    let known = get(&app, &format!("/reservations/{order}")).await;
    assert_eq!(known.status, StatusCode::OK);
    assert_eq!(
        known.body,
        json!({"order_id": order, "status": "rejected", "short_skus": ["SKU-1"]})
    );
    let unknown = get(&app, "/reservations/nope").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}
