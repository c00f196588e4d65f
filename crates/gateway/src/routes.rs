//! The `/v1` API: REST in front of the gRPC services, each route behind a credential, a scope
//! and a rate limit. `GET /v1/orders/{id}` aggregates the order, its payment and its
//! reservation. Every error is `{"error", "field"?}` (`service::http::ApiError`).

use crate::auth::{self, Authenticator, Principal};
use crate::limit::Limits;
use crate::upstream::{UpstreamError, Upstreams};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use grpc::api::{CreateOrderRequest, GetItemsRequest, GetOrderRequest, ItemsWithQuantity};
use serde::Deserialize;
use serde_json::{Value, json};
use service::http::ApiError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// What the routes share.
#[derive(Debug, Clone)]
pub struct Gateway {
    pub upstreams: Upstreams,
    pub auth: Arc<Authenticator>,
    pub limits: Limits,
}

/// The `/v1` routes, authenticated and rate-limited.
pub fn routes(gateway: Gateway) -> Router {
    let guarded = Router::new()
        .route("/v1/orders", post(create))
        .route("/v1/orders/{order_id}", get(show))
        .route("/v1/orders/{order_id}/cancel", post(cancel))
        .route("/v1/stock/{sku}", get(stock))
        .layer(axum::middleware::from_fn_with_state(
            gateway.clone(),
            authenticated,
        ));
    Router::new()
        .route("/v1/openapi.json", get(openapi))
        .layer(axum::middleware::from_fn_with_state(
            gateway.clone(),
            address_limited,
        ))
        .merge(guarded)
        .with_state(gateway)
}

/// The OpenAPI document of `/v1`.
async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("../openapi.json"),
    )
}

/// 429 with `Retry-After` (whole seconds, at least 1).
fn too_many(wait: Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("rate limit reached: retry in {seconds} s"),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

fn address(request: &Request) -> Option<std::net::IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip())
}

/// Per-address limit for what needs no credential.
async fn address_limited(State(gateway): State<Gateway>, request: Request, next: Next) -> Response {
    if let Some(ip) = address(&request)
        && let Err(wait) = gateway.limits.check_address(ip)
    {
        return too_many(wait);
    }
    next.run(request).await
}

/// Authenticates the caller (401, limited per address when it fails), then limits it per caller
/// (429) and hands its [`Principal`] to the route.
async fn authenticated(
    State(gateway): State<Gateway>,
    mut request: Request,
    next: Next,
) -> Response {
    let principal = match gateway.auth.authenticate(request.headers()) {
        Ok(principal) => principal,
        Err(refusal) => {
            if let Some(ip) = address(&request)
                && let Err(wait) = gateway.limits.check_address(ip)
            {
                return too_many(wait);
            }
            let mut response =
                ApiError::new(StatusCode::UNAUTHORIZED, refusal.to_string()).into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer, ApiKey header=\"X-Api-Key\""),
            );
            return response;
        }
    };
    if let Err(wait) = gateway.limits.check_caller(&principal.name) {
        return too_many(wait);
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}

/// 403 unless `principal` holds `scope`.
fn require(principal: &Principal, scope: &str) -> Result<(), ApiError> {
    if principal.may(scope) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        format!("this credential lacks the {scope} scope"),
    ))
}

/// The JSON error for an upstream's answer.
fn upstream_error(err: UpstreamError) -> ApiError {
    use tonic::Code;
    match err {
        UpstreamError::Open(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, err.to_string()),
        UpstreamError::Timeout(..) => ApiError::new(StatusCode::GATEWAY_TIMEOUT, err.to_string()),
        UpstreamError::Http(..) => ApiError::new(StatusCode::BAD_GATEWAY, err.to_string()),
        UpstreamError::Grpc(status) => {
            let message = status.message().to_owned();
            match status.code() {
                Code::InvalidArgument => match message.split_once(": ") {
                    Some((field, what)) if !field.contains(' ') => {
                        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, what)
                            .field(grpc::rest_field(field))
                    }
                    _ => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message),
                },
                Code::NotFound => ApiError::not_found(message),
                Code::FailedPrecondition => ApiError::new(StatusCode::CONFLICT, message),
                Code::Unavailable | Code::DeadlineExceeded => {
                    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
                }
                _ => {
                    tracing::error!(code = ?status.code(), %message, "upstream failed");
                    ApiError::new(StatusCode::BAD_GATEWAY, "an upstream service failed")
                }
            }
        }
    }
}

/// `POST /v1/orders` body: the order service prices it from the catalogue.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOrder {
    /// Required for a credential that acts for no one customer; else that customer's.
    #[serde(default)]
    customer_id: Option<String>,
    items: Vec<NewLine>,
    #[serde(default)]
    payment_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewLine {
    sku: String,
    quantity: u32,
}

/// The order as `/v1` shows it.
fn order_json(order: &grpc::api::Order) -> Value {
    let items: Vec<Value> = order
        .items
        .iter()
        .map(|item| json!({"sku": item.id, "quantity": item.quantity, "unit_price_cents": item.unit_price_cents}))
        .collect();
    json!({
        "order_id": order.id,
        "customer_id": order.customer_id,
        "status": order.status,
        "reason": (!order.reason.is_empty()).then_some(&order.reason),
        "items": items,
        "total_cents": order.total_cents,
        "currency": order.currency,
    })
}

