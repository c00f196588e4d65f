//! The whole worker in process, on a listener the test bound to port 0 and with no broker: it
//! seeds its inventory, serves its HTTP and gRPC APIs and stops on shutdown.

use axum::http::StatusCode;
use grpc::api::GetItemsRequest;
use grpc::api::stock_service_client::StockServiceClient;
use service::test_http::fetch;
use service::test_store::TestStore;
use service::test_worker::{self, TestWorker};

#[tokio::test]
async fn a_worker_on_a_bound_listener_serves_until_shutdown() {
    let scratch = TestStore::sqlite(&crate::MIGRATOR).await;
    let settings = test_worker::offline(crate::APP_ID, scratch.url());
    let inventory = crate::catalogue::units(&[("SKU-1", 5)]);
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc_url = format!("http://{}", grpc.local_addr().unwrap());
    let worker = TestWorker::start(|listener, shutdown| {
        crate::run(settings, inventory, listener, grpc, shutdown)
    })
    .await;

    let (status, level) = fetch(worker.addr, "/stock/SKU-1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(level["available"], 5);

    let mut stock = StockServiceClient::connect(grpc_url).await.unwrap();
    let request = GetItemsRequest {
        item_i_ds: vec!["SKU-1".to_owned()],
    };
    let items = stock.get_items(request).await.unwrap().into_inner().items;
    assert_eq!((items[0].quantity, items[0].unit_price_cents), (5, 1250));
    worker.assert_waiting_for_the_broker().await;
    worker.stop().await;
}
