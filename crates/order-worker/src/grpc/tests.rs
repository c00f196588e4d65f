//! `api.OrderService` on a real store with a fixed price list: orders priced from it, each bad
//! request refused with the standard code naming the proto field, a customer's cancel.

use super::Orders;
use crate::api::Api;
use crate::catalogue::Catalogue;
use crate::store::{Change, OrderStore};
use contracts::names::queues;
use grpc::api::order_service_server::OrderService;
use grpc::api::{CreateOrderRequest, GetOrderRequest, ItemsWithQuantity};
use service::inbox::Claim;
use service::test_store::TestStore;
use std::sync::Arc;
use tokio::sync::Notify;
use tonic::{Code, Request};

struct Setup {
    orders: Orders,
    store: OrderStore,
    _scratch: TestStore,
}

async fn setup() -> Setup {
    let scratch = TestStore::sqlite(&crate::MIGRATOR).await;
    let store = OrderStore::new(scratch.db());
    let api = Api {
        store: store.clone(),
        wake: Arc::new(Notify::new()),
        catalogue: Catalogue::Fixed(crate::validation::catalogue()),
    };
    Setup {
        orders: Orders { api },
        store,
        _scratch: scratch,
    }
}

fn request(lines: &[(&str, i32)]) -> CreateOrderRequest {
    CreateOrderRequest {
        customer_id: "c-42".to_owned(),
        items: lines
            .iter()
            .map(|(sku, quantity)| ItemsWithQuantity {
                id: (*sku).to_owned(),
                quantity: *quantity,
            })
            .collect(),
        payment_token: "tok_visa".to_owned(),
    }
}

async fn create(orders: &Orders, lines: &[(&str, i32)]) -> grpc::api::Order {
    orders
        .create_order(Request::new(request(lines)))
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn an_order_is_priced_from_the_catalogue_and_read_back_by_its_customer() {
    let s = setup().await;
    let order = create(&s.orders, &[("SKU-1", 2), ("SKU_2", 1)]).await;
    assert_eq!(order.status, "pending");
    assert_eq!((order.total_cents, order.currency.as_str()), (2599, "USD"));
    assert_eq!(order.items[0].unit_price_cents, 1250);
    assert_eq!(order.items[0].price_id, "SKU-1/USD/1250");

    let get = |customer: &str| GetOrderRequest {
        order_id: order.id.clone(),
        customer_id: customer.to_owned(),
    };
    let read = s.orders.get_order(Request::new(get("c-42"))).await.unwrap();
    assert_eq!(read.into_inner(), order);
    let other = s
        .orders
        .get_order(Request::new(get("c-7")))
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::NotFound, "another customer's order");
}

#[tokio::test]
async fn a_bad_request_is_an_invalid_argument_naming_the_proto_field() {
    let s = setup().await;
    let cases: Vec<(CreateOrderRequest, &str)> = vec![
        (request(&[("SKU-1", 0)]), "Items[0].Quantity"),
        (request(&[("SKU-1", -3)]), "Items[0].Quantity"),
        (request(&[("SKU-1", 1), ("SKU-NONE", 1)]), "Items[1].ID"),
        (request(&[("bad sku", 1)]), "Items[0].ID"),
        (request(&[]), "Items"),
        (
            CreateOrderRequest {
                customer_id: String::new(),
                ..request(&[("SKU-1", 1)])
            },
            "customerID",
        ),
    ];
    for (bad, field) in cases {
        let status = s.orders.create_order(Request::new(bad)).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{}", status.message());
        assert!(
            status.message().starts_with(&format!("{field}: ")),
            "{field}: {}",
            status.message()
        );
    }
    let bad_id = GetOrderRequest {
        order_id: "nope".to_owned(),
        customer_id: String::new(),
    };
    let status = s.orders.get_order(Request::new(bad_id)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("OrderID: "));
    assert_eq!(s.store.summary().await.unwrap()["pending"], 0);
}

#[tokio::test]
async fn without_the_stock_service_create_is_unavailable() {
    let s = setup().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let api = Api {
        catalogue: Catalogue::connect(&[format!("http://{closed}")]).unwrap(),
        ..s.orders.api.clone()
    };
    let status = Orders { api }
        .create_order(Request::new(request(&[("SKU-1", 1)])))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{}", status.message());
}

#[tokio::test]
async fn update_cancels_a_pending_order_and_refuses_anything_else() {
    let s = setup().await;
    let order = create(&s.orders, &[("SKU-1", 1)]).await;
    let cancel = grpc::api::Order {
        status: "cancelled".to_owned(),
        ..order.clone()
    };
    let cancelled = s
        .orders
        .update_order(Request::new(cancel.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (cancelled.status.as_str(), cancelled.reason.as_str()),
        ("cancelled", "customer_cancelled")
    );

    let other_status = grpc::api::Order {
        status: "completed".to_owned(),
        ..order.clone()
    };
    let status = s
        .orders
        .update_order(Request::new(other_status))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("Status: "));

    let mut other_items = cancel.clone();
    other_items.items[0].quantity = 5;
    let status = s
        .orders
        .update_order(Request::new(other_items))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("Items: "));

    // A completed order cannot be cancelled.
    let done = create(&s.orders, &[("SKU-1", 1)]).await;
    let id = done.id.parse().unwrap();
    for (change, message) in [(Change::StockReserved, "r-1"), (Change::Paid, "p-1")] {
        let claim = Claim::for_order(Some(message), queues::ORDER_ORDER_PAID, &done.id);
        s.store.apply(id, &change, claim).await.unwrap();
    }
    let cancel_done = grpc::api::Order {
        status: "cancelled".to_owned(),
        ..done
    };
    let status = s
        .orders
        .update_order(Request::new(cancel_done))
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::FailedPrecondition,
        "{}",
        status.message()
    );
}
