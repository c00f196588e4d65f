//! The services behind the gateway: the order and stock workers over gRPC, the payment and stock
//! workers' HTTP APIs for aggregation. Every call has a timeout and goes through its upstream's
//! circuit breaker.

use crate::breaker::{Breaker, BreakerSettings, Tripped};
use grpc::api::order_service_client::OrderServiceClient;
use grpc::api::stock_service_client::StockServiceClient;
use service::grpc::TracedChannel as Channel;
use std::future::Future;
use std::time::Duration;
use tonic::Code;
use tracing::Instrument;

/// Where the upstreams are.
#[derive(Debug, Clone)]
pub struct Addresses {
    /// `http://host:port` of the order workers' gRPC (calls spread across them).
    pub order_grpc: Vec<String>,
    /// `http://host:port` of the stock workers' gRPC.
    pub stock_grpc: Vec<String>,
    /// `http://host:port` of a payment worker's HTTP API.
    pub payment_http: String,
    /// `http://host:port` of a stock worker's HTTP API.
    pub stock_http: String,
}

/// The clients, each upstream's breaker, and the timeout of one call.
#[derive(Debug, Clone)]
pub struct Upstreams {
    pub orders: OrderServiceClient<Channel>,
    pub stock: StockServiceClient<Channel>,
    /// The same channels, for their gRPC health.
    pub order_channel: Channel,
    pub stock_channel: Channel,
    pub http: reqwest::Client,
    pub addresses: Addresses,
    pub order_breaker: Breaker,
    pub stock_breaker: Breaker,
    pub payment_breaker: Breaker,
    pub timeout: Duration,
}

/// An upstream call that did not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("the {0} service is unavailable (circuit open); try again shortly")]
    Open(&'static str),
    #[error("the {0} service did not answer within {1:?}")]
    Timeout(&'static str, Duration),
    #[error("{0}")]
    Grpc(tonic::Status),
    #[error("the {0} service failed: {1}")]
    Http(&'static str, String),
}

/// Whether a gRPC status says the upstream is unwell (not the request).
fn grpc_failure(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Internal
            | Code::Unknown
            | Code::ResourceExhausted
    )
}

impl Upstreams {
    /// Clients for `addresses` (connected on first use), with `breakers` and `timeout`.
    ///
    /// # Errors
    /// When a URL is not one.
    pub fn new(
        addresses: Addresses,
        breakers: BreakerSettings,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let order_channel =
            service::grpc::balanced_channel("ORDER_GRPC_URL", &addresses.order_grpc, timeout)?;
        let stock_channel =
            service::grpc::balanced_channel("STOCK_GRPC_URL", &addresses.stock_grpc, timeout)?;
        Ok(Self {
            orders: OrderServiceClient::new(order_channel.clone()),
            stock: StockServiceClient::new(stock_channel.clone()),
            order_channel,
            stock_channel,
            http: reqwest::Client::builder().timeout(timeout).build()?,
            addresses,
            order_breaker: Breaker::new("order", breakers),
            stock_breaker: Breaker::new("stock", breakers),
            payment_breaker: Breaker::new("payment", breakers),
            timeout,
        })
    }

    /// A gRPC call through `breaker`, timed by `upstream`.
    ///
    /// # Errors
    /// See [`UpstreamError`].
    pub async fn grpc<T>(
        &self,
        upstream: &'static str,
        breaker: &Breaker,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, UpstreamError> {
        let started = std::time::Instant::now();
        let timed = async {
            match tokio::time::timeout(self.timeout, call).await {
                Ok(answer) => answer,
                Err(_) => Err(tonic::Status::deadline_exceeded("gateway timeout")),
            }
        };
        let result = breaker.call(grpc_failure, timed).await;
        record(upstream, started, result.is_ok());
        match result {
            Ok(response) => Ok(response.into_inner()),
            Err(Tripped::Open(name)) => Err(UpstreamError::Open(name)),
            Err(Tripped::Failed(status)) if status.code() == Code::DeadlineExceeded => {
                Err(UpstreamError::Timeout(upstream, self.timeout))
            }
            Err(Tripped::Failed(status)) => Err(UpstreamError::Grpc(status)),
        }
    }

    /// `GET base + path` as JSON through `breaker`: `None` for a 404.
    ///
    /// # Errors
    /// See [`UpstreamError`].
    pub async fn get_json(
        &self,
        upstream: &'static str,
        breaker: &Breaker,
        url: String,
    ) -> Result<Option<serde_json::Value>, UpstreamError> {
        let started = std::time::Instant::now();
        let call = async {
            let span = tracing::info_span!(
                "http call",
                otel.name = "GET",
                otel.kind = "client",
                http.request.method = "GET",
                server.address = upstream,
                http.response.status_code = tracing::field::Empty,
            );
            let mut request = self.http.get(&url).build()?;
            service::trace::inject(&span, request.headers_mut());
            let response = self.http.execute(request).instrument(span.clone()).await?;
            span.record("http.response.status_code", response.status().as_u16());
            if response.status() == reqwest::StatusCode::NOT_FOUND {
                return Ok(None);
            }
            response.error_for_status()?.json().await.map(Some)
        };
        let result = breaker.call(|_: &reqwest::Error| true, call).await;
        record(upstream, started, result.is_ok());
        match result {
            Ok(value) => Ok(value),
            Err(Tripped::Open(name)) => Err(UpstreamError::Open(name)),
            Err(Tripped::Failed(err)) => Err(UpstreamError::Http(upstream, err.to_string())),
        }
    }
}

/// `orderflow_gateway_upstream_seconds{upstream,outcome}`.
fn record(upstream: &'static str, started: std::time::Instant, ok: bool) {
    let outcome = if ok { "ok" } else { "error" };
    metrics::histogram!("orderflow_gateway_upstream_seconds", "upstream" => upstream, "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
}
