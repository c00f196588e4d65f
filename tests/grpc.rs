//! The gRPC services on the real binaries: an order created over gRPC is priced by the stock
//! service's catalogue and completes; a customer cancels one and its stock comes back; errors
//! carry the standard codes; the REST API takes its prices from the catalogue too, and prices
//! already given are kept through a stock outage.

use e2e::{Options, System};
use grpc::api::order_service_client::OrderServiceClient;
use grpc::api::stock_service_client::StockServiceClient;
use grpc::api::{CreateOrderRequest, GetItemsRequest, GetOrderRequest, ItemsWithQuantity};
use serde_json::json;
use std::time::Duration;
use testkit::eventually;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const WAIT: Duration = Duration::from_secs(120);

fn stock() -> serde_json::Value {
    json!({
        "SKU-CUP": {"name": "Cup", "price_cents": 777, "currency": "USD", "units": 10},
        "SKU-JUG": {"name": "Jug", "price_cents": 2000, "currency": "USD", "units": 10},
        "SKU-MUG": {"name": "Mug", "price_cents": 450, "currency": "USD", "units": 10}
    })
}

async fn orders(system: &System) -> OrderServiceClient<Channel> {
    OrderServiceClient::connect(system.orders[0].grpc_url())
        .await
        .unwrap()
}

fn create(lines: &[(&str, i32)], token: &str) -> CreateOrderRequest {
    CreateOrderRequest {
        customer_id: "c-grpc".to_owned(),
        items: lines
            .iter()
            .map(|(sku, quantity)| ItemsWithQuantity {
                id: (*sku).to_owned(),
                quantity: *quantity,
            })
            .collect(),
        payment_token: token.to_owned(),
    }
}

