//! `api.StockService` on a real store: prices from the catalogue, unknown SKUs left out, a
//! shortage reported, bad requests refused naming the field.

use super::Stock;
use crate::store::StockStore;
use grpc::api::stock_service_server::StockService;
use grpc::api::{CheckIfItemIsInStockRequest, GetItemsRequest, ItemsWithQuantity};
use service::test_store::TestStore;
use tonic::{Code, Request};

async fn stock(scratch: &TestStore) -> Stock {
    let store = StockStore::new(scratch.db());
    let mut inventory = crate::catalogue::units(&[("SKU-1", 10), ("SKU-2", 3)]);
    inventory.get_mut("SKU-2").unwrap().price_cents = 99;
    store.seed(&inventory).await.unwrap();
    Stock { store }
}

fn line(sku: &str, quantity: i32) -> ItemsWithQuantity {
    ItemsWithQuantity {
        id: sku.to_owned(),
        quantity,
    }
}

#[tokio::test]
async fn a_check_prices_each_known_line_from_the_catalogue() {
    let scratch = TestStore::sqlite(&crate::MIGRATOR).await;
    let stock = stock(&scratch).await;
    let request = CheckIfItemIsInStockRequest {
        items: vec![line("SKU-1", 2), line("SKU-2", 3)],
    };
    let answer = stock
        .check_if_item_is_in_stock(Request::new(request))
        .await
        .unwrap()
        .into_inner();
    assert!(answer.in_stock);
    let priced: Vec<_> = answer
        .items
        .iter()
        .map(|i| {
            (
                i.id.as_str(),
                i.quantity,
                i.unit_price_cents,
                i.price_id.as_str(),
            )
        })
        .collect();
    assert_eq!(
        priced,
        [
            ("SKU-1", 2, 1250, "SKU-1/USD/1250"),
            ("SKU-2", 3, 99, "SKU-2/USD/99")
        ]
    );
}

#[tokio::test]
async fn a_shortage_or_an_unknown_sku_is_not_in_stock() {
    let scratch = TestStore::sqlite(&crate::MIGRATOR).await;
    let stock = stock(&scratch).await;
    // Two lines of one SKU count together: 2 + 2 > 3.
    let short = CheckIfItemIsInStockRequest {
        items: vec![line("SKU-2", 2), line("SKU-2", 2)],
    };
    let answer = stock
        .check_if_item_is_in_stock(Request::new(short))
        .await
        .unwrap()
        .into_inner();
    assert!(!answer.in_stock);
    assert_eq!(answer.items.len(), 2);

    let unknown = CheckIfItemIsInStockRequest {
        items: vec![line("SKU-1", 1), line("SKU-NONE", 1)],
    };
    let answer = stock
        .check_if_item_is_in_stock(Request::new(unknown))
        .await
        .unwrap()
        .into_inner();
    assert!(!answer.in_stock);
    let ids: Vec<_> = answer.items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["SKU-1"]);
}

#[tokio::test]
async fn a_bad_line_is_an_invalid_argument_naming_it() {
    let scratch = TestStore::sqlite(&crate::MIGRATOR).await;
    let stock = stock(&scratch).await;
    for (items, field) in [
        (
            vec![line("SKU-1", 1), line("SKU-1", 0)],
            "Items[1].Quantity",
        ),
        (vec![line("", 1)], "Items[0].ID"),
        (vec![line("SKU-1", 1); 101], "Items:"),
    ] {
        let status = stock
            .check_if_item_is_in_stock(Request::new(CheckIfItemIsInStockRequest { items }))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().starts_with(field), "{}", status.message());
    }
}

#[tokio::test]
async fn get_items_lists_the_known_skus_with_their_units_available() {
    let scratch = TestStore::sqlite(&crate::MIGRATOR).await;
    let stock = stock(&scratch).await;
    let request = GetItemsRequest {
        item_i_ds: vec!["SKU-2".into(), "SKU-NONE".into()],
    };
    let items = stock
        .get_items(Request::new(request))
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(items.len(), 1);
    assert_eq!(
        (
            items[0].id.as_str(),
            items[0].quantity,
            items[0].name.as_str()
        ),
        ("SKU-2", 3, "SKU-2")
    );
}
