//! The gateway on the real binaries: orders created, read (with their payment and reservation)
//! and cancelled through `/v1`; credentials, scopes and customers; rate limits; the circuit
//! breaker opening on a stopped order worker and closing after it returns; one order's spans,
//! exported over OTLP, forming one trace from the gateway to the last worker.

use e2e::{Options, System, metrics};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use testkit::eventually;

const WAIT: Duration = Duration::from_secs(120);
const SHOP_KEY: &str = "k-shop-0123456789";
const READER_KEY: &str = "k-reader-0123456789";
const ALICE_KEY: &str = "k-alice-0123456789";
const JWT_SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";

fn keys() -> String {
    let hash = |key: &str| {
        let out = std::process::Command::new(e2e::process::bin_dir().join("gateway"))
            .args(["hash-key", key])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    json!([
        {"name": "shop", "sha256": hash(SHOP_KEY), "scopes": ["orders:write", "orders:read", "stock:read"]},
        {"name": "reader", "sha256": hash(READER_KEY), "scopes": ["orders:read"]},
        {"name": "alice", "sha256": hash(ALICE_KEY), "scopes": ["orders:write", "orders:read"], "customer_id": "c-alice"}
    ])
    .to_string()
}

async fn system(extra: &[(&'static str, &str)]) -> System {
    e2e::process::build_binaries();
    let mut env = vec![
        ("API_KEYS", keys()),
        ("JWT_ISSUER", "https://issuer.test".to_owned()),
        ("JWT_AUDIENCE", "orderflow".to_owned()),
        ("JWT_HS256_SECRET", JWT_SECRET.to_owned()),
    ];
    env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    System::start(Options {
        stock: json!({"SKU-1": 100}),
        gateway: Some(env),
        ..Options::default()
    })
    .await
}

/// A request to the gateway with `key` (none: no credential).
fn call(
    system: &System,
    method: reqwest::Method,
    path: &str,
    key: Option<&str>,
) -> reqwest::RequestBuilder {
    let request = reqwest::Client::new().request(method, system.gateway().url(path));
    match key {
        Some(key) => request.header("x-api-key", key),
        None => request,
    }
}

async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn create(system: &System, key: &str, body: Value) -> (StatusCode, Value) {
    json_of(
        call(system, reqwest::Method::POST, "/v1/orders", Some(key))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn get(system: &System, path: &str, key: Option<&str>) -> (StatusCode, Value) {
    json_of(
        call(system, reqwest::Method::GET, path, key)
            .send()
            .await
            .unwrap(),
    )
    .await
}

fn order(customer: &str, token: &str) -> Value {
    json!({"customer_id": customer, "items": [{"sku": "SKU-1", "quantity": 2}], "payment_token": token})
}

#[tokio::test]
async fn an_order_is_created_read_with_its_payment_and_reservation_and_cancelled_through_v1() {
    let system = system(&[]).await;
    let (status, created) = create(&system, SHOP_KEY, order("c-42", "tok_visa")).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["total_cents"], 2500, "priced by the catalogue");
    let id = created["order_id"].as_str().unwrap().to_owned();
    let done = eventually("completed, paid and sold", WAIT, || async {
        let (_, order) = get(&system, &format!("/v1/orders/{id}"), Some(SHOP_KEY)).await;
        let done = order["status"] == "completed"
            && order["payment"]["status"] == "charged"
            && order["reservation"]["status"] == "committed";
        done.then_some(order)
    })
    .await
    .unwrap();
    assert_eq!(done["payment"]["charged_cents"], 2500, "{done}");
    assert!(done.get("unavailable").is_none(), "{done}");

    let (_, stock) = get(&system, "/v1/stock/SKU-1", Some(SHOP_KEY)).await;
    assert_eq!(stock["unit_price_cents"], 1250, "{stock}");

    let (_, slow) = create(&system, SHOP_KEY, order("c-42", "tok_slow_3000")).await;
    let slow_id = slow["order_id"].as_str().unwrap().to_owned();
    let cancel = call(
        &system,
        reqwest::Method::POST,
        &format!("/v1/orders/{slow_id}/cancel"),
        Some(SHOP_KEY),
    );
    let (status, cancelled) = json_of(cancel.send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["reason"], "customer_cancelled");
    let again = call(
        &system,
        reqwest::Method::POST,
        &format!("/v1/orders/{id}/cancel"),
        Some(SHOP_KEY),
    );
    assert_eq!(
        again.send().await.unwrap().status(),
        StatusCode::CONFLICT,
        "a completed order cannot be cancelled"
    );
    let (status, error) = create(
        &system,
        SHOP_KEY,
        json!({"customer_id": "c-42", "items": [{"sku": "SKU-1", "quantity": 0}]}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["field"], "items[0].quantity", "{error}");
    let (status, spec) = get(&system, "/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(spec["paths"]["/v1/orders/{order_id}/cancel"].is_object());
}

#[tokio::test]
async fn credentials_scopes_and_customers_are_enforced() {
    let system = system(&[]).await;
    let (status, _) = get(&system, "/v1/stock/SKU-1", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = get(&system, "/v1/stock/SKU-1", Some("k-unknown")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, error) = create(&system, READER_KEY, order("c-42", "tok_visa")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{error}");
    let (status, _) = get(&system, "/v1/stock/SKU-1", Some(READER_KEY)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no stock:read scope");

    // A customer's key orders for that customer only, and sees only its own orders.
    let (status, error) = create(&system, ALICE_KEY, order("c-bob", "tok_visa")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{error}");
    let (status, own) = create(
        &system,
        ALICE_KEY,
        json!({"items": [{"sku": "SKU-1", "quantity": 1}], "payment_token": "tok_visa"}),
    )
    .await;
    assert_eq!(
        (status, own["customer_id"].as_str()),
        (StatusCode::CREATED, Some("c-alice"))
    );
    let (_, bobs) = create(&system, SHOP_KEY, order("c-bob", "tok_visa")).await;
    let bobs = bobs["order_id"].as_str().unwrap();
    let (status, _) = get(&system, &format!("/v1/orders/{bobs}"), Some(ALICE_KEY)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another customer's order");
    let (status, _) = get(&system, &format!("/v1/orders/{bobs}"), Some(READER_KEY)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a key for no one customer sees every order"
    );

    // A JWT acts for its subject; a forged or expired one is refused.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = |secret: &str, exp: u64| {
        let claims = json!({"sub": "c-jwt", "scope": "orders:write orders:read",
            "iss": "https://issuer.test", "aud": "orderflow", "exp": exp});
        let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
        jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
    };
    let bearer = |token: String| {
        reqwest::Client::new()
            .post(system.gateway().url("/v1/orders"))
            .bearer_auth(token)
            .json(&json!({"items": [{"sku": "SKU-1", "quantity": 1}]}))
    };
    let (status, created) =
        json_of(bearer(token(JWT_SECRET, now + 600)).send().await.unwrap()).await;
    assert_eq!(
        (status, created["customer_id"].as_str()),
        (StatusCode::CREATED, Some("c-jwt")),
        "{created}"
    );
    let forged = bearer(token("another-secret-of-at-least-32-bytes!!", now + 600));
    assert_eq!(
        forged.send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let expired = bearer(token(JWT_SECRET, now - 3600));
    assert_eq!(
        expired.send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_caller_or_an_address_over_its_limit_gets_429_with_retry_after() {
    let system = system(&[
        ("RATE_LIMIT_PER_MINUTE", "1"),
        ("RATE_LIMIT_ANONYMOUS_PER_MINUTE", "1"),
    ])
    .await;
    let (status, _) = get(&system, "/v1/stock/SKU-1", Some(SHOP_KEY)).await;
    assert_eq!(status, StatusCode::OK);
    let limited = call(
        &system,
        reqwest::Method::GET,
        "/v1/stock/SKU-1",
        Some(SHOP_KEY),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let (status, _) = get(&system, "/v1/stock/SKU-1", Some(READER_KEY)).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "another caller has its own limit"
    );

    // Without a credential the limit is per address: guessing keys is slow.
    let (status, _) = get(&system, "/v1/stock/SKU-1", Some("k-guess-1")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = get(&system, "/v1/stock/SKU-1", Some("k-guess-2")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

/// The gateway's `orderflow_gateway_breaker_open{upstream="order"}`.
async fn breaker_open(system: &System) -> Option<f64> {
    let text = metrics::text(system.gateway()).await?;
    metrics::sample(
        &text,
        "orderflow_gateway_breaker_open",
        &[("upstream", "order")],
    )
}

#[tokio::test]
async fn the_breaker_opens_on_a_stopped_order_worker_and_closes_after_it_returns() {
    let mut system = system(&[
        ("BREAKER_MIN_CALLS", "3"),
        ("BREAKER_WINDOW_SECS", "1"),
        ("BREAKER_OPEN_SECS", "3"),
        // The calls until it opens must not meet the rate limit first (CI run 42).
        ("RATE_LIMIT_PER_MINUTE", "1000000"),
    ])
    .await;
    let (_, created) = create(&system, SHOP_KEY, order("c-42", "tok_visa")).await;
    let id = created["order_id"].as_str().unwrap().to_owned();
    let path = format!("/v1/orders/{id}");
    system.orders[0].kill();
    let mut statuses = Vec::new();
    let open = loop {
        let (status, body) = get(&system, &path, Some(SHOP_KEY)).await;
        statuses.push(status.as_u16());
        if body["error"]
            .as_str()
            .is_some_and(|e| e.contains("circuit open"))
        {
            break body;
        }
        assert!(statuses.len() < 5000, "never opened: {statuses:?}");
    };
    assert!(statuses.iter().all(|s| *s == 503), "{statuses:?}: {open}");
    assert_eq!(breaker_open(&system).await, Some(1.0));

    system.orders[0].restart();
    system.wait_ready(&system.orders[0]).await;
    eventually("half-open, then closed", WAIT, || async {
        let (status, _) = get(&system, &path, Some(SHOP_KEY)).await;
        (status == StatusCode::OK).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(breaker_open(&system).await, Some(0.0));
}

/// The spans of one order, exported over OTLP by every process to a receiver in the test, form
/// one trace under the caller's `traceparent`: each span's parent is another span of the trace
/// (or the caller's), the payment worker's retry is an event of its first delivery, and the
/// redelivery is a child of the retry copy's publish, itself a child of that delivery.
#[tokio::test]
async fn one_orders_spans_from_the_gateway_to_every_worker_form_one_trace() {
    let receiver = e2e::otlp::Receiver::start().await;
    e2e::process::build_binaries();
    let system = System::start(Options {
        stock: json!({"SKU-1": 100}),
        gateway: Some(vec![("API_KEYS", keys())]),
        env: receiver.env(),
        ..Options::default()
    })
    .await;
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let caller_span = "00f067aa0ba902b7";
    let response = call(&system, reqwest::Method::POST, "/v1/orders", Some(SHOP_KEY))
        .header("traceparent", format!("00-{trace_id}-{caller_span}-01"))
        .json(&order("c-42", "tok_transient_1"))
        .send()
        .await
        .unwrap();
    let (status, created) = json_of(response).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["order_id"].as_str().unwrap().to_owned();
    eventually("completed", WAIT, || async {
        let (_, order) = get(&system, &format!("/v1/orders/{id}"), Some(SHOP_KEY)).await;
        (order["status"] == "completed").then_some(())
    })
    .await
    .unwrap();

    let services = ["gateway", "order-worker", "payment-worker", "stock-worker"];
    let whole = |spans: &[e2e::otlp::Span]| {
        let ids: std::collections::HashSet<&str> =
            spans.iter().map(|s| s.span_id.as_str()).collect();
        services
            .iter()
            .all(|service| spans.iter().any(|s| s.service == *service))
            && spans
                .iter()
                .all(|s| s.parent_span_id == caller_span || ids.contains(s.parent_span_id.as_str()))
            && spans
                .iter()
                .filter(|s| s.name == "process payment.order-created")
                .count()
                == 2
    };
    let spans = eventually("the whole trace exported", WAIT, || async {
        let spans = receiver.trace(&trace_id);
        whole(&spans).then_some(spans)
    })
    .await
    .unwrap_or_else(|err| {
        let spans = receiver.trace(&trace_id);
        let summary: Vec<String> = spans
            .iter()
            .map(|s| {
                format!(
                    "{} {} {}<-{}",
                    s.service, s.name, s.span_id, s.parent_span_id
                )
            })
            .collect();
        panic!("{err}: {summary:#?}")
    });
    // `deploy/render-trace.py` draws the README's picture of a trace from this file.
    if let Ok(path) = std::env::var("ORDERFLOW_TRACE_JSON") {
        std::fs::write(&path, serde_json::to_string_pretty(&spans).unwrap()).unwrap();
    }
    let by_id = |id: &str| spans.iter().find(|s| s.span_id == id).unwrap();
    let root = spans
        .iter()
        .find(|s| s.parent_span_id == caller_span)
        .unwrap();
    assert_eq!(
        (root.service.as_str(), root.name.as_str(), root.kind),
        ("gateway", "POST /v1/orders", 2),
        "the gateway's server span continues the caller's"
    );
    let deliveries: Vec<&e2e::otlp::Span> = spans
        .iter()
        .filter(|s| s.name == "process payment.order-created")
        .collect();
    let (first, second) = match deliveries[0]
        .attributes
        .get("retry_count")
        .map(String::as_str)
    {
        Some("0") => (deliveries[0], deliveries[1]),
        _ => (deliveries[1], deliveries[0]),
    };
    assert!(
        first.events.iter().any(|e| e.contains("retry")),
        "the first delivery records its retry: {:?}",
        first.events
    );
    let retry_publish = by_id(&second.parent_span_id);
    assert_eq!(
        retry_publish.kind, 4,
        "the redelivery's parent is a producer span"
    );
    assert_eq!(
        retry_publish.parent_span_id, first.span_id,
        "the retry copy is published by the failed delivery"
    );
    assert_eq!(
        second
            .attributes
            .get("messaging.system")
            .map(String::as_str),
        Some("rabbitmq")
    );
    assert_eq!(
        second
            .attributes
            .get("messaging.message.conversation_id")
            .map(String::as_str),
        Some(id.as_str()),
        "the conversation id is the order id"
    );
    // The log lines of every worker's deliveries carry the trace id too.
    for worker in [&system.orders[0], &system.payments[0], &system.stocks[0]] {
        assert!(
            worker.log().contains(&trace_id),
            "{} logging the trace: {}",
            worker.name(),
            worker.log_tail()
        );
    }
}
