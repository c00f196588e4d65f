//! Serving a router until shutdown, and the JSON error every endpoint returns.

use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;

/// A JSON error: `{"error": "...", "field": "items[0].quantity"}`.
#[derive(Debug, Serialize)]
pub struct ApiError {
    /// HTTP status (not serialized).
    #[serde(skip)]
    pub status: StatusCode,
    /// What went wrong, for a person.
    pub error: String,
    /// The offending field, when one is to blame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    /// An error with a status and message.
    pub fn new(status: StatusCode, error: impl Into<String>) -> Self {
        Self {
            status,
            error: error.into(),
            field: None,
        }
    }

    /// Names the field at fault.
    #[must_use]
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 404 for `what`.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, what)
    }

    /// 500, logging the cause and telling the client nothing internal.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "request failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(&self)).into_response()
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        Self::internal(err)
    }
}

/// Runs the request in a trace context: a child of the caller's `traceparent`, else a new trace.
/// Events the request causes (e.g. through an outbox) continue it.
async fn traced(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let parent = request
        .headers()
        .get(broker::headers::TRACEPARENT)
        .and_then(|value| value.to_str().ok())
        .and_then(broker::TraceParent::parse);
    let trace = parent.map_or_else(broker::TraceParent::root, |parent| parent.child());
    trace.scope(next.run(request)).await
}

/// Binds `addr` and serves `app` until `stop` is cancelled.
///
/// # Errors
/// When the address cannot be bound.
pub async fn serve(
    addr: SocketAddr,
    app: Router,
    stop: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|err| anyhow::anyhow!("cannot listen on {addr}: {err}"))?;
    tracing::info!(addr = %listener.local_addr()?, "HTTP listening");
    let app = app
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(axum::middleware::from_fn(traced));
    Ok(tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
        if let Err(err) = served {
            tracing::error!(error = %err, "HTTP server failed");
        }
    }))
}
