//! The stock worker's HTTP API: `GET /stock/{sku}`.

use crate::store::{StockLevel, StockStore};
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use service::http::ApiError;

/// The API routes.
pub fn routes(store: StockStore) -> Router {
    Router::new()
        .route("/stock/{sku}", get(level))
        .with_state(store)
}

async fn level(
    State(store): State<StockStore>,
    Path(sku): Path<String>,
) -> Result<Json<StockLevel>, ApiError> {
    store
        .level(&sku)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("unknown SKU {sku}")))
}

#[cfg(test)]
mod tests;
