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

    let mut stock = StockServiceClient::connect(grpc_url.clone()).await.unwrap();
    let request = GetItemsRequest {
        item_i_ds: vec!["SKU-1".to_owned()],
    };
    let items = stock.get_items(request).await.unwrap().into_inner().items;
    assert_eq!((items[0].quantity, items[0].unit_price_cents), (5, 1250));
    assert_eq!(
        reflected_services(&grpc_url).await,
        [
            "api.StockService",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection"
        ]
    );
    worker.assert_waiting_for_the_broker().await;
    worker.stop().await;
}

/// The services the server at `url` lists through gRPC reflection, sorted.
async fn reflected_services(url: &str) -> Vec<String> {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let channel = tonic::transport::Channel::from_shared(url.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = client
        .server_reflection_info(futures_util::stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("not a service list: {answer:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    names
}
