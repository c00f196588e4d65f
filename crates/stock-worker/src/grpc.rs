//! The stock worker's gRPC `api.StockService`: the catalogue's prices and the units available,
//! for the order service to price an order before it stores it.

use crate::store::{Listed, StockStore};
use grpc::api::stock_service_server::{StockService, StockServiceServer};
use grpc::api::{
    CheckIfItemIsInStockRequest, CheckIfItemIsInStockResponse, GetItemsRequest, GetItemsResponse,
    Item,
};
use tonic::{Request, Response, Status};

/// Most SKUs one call may ask about (an order's line limit).
const MAX_ITEMS: usize = contracts::MAX_ITEMS;

/// The service over the store.
#[derive(Debug, Clone)]
pub struct Stock {
    pub store: StockStore,
}

impl Stock {
    /// The tonic service to serve.
    #[must_use]
    pub fn server(self) -> StockServiceServer<Self> {
        StockServiceServer::new(self)
    }
}

/// The catalogue's `Item` for `sku` with `quantity` units.
fn item(sku: &str, listed: &Listed, quantity: i32) -> Item {
    Item {
        id: sku.to_owned(),
        name: listed.name.clone(),
        quantity,
        price_id: format!("{sku}/{}/{}", listed.currency, listed.price_cents),
        unit_price_cents: listed.price_cents,
        currency: listed.currency.clone(),
    }
}

fn too_many(field: &str, count: usize) -> Result<(), Status> {
    if count > MAX_ITEMS {
        return Err(Status::invalid_argument(format!(
            "{field}: at most {MAX_ITEMS} per call, got {count}"
        )));
    }
    Ok(())
}

#[tonic::async_trait]
impl StockService for Stock {
    async fn check_if_item_is_in_stock(
        &self,
        request: Request<CheckIfItemIsInStockRequest>,
    ) -> Result<Response<CheckIfItemIsInStockResponse>, Status> {
        let asked = request.into_inner().items;
        too_many("Items", asked.len())?;
        for (i, line) in asked.iter().enumerate() {
            if line.id.is_empty() {
                return Err(Status::invalid_argument(format!(
                    "Items[{i}].ID: the SKU must not be empty"
                )));
            }
            if line.quantity < 1 {
                return Err(Status::invalid_argument(format!(
                    "Items[{i}].Quantity: must be at least 1, got {}",
                    line.quantity
                )));
            }
        }
        let skus: Vec<String> = asked.iter().map(|line| line.id.clone()).collect();
        let listed = self
            .store
            .listed(&skus)
            .await
            .map_err(service::grpc::internal)?;
        let mut wanted = std::collections::BTreeMap::<&str, i64>::new();
        for line in &asked {
            *wanted.entry(line.id.as_str()).or_default() += i64::from(line.quantity);
        }
        let in_stock = wanted.iter().all(|(sku, units)| {
            listed
                .get(*sku)
                .is_some_and(|entry| entry.available >= *units)
        });
        let items = asked
            .iter()
            .filter_map(|line| {
                let entry = listed.get(&line.id)?;
                Some(item(&line.id, entry, line.quantity))
            })
            .collect();
        Ok(Response::new(CheckIfItemIsInStockResponse {
            in_stock,
            items,
        }))
    }

    async fn get_items(
        &self,
        request: Request<GetItemsRequest>,
    ) -> Result<Response<GetItemsResponse>, Status> {
        let skus = request.into_inner().item_i_ds;
        too_many("ItemIDs", skus.len())?;
        let listed = self
            .store
            .listed(&skus)
            .await
            .map_err(service::grpc::internal)?;
        let items = listed
            .iter()
            .map(|(sku, entry)| {
                let available = i32::try_from(entry.available).unwrap_or(i32::MAX);
                item(sku, entry, available)
            })
            .collect();
        Ok(Response::new(GetItemsResponse { items }))
    }
}

#[cfg(test)]
mod tests;
