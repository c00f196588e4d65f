//! The gateway's own endpoints: `/healthz`, `/readyz` (both gRPC upstreams answer their health
//! check) and `/metrics`.

use crate::upstream::Upstreams;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use service::grpc::TracedChannel as Channel;
use std::time::Duration;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Describes the gateway's metrics (the HTTP ones are `service::http`'s).
pub fn describe() {
    metrics::describe_gauge!(
        "orderflow_gateway_breaker_open",
        "1 while the upstream's circuit breaker is open (calls answered 503 without calling it)."
    );
    metrics::describe_counter!(
        "orderflow_gateway_breaker_rejected_total",
        "Calls an open circuit breaker refused, by upstream."
    );
    metrics::describe_histogram!(
        "orderflow_gateway_upstream_seconds",
        "Time of each upstream call, by upstream and outcome."
    );
}

/// `/healthz`, `/readyz`, `/metrics`.
pub fn routes(upstreams: Upstreams) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(ready))
        .route("/metrics", get(|| async { service::ops::render() }))
        .with_state(upstreams)
}

async fn serving(channel: Channel) -> bool {
    let mut client = HealthClient::new(channel);
    let check = client.check(HealthCheckRequest::default());
    match tokio::time::timeout(Duration::from_secs(1), check).await {
        Ok(Ok(answer)) => answer.into_inner().status == ServingStatus::Serving as i32,
        _ => false,
    }
}

async fn ready(State(upstreams): State<Upstreams>) -> (StatusCode, Json<serde_json::Value>) {
    let (order, stock) = tokio::join!(
        serving(upstreams.order_channel.clone()),
        serving(upstreams.stock_channel.clone())
    );
    let status = if order && stock {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(json!({"order": order, "stock": stock})))
}
