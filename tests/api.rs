//! The order API against bad input: a 4xx JSON error naming the field, and nothing stored.

use e2e::{Options, System};
use serde_json::{Value, json};

fn good() -> Value {
    json!({
        "customer_id": "c-42",
        "items": [{"sku": "SKU-1", "quantity": 2, "unit_price_cents": 1250}],
        "currency": "USD",
        "payment_token": "tok_visa"
    })
}

#[tokio::test]
async fn bad_requests_get_a_json_error_naming_the_field_and_store_nothing() {
    let system = System::start(Options::default()).await;
    let with = |patch: &dyn Fn(&mut Value)| {
        let mut body = good();
        patch(&mut body);
        body.to_string()
    };
    let cases: Vec<(&str, String, u16, Option<&str>)> = vec![
        ("malformed JSON", "{\"customer_id\": ".to_owned(), 400, None),
        (
            "missing field",
            with(&|b| {
                b.as_object_mut().unwrap().remove("currency");
            }),
            422,
            Some("currency"),
        ),
        (
            "negative quantity",
            with(&|b| b["items"][0]["quantity"] = json!(-1)),
            422,
            Some("items[0].quantity"),
        ),
        (
            "zero quantity",
            with(&|b| b["items"][0]["quantity"] = json!(0)),
            422,
            Some("items[0].quantity"),
        ),
        (
            "wrong type",
            with(&|b| b["items"][0]["unit_price_cents"] = json!("12.50")),
            422,
            Some("items[0].unit_price_cents"),
        ),
        (
            "unknown currency",
            with(&|b| b["currency"] = json!("XYZ")),
            422,
            Some("currency"),
        ),
        (
            "unknown field",
            with(&|b| b["discount"] = json!(10)),
            422,
            Some("discount"),
        ),
        (
            "no items",
            with(&|b| b["items"] = json!([])),
            422,
            Some("items"),
        ),
    ];
    for (what, body, status, field) in cases {
        let response = system.post_order(body, &[]).await;
        assert_eq!(response.status().as_u16(), status, "{what}");
        let error: Value = response
            .json()
            .await
            .unwrap_or_else(|_| panic!("{what}: JSON error body"));
        assert!(
            error["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{what}: {error}"
        );
        assert_eq!(error["field"].as_str(), field, "{what}: {error}");
    }

    let huge = format!("{{\"customer_id\": \"{}\"}}", "x".repeat(10 * 1024 * 1024));
    let response = system.post_order(huge, &[]).await;
    assert_eq!(response.status().as_u16(), 413, "a 10 MB body");
    let error: Value = response.json().await.unwrap();
    assert!(error["error"].is_string());

    let response = reqwest::Client::new()
        .post(system.order.url("/orders"))
        .header("content-type", "text/plain")
        .body(good().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 415);

    assert_eq!(system.order_count().await, 0, "nothing stored");

    let unknown = reqwest::get(
        system
            .order
            .url(&format!("/orders/{}", uuid::Uuid::new_v4())),
    )
    .await
    .unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
    let bad_id = reqwest::get(system.order.url("/orders/not-a-uuid"))
        .await
        .unwrap();
    assert_eq!(bad_id.status().as_u16(), 400);
    assert_eq!(bad_id.json::<Value>().await.unwrap()["field"], "order_id");
}

#[tokio::test]
async fn an_idempotency_key_returns_the_same_order() {
    let system = System::start(Options::default()).await;
    let key = [("idempotency-key", "checkout-7f3a")];
    let first: Value = system
        .post_order(good().to_string(), &key)
        .await
        .json()
        .await
        .unwrap();
    let again = system.post_order(good().to_string(), &key).await;
    assert_eq!(again.status().as_u16(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(first["order_id"], again["order_id"]);
    assert_eq!(system.order_count().await, 1);

    let mut other = good();
    other["items"][0]["quantity"] = json!(3);
    let conflict = system.post_order(other.to_string(), &key).await;
    assert_eq!(conflict.status().as_u16(), 422);
    assert_eq!(
        conflict.json::<Value>().await.unwrap()["field"],
        "Idempotency-Key"
    );
    assert_eq!(system.order_count().await, 1);
}
