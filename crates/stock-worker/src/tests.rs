//! The whole worker in process, on a listener the test bound to port 0 and with no broker: it
//! seeds its inventory, serves its API and stops on shutdown.

use axum::http::StatusCode;
use service::test_http::fetch;
use service::test_store::TestStore;
use service::test_worker::{self, TestWorker};
use std::collections::BTreeMap;

#[tokio::test]
async fn a_worker_on_a_bound_listener_serves_until_shutdown() {
    let scratch = TestStore::sqlite(&crate::MIGRATOR).await;
    let settings = test_worker::offline(crate::APP_ID, scratch.url());
    let inventory = BTreeMap::from([("SKU-1".to_owned(), 5)]);
    let worker =
        TestWorker::start(|listener, shutdown| crate::run(settings, inventory, listener, shutdown))
            .await;

    let (status, level) = fetch(worker.addr, "/stock/SKU-1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(level["available"], 5);
    worker.assert_waiting_for_the_broker().await;
    worker.stop().await;
}
