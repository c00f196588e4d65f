//! The payment worker's HTTP API: `GET /payments/{order_id}`.

use crate::store::{Payment, PaymentStore};
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use service::http::ApiError;

/// The API routes.
pub fn routes(store: PaymentStore) -> Router {
    Router::new()
        .route("/payments/{order_id}", get(payment))
        .with_state(store)
}

async fn payment(
    State(store): State<PaymentStore>,
    Path(order_id): Path<String>,
) -> Result<Json<Payment>, ApiError> {
    store
        .get(&order_id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no payment for order {order_id}")))
}
