//! The whole worker in process, on a listener the test bound to port 0 and with no broker: it
//! seeds its inventory, serves its API, reports itself not ready, and stops on shutdown.

use axum::http::StatusCode;
use broker::{BrokerConfig, RetryPolicy};
use serde_json::json;
use service::args::Settings;
use service::test_http::fetch;
use service::test_store::TestStore;
use std::collections::BTreeMap;
use std::time::Duration;

#[tokio::test]
async fn a_worker_on_a_bound_listener_serves_until_shutdown() {
    let scratch = TestStore::sqlite(&crate::MIGRATOR).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let settings = Settings {
        // Nothing listens on port 1: the runtime keeps reconnecting.
        broker: BrokerConfig::new("amqp://guest:guest@127.0.0.1:1/%2f", crate::APP_ID),
        database_url: scratch.url().to_owned(),
        sqlite_synchronous: "normal".to_owned(),
        http_addr: addr,
        retry: RetryPolicy::default(),
        prefetch: 1,
        concurrency: 1,
        worker_threads: 1,
    };
    let inventory = BTreeMap::from([("SKU-1".to_owned(), 5)]);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(crate::run(settings, inventory, listener, async {
        let _ = stopped.await;
    }));

    let (status, level) = fetch(addr, "/stock/SKU-1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(level["available"], 5);
    let (status, ready) = fetch(addr, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready, json!({"broker": false, "store": true}));

    stop.send(()).unwrap();
    let stopped = tokio::time::timeout(Duration::from_secs(30), worker)
        .await
        .expect("the worker stops on shutdown");
    stopped.unwrap().unwrap();
}