#[tokio::test]
async fn an_order_created_over_grpc_is_priced_by_the_catalogue_and_completes() {
    let system = System::start(Options {
        stock: stock(),
        ..Options::default()
    })
    .await;
    for worker in [&system.orders[0], &system.stocks[0]] {
        let channel = Channel::from_shared(worker.grpc_url())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let health = HealthClient::new(channel);
        eventually(&format!("{} serving", worker.name()), WAIT, || {
            let mut health = health.clone();
            async move {
                let answer = health
                    .check(tonic_health::pb::HealthCheckRequest::default())
                    .await
                    .ok()?;
                (answer.into_inner().status == ServingStatus::Serving as i32).then_some(())
            }
        })
        .await
        .unwrap();
    }
    let mut client = orders(&system).await;
    let order = client
        .create_order(create(&[("SKU-CUP", 2), ("SKU-JUG", 1)], "tok_visa"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(order.status, "pending");
    assert_eq!(order.total_cents, 2 * 777 + 2000, "{order:?}");
    let get = GetOrderRequest {
        order_id: order.id.clone(),
        customer_id: "c-grpc".to_owned(),
    };
    let done = eventually("completed", WAIT, || {
        let (mut client, get) = (client.clone(), get.clone());
        async move {
            let order = client.get_order(get).await.ok()?.into_inner();
            (order.status == "completed").then_some(order)
        }
    })
    .await
    .unwrap();
    assert_eq!(done.items.len(), 2);
    let payment = system.payment(order.id.parse().unwrap()).await.unwrap();
    assert_eq!(
        payment["charged_cents"], 3554,
        "the catalogue's total was charged"
    );

    let mut stock = StockServiceClient::connect(system.stocks[0].grpc_url())
        .await
        .unwrap();
    let items = stock
        .get_items(GetItemsRequest {
            item_i_ds: vec!["SKU-CUP".to_owned()],
        })
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!((items[0].name.as_str(), items[0].quantity), ("Cup", 8));
}

#[tokio::test]
async fn a_customer_cancels_a_pending_order_over_grpc_and_its_stock_comes_back() {
    let system = System::start(Options {
        stock: stock(),
        ..Options::default()
    })
    .await;
    let mut client = orders(&system).await;
    // A slow provider keeps the order pending while the stock is reserved.
    let order = client
        .create_order(create(&[("SKU-CUP", 4)], "tok_slow_3000"))
        .await
        .unwrap()
        .into_inner();
    eventually("reserved", WAIT, || async {
        (system.stock("SKU-CUP").await["reserved"] == 4).then_some(())
    })
    .await
    .unwrap();
    let cancel = grpc::api::Order {
        status: "cancelled".to_owned(),
        ..order.clone()
    };
    let cancelled = client.update_order(cancel).await.unwrap().into_inner();
    assert_eq!(
        (cancelled.status.as_str(), cancelled.reason.as_str()),
        ("cancelled", "customer_cancelled")
    );
    eventually("stock released and the charge refunded", WAIT, || async {
        let stock = system.stock("SKU-CUP").await;
        let payment = system.payment(order.id.parse().unwrap()).await?;
        let settled = stock["available"] == 10
            && stock["reserved"] == 0
            && payment["charged_cents"] == payment["refunded_cents"];
        settled.then_some(())
    })
    .await
    .unwrap();

    let other = grpc::api::Order {
        status: "completed".to_owned(),
        ..order
    };
    let refused = client.update_order(other).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
}

#[tokio::test]
async fn errors_carry_the_standard_codes_and_the_rest_api_prices_from_the_catalogue() {
    let mut system = System::start(Options {
        stock: stock(),
        ..Options::default()
    })
    .await;
    let mut client = orders(&system).await;
    let unknown = client
        .create_order(create(&[("SKU-NONE", 1)], "tok_visa"))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::InvalidArgument);
    assert!(
        unknown.message().starts_with("Items[0].ID: "),
        "{unknown:?}"
    );
    let missing = client
        .get_order(GetOrderRequest {
            order_id: uuid::Uuid::new_v4().to_string(),
            customer_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    // The order worker counts its calls by method and status code, and times them.
    let text = e2e::metrics::text(&system.orders[0]).await.unwrap();
    let calls = |method: &str, code: &str| {
        e2e::metrics::sample(
            &text,
            "orderflow_grpc_requests_total",
            &[
                ("service", "api.OrderService"),
                ("method", method),
                ("code", code),
            ],
        )
    };
    assert_eq!(calls("CreateOrder", "3"), Some(1.0), "{text}");
    assert_eq!(calls("GetOrder", "5"), Some(1.0), "{text}");
    assert!(
        text.contains("orderflow_grpc_request_seconds_bucket{service=\"api.OrderService\",method=\"CreateOrder\""),
        "{text}"
    );

    // REST: a price that is not the catalogue's is refused; none is taken from the catalogue.
    let forged = json!({"customer_id": "c-1", "items": [{"sku": "SKU-CUP", "quantity": 1, "unit_price_cents": 1}]});
    let response = system.post_order(forged.to_string(), &[]).await;
    assert_eq!(response.status(), 422);
    let error: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error["field"], "items[0].unit_price_cents", "{error}");
    let id = system.create_order(Some("tok_visa"), "SKU-JUG", 2).await;
    assert_eq!(system.order(id).await["total_cents"], 4000);

    // Without the stock service a SKU never priced cannot be: UNAVAILABLE, a 503 over REST.
    // One priced a moment ago still is, from the prices the order worker keeps.
    system.stocks[0].kill();
    let down = client
        .create_order(create(&[("SKU-MUG", 1)], "tok_visa"))
        .await
        .unwrap_err();
    assert_eq!(down.code(), Code::Unavailable, "{down:?}");
    let plain = json!({"customer_id": "c-1", "items": [{"sku": "SKU-MUG", "quantity": 1}]});
    let response = system.post_order(plain.to_string(), &[]).await;
    assert_eq!(response.status(), 503);
    let kept = client
        .create_order(create(&[("SKU-JUG", 1)], "tok_visa"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(kept.total_cents, 2000);
    system.stocks[0].restart();
    let back = eventually("priced again", WAIT, || {
        let mut client = client.clone();
        async move {
            let created = client
                .create_order(create(&[("SKU-MUG", 1)], "tok_visa"))
                .await;
            created.ok().map(tonic::Response::into_inner)
        }
    })
    .await
    .unwrap();
    assert_eq!(back.total_cents, 450);
}

#[tokio::test]
async fn a_python_client_generated_by_grpcio_tools_drives_an_order_to_completed() {
    let system = System::start(Options::default()).await;
    let addr = system.orders[0]
        .grpc_url()
        .trim_start_matches("http://")
        .to_owned();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/grpc_client.sh");
    let output = tokio::process::Command::new(script)
        .arg(&addr)
        .output()
        .await
        .expect("running tests/python/grpc_client.sh");
    assert!(
        output.status.success(),
        "the Python client failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let order: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(order["Status"], "completed");
    assert_eq!(order["TotalCents"], 2 * e2e::UNIT_PRICE_CENTS, "{order}");
    assert_eq!(order["Items"][0]["PriceID"], "SKU-1/USD/1250");
    assert!(
        order["refused"]
            .as_str()
            .unwrap()
            .starts_with("Items[0].Quantity"),
        "{order}"
    );
}
