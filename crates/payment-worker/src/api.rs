//! The payment worker's HTTP API: `GET /payments/{order_id}`, and the simulated provider's books
//! (`GET /provider/charges`, `GET /provider/charges/{order_id}`) for tests and demos to see what
//! the customer was really charged.

use crate::provider::{Charges, Simulated};
use crate::store::{Payment, PaymentStore};
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use service::http::ApiError;

/// What the routes read.
#[derive(Debug, Clone)]
pub struct Api {
    pub store: PaymentStore,
    /// The simulated provider whose books `/provider/charges` shows.
    pub provider: Simulated,
}

/// The API routes.
pub fn routes(api: Api) -> Router {
    Router::new()
        .route("/payments/{order_id}", get(payment))
        .route("/provider/charges", get(all_charges))
        .route("/provider/charges/{order_id}", get(order_charges))
        .with_state(api)
}

async fn payment(
    State(api): State<Api>,
    Path(order_id): Path<String>,
) -> Result<Json<Payment>, ApiError> {
    api.store
        .get(&order_id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no payment for order {order_id}")))
}

async fn all_charges(State(api): State<Api>) -> Result<Json<Charges>, ApiError> {
    Ok(Json(api.provider.charges(None).await?))
}

async fn order_charges(
    State(api): State<Api>,
    Path(order_id): Path<String>,
) -> Result<Json<Charges>, ApiError> {
    Ok(Json(api.provider.charges(Some(&order_id)).await?))
}

#[cfg(test)]
mod tests;
