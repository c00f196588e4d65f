//! The order API through the router, in process: every client error is a JSON error naming the
//! field at fault, and nothing is stored for it.

use super::{Api, MAX_BODY_BYTES, routes};
use crate::catalogue::Catalogue;
use crate::store::OrderStore;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use service::test_http::{Answer, get, send};
use service::test_store::TestStore;
use std::sync::Arc;
use tokio::sync::Notify;

struct Setup {
    app: Router,
    store: OrderStore,
    _scratch: TestStore,
}

async fn setup() -> Setup {
    let scratch = TestStore::sqlite(&crate::MIGRATOR).await;
    let store = OrderStore::new(scratch.db());
    let app = routes(Api {
        store: store.clone(),
        wake: Arc::new(Notify::new()),
        catalogue: Catalogue::Fixed(crate::validation::catalogue()),
    });
    Setup {
        app,
        store,
        _scratch: scratch,
    }
}

fn good() -> Value {
    json!({
        "customer_id": "c-42",
        "items": [{"sku": "SKU-1", "quantity": 2, "unit_price_cents": 1250}],
        "currency": "USD",
        "payment_token": "tok_visa"
    })
}

/// The good order with one change.
fn with(change: impl FnOnce(&mut Value)) -> String {
    let mut body = good();
    change(&mut body);
    body.to_string()
}

/// `POST /orders` with `body` and `headers`, as JSON unless they name another content type.
async fn post(app: &Router, body: impl Into<Body>, headers: &[(&str, &str)]) -> Answer {
    let mut request = Request::post("/orders");
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
    {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send(app, request.body(body.into()).unwrap()).await
}

/// Asserts a JSON error with `status` naming `field`.
fn assert_error(answer: &Answer, status: StatusCode, field: Option<&str>, what: &str) {
    assert_eq!(answer.status, status, "{what}: {}", answer.body);
    assert!(
        answer.body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{what}: {}",
        answer.body
    );
    assert_eq!(
        answer.body["field"].as_str(),
        field,
        "{what}: {}",
        answer.body
    );
}

async fn stored(store: &OrderStore) -> i64 {
    store.summary().await.unwrap().values().sum()
}

#[tokio::test]
async fn a_good_order_is_created_pending_at_its_location() {
    let s = setup().await;
    let created = post(&s.app, good().to_string(), &[]).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["status"], "pending");
    let id = created.body["order_id"].as_str().unwrap();
    assert_eq!(created.headers[header::LOCATION], format!("/orders/{id}"));
    let shown = get(&s.app, &format!("/orders/{id}")).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(shown.body["total_cents"], 2500);
}

