//! The whole worker in process, on a listener the test bound to port 0 and with no broker: its
//! HTTP server applies the body limit before the API, and orders are taken (into the outbox)
//! while the broker is away.

use axum::http::StatusCode;
use serde_json::json;
use service::test_http::{fetch, request};
use service::test_store::TestStore;
use service::test_worker::{self, TestWorker};

#[tokio::test]
async fn a_worker_on_a_bound_listener_refuses_a_large_body_and_takes_orders_without_a_broker() {
    let scratch = TestStore::sqlite(&crate::MIGRATOR).await;
    let settings = test_worker::offline(crate::APP_ID, scratch.url());
    let catalogue = crate::catalogue::Catalogue::Fixed(crate::validation::catalogue());
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let worker = TestWorker::start(|listener, shutdown| {
        crate::run(settings, catalogue, listener, grpc, shutdown)
    })
    .await;
    let addr = worker.addr;

    // Refused by the server's declared-length check, which reads the body first.
    let (status, error) = request(addr, "POST", "/orders", &[b' '; 100 * 1024]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{error}");
    assert!(
        error["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("the body is 102400 bytes")),
        "{error}"
    );
    let (_, summary) = fetch(addr, "/orders/summary").await;
    assert_eq!(summary["pending"], 0, "nothing stored");

    let order = json!({
        "customer_id": "c-1",
        "items": [{"sku": "SKU-1", "quantity": 1}]
    });
    let (status, created) = request(addr, "POST", "/orders", order.to_string().as_bytes()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    worker.assert_waiting_for_the_broker().await;
    worker.stop().await;
}
