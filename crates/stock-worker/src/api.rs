//! The stock worker's HTTP API: `GET /stock/{sku}` and `GET /reservations/{order_id}`.

use crate::store::{Reservation, StockLevel, StockStore};
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use service::http::ApiError;

/// The API routes.
pub fn routes(store: StockStore) -> Router {
    Router::new()
        .route("/stock/{sku}", get(level))
        .route("/reservations/{order_id}", get(reservation))
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

/// `{"order_id", "status", "short_skus"}`: `reserved`, `committed`, `released`, `rejected` (with
/// the SKUs that were short), or a decision that came first: `cancelled`, `paid`.
async fn reservation(
    State(store): State<StockStore>,
    Path(order_id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let reservation = store
        .reservation(&order_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no reservation for order {order_id}")))?;
    let (status, short): (&str, &[String]) = match &reservation {
        Reservation::Reserved => ("reserved", &[]),
        Reservation::Committed => ("committed", &[]),
        Reservation::Released => ("released", &[]),
        Reservation::Rejected(skus) => ("rejected", skus),
        Reservation::Cancelled => ("cancelled", &[]),
        Reservation::Paid => ("paid", &[]),
    };
    Ok(Json(
        serde_json::json!({"order_id": order_id, "status": status, "short_skus": short}),
    ))
}

#[cfg(test)]
mod tests;
