//! The API gateway: the single entry point of orderflow. `/v1` REST routes go to the order and
//! stock workers over gRPC, with API keys and JWTs, rate limits, a circuit breaker and a timeout
//! per upstream, and `GET /v1/orders/{id}` aggregating the payment and the reservation.
//!
//! # Layout
//!
//! - [`auth`]: API keys (stored hashed) and JWTs (HS256, RS256), scopes, customers.
//! - [`limit`]: rate limits per caller and per address.
//! - [`breaker`]: a circuit breaker per upstream.
//! - [`upstream`]: the clients, their timeouts and breakers.
//! - [`routes`]: the `/v1` API and its OpenAPI document.
//! - [`ops`]: `/healthz`, `/readyz`, `/metrics`.

#![allow(missing_docs)]

pub mod auth;
pub mod breaker;
pub mod limit;
pub mod ops;
pub mod routes;
pub mod upstream;

use service::http::Listen;
use std::future::Future;
use tokio_util::sync::CancellationToken;

/// Serves `gateway` on `listen` until `shutdown` completes.
///
/// # Errors
/// When the address cannot be bound.
pub async fn run(
    gateway: routes::Gateway,
    listen: impl Into<Listen>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let _ = service::ops::metrics();
    ops::describe();
    let app = routes::routes(gateway.clone()).merge(ops::routes(gateway.upstreams.clone()));
    let stop = CancellationToken::new();
    let http = service::http::serve(listen, app, stop.clone()).await?;
    shutdown.await;
    stop.cancel();
    let _ = http.await;
    Ok(())
}