/// The customer `principal` acts for, checked against the one a request names.
fn customer_of(principal: &Principal, named: Option<String>) -> Result<String, ApiError> {
    match (&principal.customer_id, named) {
        (Some(own), Some(named)) if *own != named => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("this credential acts for customer {own}, not {named}"),
        )
        .field("customer_id")),
        (Some(own), _) => Ok(own.clone()),
        (None, Some(named)) => Ok(named),
        (None, None) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "customer_id is required for a credential that acts for no one customer",
        )
        .field("customer_id")),
    }
}

async fn create(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    require(&principal, auth::ORDERS_WRITE)?;
    let order: NewOrder = service::http::decode_json(&body)?;
    let customer_id = customer_of(&principal, order.customer_id)?;
    let key = service::http::idempotency_key(&headers)?;
    let items = order
        .items
        .into_iter()
        .map(|line| ItemsWithQuantity {
            id: line.sku,
            quantity: i32::try_from(line.quantity).unwrap_or(i32::MAX),
        })
        .collect();
    let mut request = tonic::Request::new(CreateOrderRequest {
        customer_id,
        items,
        payment_token: order.payment_token.unwrap_or_default(),
    });
    if let Some(key) = key.and_then(|key| key.parse().ok()) {
        request.metadata_mut().insert("idempotency-key", key);
    }
    let upstreams = &gateway.upstreams;
    let created = upstreams
        .grpc(
            "order",
            &upstreams.order_breaker,
            upstreams.orders.clone().create_order(request),
        )
        .await
        .map_err(upstream_error)?;
    let trace_id = broker::trace::current_trace_id();
    tracing::info!(order_id = %created.id, caller = %principal.name,
        trace_id = trace_id.as_deref().unwrap_or(""), "order created through the gateway");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/v1/orders/{}", created.id))],
        Json(order_json(&created)),
    )
        .into_response())
}

/// The order of `order_id` as `principal` may see it (another customer's is a 404).
async fn order_of(
    gateway: &Gateway,
    principal: &Principal,
    order_id: &str,
) -> Result<grpc::api::Order, ApiError> {
    let request = tonic::Request::new(GetOrderRequest {
        order_id: order_id.to_owned(),
        customer_id: principal.customer_id.clone().unwrap_or_default(),
    });
    let upstreams = &gateway.upstreams;
    upstreams
        .grpc(
            "order",
            &upstreams.order_breaker,
            upstreams.orders.clone().get_order(request),
        )
        .await
        .map_err(upstream_error)
}

/// `GET /v1/orders/{id}`: the order, its payment and its reservation in one answer; a part whose
/// service does not answer is `null` and named in `unavailable`.
async fn show(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    Path(order_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    require(&principal, auth::ORDERS_READ)?;
    let order = order_of(&gateway, &principal, &order_id).await?;
    let upstreams = &gateway.upstreams;
    let addresses = &upstreams.addresses;
    let (payment, reservation) = tokio::join!(
        upstreams.get_json(
            "payment",
            &upstreams.payment_breaker,
            format!("{}/payments/{}", addresses.payment_http, order.id)
        ),
        upstreams.get_json(
            "stock",
            &upstreams.stock_breaker,
            format!("{}/reservations/{}", addresses.stock_http, order.id)
        ),
    );
    let mut body = order_json(&order);
    let mut unavailable = Vec::new();
    for (name, part) in [("payment", payment), ("reservation", reservation)] {
        body[name] = match part {
            Ok(value) => value.unwrap_or(Value::Null),
            Err(err) => {
                tracing::warn!(part = name, error = %err, "aggregating without it");
                unavailable.push(name);
                Value::Null
            }
        };
    }
    if !unavailable.is_empty() {
        body["unavailable"] = json!(unavailable);
    }
    Ok(Json(body))
}

/// `POST /v1/orders/{id}/cancel`: a pending order is cancelled and compensated; a completed one
/// is a 409.
async fn cancel(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    Path(order_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    require(&principal, auth::ORDERS_WRITE)?;
    let request = tonic::Request::new(grpc::api::Order {
        id: order_id,
        customer_id: principal.customer_id.clone().unwrap_or_default(),
        status: "cancelled".to_owned(),
        ..grpc::api::Order::default()
    });
    let upstreams = &gateway.upstreams;
    let order = upstreams
        .grpc(
            "order",
            &upstreams.order_breaker,
            upstreams.orders.clone().update_order(request),
        )
        .await
        .map_err(upstream_error)?;
    Ok(Json(order_json(&order)))
}

/// `GET /v1/stock/{sku}`: the catalogue's entry and the units available.
async fn stock(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    Path(sku): Path<String>,
) -> Result<Json<Value>, ApiError> {
    require(&principal, auth::STOCK_READ)?;
    let request = tonic::Request::new(GetItemsRequest {
        item_i_ds: vec![sku.clone()],
    });
    let upstreams = &gateway.upstreams;
    let items = upstreams
        .grpc(
            "stock",
            &upstreams.stock_breaker,
            upstreams.stock.clone().get_items(request),
        )
        .await
        .map_err(upstream_error)?
        .items;
    let item = items
        .first()
        .ok_or_else(|| ApiError::not_found(format!("no SKU {sku} in the catalogue")))?;
    Ok(Json(json!({
        "sku": item.id,
        "name": item.name,
        "unit_price_cents": item.unit_price_cents,
        "currency": item.currency,
        "available": item.quantity,
    })))
}