#[tokio::test]
async fn bad_bodies_get_a_json_error_naming_the_field_and_store_nothing() {
    let s = setup().await;
    let long = "x".repeat(65);
    let bad = StatusCode::BAD_REQUEST;
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let cases: Vec<(&str, String, StatusCode, Option<&str>)> = vec![
        ("malformed JSON", "{\"customer_id\": ".to_owned(), bad, None),
        (
            "missing field",
            with(|b| drop(b.as_object_mut().unwrap().remove("items"))),
            unprocessable,
            Some("items"),
        ),
        (
            "missing item field",
            with(|b| drop(b["items"][0].as_object_mut().unwrap().remove("sku"))),
            unprocessable,
            Some("items[0].sku"),
        ),
        (
            "unknown field",
            with(|b| b["discount"] = json!(10)),
            unprocessable,
            Some("discount"),
        ),
        (
            "unknown item field",
            with(|b| b["items"][0]["colour"] = json!("red")),
            unprocessable,
            Some("items[0].colour"),
        ),
        (
            "mistyped price",
            with(|b| b["items"][0]["unit_price_cents"] = json!("12.50")),
            unprocessable,
            Some("items[0].unit_price_cents"),
        ),
        (
            "mistyped customer",
            with(|b| b["customer_id"] = json!(7)),
            unprocessable,
            Some("customer_id"),
        ),
        (
            "negative quantity",
            with(|b| b["items"][0]["quantity"] = json!(-1)),
            unprocessable,
            Some("items[0].quantity"),
        ),
        (
            "blank customer",
            with(|b| b["customer_id"] = json!(" ")),
            unprocessable,
            Some("customer_id"),
        ),
        (
            "customer too long",
            with(|b| b["customer_id"] = json!(long)),
            unprocessable,
            Some("customer_id"),
        ),
        (
            "no items",
            with(|b| b["items"] = json!([])),
            unprocessable,
            Some("items"),
        ),
        (
            "too many items",
            with(|b| b["items"] = json!(vec![b["items"][0].clone(); 101])),
            unprocessable,
            Some("items"),
        ),
        (
            "bad sku",
            with(|b| b["items"][0]["sku"] = json!("bad sku")),
            unprocessable,
            Some("items[0].sku"),
        ),
        (
            "zero quantity",
            with(|b| b["items"][0]["quantity"] = json!(0)),
            unprocessable,
            Some("items[0].quantity"),
        ),
        (
            "quantity over 10,000",
            with(|b| b["items"][0]["quantity"] = json!(10_001)),
            unprocessable,
            Some("items[0].quantity"),
        ),
        (
            "price over the maximum",
            with(|b| b["items"][0]["unit_price_cents"] = json!(100_000_001)),
            unprocessable,
            Some("items[0].unit_price_cents"),
        ),
        (
            "unknown currency",
            with(|b| b["currency"] = json!("XYZ")),
            unprocessable,
            Some("currency"),
        ),
        (
            "a price that is not the catalogue's",
            with(|b| b["items"][0]["unit_price_cents"] = json!(1300)),
            unprocessable,
            Some("items[0].unit_price_cents"),
        ),
        (
            "a SKU the catalogue does not list",
            with(|b| b["items"][0]["sku"] = json!("SKU-NONE")),
            unprocessable,
            Some("items[0].sku"),
        ),
        (
            "a currency that is not the catalogue's",
            with(|b| b["currency"] = json!("EUR")),
            unprocessable,
            Some("currency"),
        ),
        (
            "empty payment token",
            with(|b| b["payment_token"] = json!("")),
            unprocessable,
            Some("payment_token"),
        ),
    ];
    for (what, body, status, field) in cases {
        let answer = post(&s.app, body, &[]).await;
        assert_error(&answer, status, field, what);
    }
    assert_eq!(stored(&s.store).await, 0, "nothing stored");
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415() {
    let s = setup().await;
    let answer = post(
        &s.app,
        good().to_string(),
        &[("content-type", "text/plain")],
    )
    .await;
    assert_error(
        &answer,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        None,
        "text/plain",
    );
    assert_eq!(stored(&s.store).await, 0);
}

#[tokio::test]
async fn a_body_over_64_kib_is_413() {
    let s = setup().await;
    // Valid JSON, padded past the limit.
    let mut body = good().to_string();
    body.insert_str(1, &" ".repeat(MAX_BODY_BYTES));
    let answer = post(&s.app, body, &[]).await;
    assert_error(&answer, StatusCode::PAYLOAD_TOO_LARGE, None, "64 KiB + 1");
    assert_eq!(stored(&s.store).await, 0);
}

#[tokio::test]
async fn an_idempotency_key_returns_the_same_order_and_refuses_another_request() {
    let s = setup().await;
    let key = [("idempotency-key", "checkout-7f3a")];
    let first = post(&s.app, good().to_string(), &key).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert!(!first.headers.contains_key("idempotent-replayed"));

    let again = post(&s.app, good().to_string(), &key).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(again.body["order_id"], first.body["order_id"]);

    let other = with(|b| b["items"][0]["quantity"] = json!(3));
    let conflict = post(&s.app, other, &key).await;
    assert_error(
        &conflict,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("Idempotency-Key"),
        "same key, other request",
    );
    assert_eq!(stored(&s.store).await, 1);
}

#[tokio::test]
async fn a_malformed_idempotency_key_is_400() {
    let s = setup().await;
    for key in ["", "has space", &"k".repeat(256)] {
        let answer = post(&s.app, good().to_string(), &[("idempotency-key", key)]).await;
        assert_error(
            &answer,
            StatusCode::BAD_REQUEST,
            Some("Idempotency-Key"),
            key,
        );
    }
    assert_eq!(stored(&s.store).await, 0);
}

#[tokio::test]
async fn an_order_id_must_be_a_known_uuid() {
    let s = setup().await;
    let bad = get(&s.app, "/orders/not-a-uuid").await;
    assert_error(
        &bad,
        StatusCode::BAD_REQUEST,
        Some("order_id"),
        "not a UUID",
    );
    let unknown = get(&s.app, &format!("/orders/{}", uuid::Uuid::new_v4())).await;
    assert_error(&unknown, StatusCode::NOT_FOUND, None, "unknown");
}

#[tokio::test]
async fn the_summary_counts_orders_per_status() {
    let s = setup().await;
    post(&s.app, good().to_string(), &[]).await;
    let summary = get(&s.app, "/orders/summary").await;
    assert_eq!(summary.status, StatusCode::OK);
    assert_eq!(
        summary.body,
        json!({"pending": 1, "completed": 0, "cancelled": 0})
    );
}

#[tokio::test]
async fn an_order_without_prices_is_priced_from_the_catalogue() {
    let s = setup().await;
    let body = json!({"customer_id": "c-1", "items": [{"sku": "SKU-1", "quantity": 3}, {"sku": "SKU_2", "quantity": 1}]});
    let created = post(&s.app, body.to_string(), &[]).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["order_id"].as_str().unwrap();
    let shown = get(&s.app, &format!("/orders/{id}")).await;
    assert_eq!(shown.body["total_cents"], 3 * 1250 + 99);
    assert_eq!(shown.body["currency"], "USD");
    assert_eq!(shown.body["items"][0]["unit_price_cents"], 1250);
}

#[tokio::test]
async fn without_the_stock_service_an_order_is_a_503_and_nothing_is_stored() {
    let scratch = TestStore::sqlite(&crate::MIGRATOR).await;
    let store = OrderStore::new(scratch.db());
    // A port just bound and released: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let app = routes(Api {
        store: store.clone(),
        wake: Arc::new(Notify::new()),
        catalogue: Catalogue::connect(&[format!("http://{closed}")]).unwrap(),
    });
    let answer = post(&app, good().to_string(), &[]).await;
    assert_error(
        &answer,
        StatusCode::SERVICE_UNAVAILABLE,
        None,
        "stock service down",
    );
    assert!(
        answer.body["error"]
            .as_str()
            .unwrap()
            .starts_with("the stock service cannot price"),
        "{}",
        answer.body
    );
    assert_eq!(stored(&store).await, 0);
}

#[tokio::test]
async fn a_pending_order_is_cancelled_once_and_its_cancellation_queued() {
    let s = setup().await;
    let created = post(&s.app, good().to_string(), &[]).await;
    let id = created.body["order_id"].as_str().unwrap().to_owned();
    let cancel = format!("/orders/{id}/cancel");
    for _ in 0..2 {
        let answer = send(&s.app, Request::post(&cancel).body(Body::empty()).unwrap()).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        assert_eq!(answer.body["status"], "cancelled");
        assert_eq!(answer.body["reason"], "customer_cancelled");
    }
    let queued: Vec<String> = s
        .store
        .unsent(10)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.event_type)
        .collect();
    assert_eq!(queued, ["order.created", "order.cancelled"]);

    let unknown = format!("/orders/{}/cancel", uuid::Uuid::new_v4());
    let answer = send(&s.app, Request::post(&unknown).body(Body::empty()).unwrap()).await;
    assert_error(&answer, StatusCode::NOT_FOUND, None, "unknown order");
}
