//! The order API: `POST /orders` (validated, priced from the catalogue, idempotent with
//! `Idempotency-Key`), `GET /orders/{id}` and `POST /orders/{id}/cancel`. Every error is JSON
//! and names the field at fault.

use crate::catalogue::Catalogue;
use crate::place::{Refused, place};
use crate::store::{Applied, Order, OrderStore};
use crate::validation::NewOrder;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use service::http::ApiError;
use std::sync::Arc;
use tokio::sync::Notify;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct Api {
    pub store: OrderStore,
    /// Wakes the outbox relay after a new order.
    pub wake: Arc<Notify>,
    /// Where orders are priced.
    pub catalogue: Catalogue,
}

/// The API routes.
pub fn routes(api: Api) -> Router {
    Router::new()
        .route("/orders", post(create))
        .route("/orders/summary", get(summary))
        .route("/orders/{order_id}", get(show))
        .route("/orders/{order_id}/cancel", post(cancel))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(api)
}

async fn create(
    State(api): State<Api>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|rejection| {
        ApiError::new(
            rejection.status(),
            format!("cannot read the body: {}", rejection.body_text()),
        )
    })?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("application/json"));
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the order as application/json",
        ));
    }
    let key = service::http::idempotency_key(&headers)?;
    let request: NewOrder = service::http::decode_json(&body)?;
    let placed = place(&api, request, key.as_deref())
        .await
        .map_err(|refused| match refused {
            Refused::Invalid(invalid) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, invalid.message)
                    .field(invalid.field)
            }
            Refused::KeyConflict => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "this Idempotency-Key was already used with a different request",
            )
            .field("Idempotency-Key"),
            Refused::Unavailable(err) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, err.to_string())
            }
            Refused::Store(err) => ApiError::from(err),
        })?;
    let (order_id, replayed) = (placed.order_id, placed.replayed);
    let status = match api.store.get(&order_id.to_string()).await? {
        Some(order) => order.status,
        None => "pending".to_owned(),
    };
    let mut response = (
        StatusCode::CREATED,
        [(header::LOCATION, format!("/orders/{order_id}"))],
        Json(json!({"order_id": order_id, "status": status})),
    )
        .into_response();
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// `GET /orders/summary`: `{"pending": n, "completed": n, "cancelled": n}`.
async fn summary(
    State(api): State<Api>,
) -> Result<Json<std::collections::BTreeMap<String, i64>>, ApiError> {
    Ok(Json(api.store.summary().await?))
}

/// The order id of a path: a UUID, else 400.
fn order_id(text: &str) -> Result<uuid::Uuid, ApiError> {
    text.parse().map_err(|_| {
        ApiError::new(StatusCode::BAD_REQUEST, "order id must be a UUID").field("order_id")
    })
}

async fn show(
    State(api): State<Api>,
    Path(order_id): Path<String>,
) -> Result<Json<Order>, ApiError> {
    let id = self::order_id(&order_id)?;
    api.store
        .get(&id.to_string())
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no order {order_id}")))
}

/// `POST /orders/{id}/cancel`: a pending order is cancelled (`customer_cancelled`) and its
/// compensation runs; cancelling it again answers the same; a completed order is a 409.
async fn cancel(
    State(api): State<Api>,
    Path(order_id): Path<String>,
) -> Result<Json<Order>, ApiError> {
    let id = self::order_id(&order_id)?;
    let applied = api.store.cancel_for_customer(id).await?;
    if applied == Applied::DoneWithEvent {
        api.wake.notify_one();
    }
    let order = api
        .store
        .get(&id.to_string())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no order {order_id}")))?;
    if order.status != "cancelled" {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "the order is {}: only a pending order can be cancelled",
                order.status
            ),
        ));
    }
    Ok(Json(order))
}

#[cfg(test)]
mod tests;
