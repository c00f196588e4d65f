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

    // The server refuses a 10 MB body without reading it, and may close while the client is
    // still sending; a raw socket reads the answer while it writes.
    let (status, body) = post_huge(system.order.addr, 10 * 1024 * 1024).await;
    assert_eq!(status, 413, "a 10 MB body: {body}");
    let error: Value =
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("JSON error body: {body}"));
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

/// POSTs a body of `size` bytes on a raw connection, reading the response while writing (the
/// server may answer and close before the body is sent); returns the status and the body.
async fn post_huge(addr: std::net::SocketAddr, size: usize) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for _attempt in 0..5 {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut reader, mut writer) = stream.into_split();
        let head = format!(
            "POST /orders HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
        );
        let writing = tokio::spawn(async move {
            if writer.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = vec![b' '; 64 * 1024];
            let mut left = size;
            while left > 0 {
                let n = left.min(chunk.len());
                if writer.write_all(&chunk[..n]).await.is_err() {
                    return;
                }
                left -= n;
            }
        });
        let mut response = Vec::new();
        let mut buffer = [0u8; 8192];
        while let Ok(n) = reader.read(&mut buffer).await {
            if n == 0 {
                break;
            }
            response.extend_from_slice(&buffer[..n]);
        }
        writing.abort();
        let text = String::from_utf8_lossy(&response).into_owned();
        if let Some(status) = text.split(' ').nth(1).and_then(|s| s.parse().ok()) {
            let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
            return (status, body);
        }
        // The connection was reset before the answer could be read: try again.
    }
    panic!("no HTTP answer to a {size}-byte body in 5 attempts");
}
