//! Operations endpoints: `/healthz` (the process is up), `/readyz` (broker connected and store
//! reachable), `/metrics` (Prometheus text).

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use broker::Readiness;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use sqlx::AnyPool;
use std::sync::OnceLock;

#[derive(Clone)]
struct Ops {
    readiness: Readiness,
    pool: AnyPool,
    metrics: PrometheusHandle,
}

/// The process-wide Prometheus recorder, installed on first use.
///
/// # Panics
/// When another metrics recorder was installed first.
pub fn metrics() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .install_recorder()
                .expect("no other metrics recorder is installed")
        })
        .clone()
}

/// The ops routes for a worker with this readiness flag and store.
pub fn routes(readiness: Readiness, pool: AnyPool) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(ready))
        .route(
            "/metrics",
            get(|State(ops): State<Ops>| async move { ops.metrics.render() }),
        )
        .with_state(Ops {
            readiness,
            pool,
            metrics: metrics(),
        })
}

async fn ready(State(ops): State<Ops>) -> (StatusCode, Json<serde_json::Value>) {
    let broker = ops.readiness.is_ready();
    let store = crate::database::is_reachable(&ops.pool).await;
    let status = if broker && store {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(json!({"broker": broker, "store": store})))
}
