//! Operations endpoints: `/healthz` (the process is up), `/readyz` (broker connected and store
//! reachable), `/metrics` (Prometheus text).

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use broker::Readiness;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use sqlx::AnyPool;
use std::sync::OnceLock;

#[derive(Clone)]
struct Ops {
    readiness: Readiness,
    pool: AnyPool,
}

/// Latency buckets (seconds): histograms, not summaries, so replicas' series can be summed.
const SECONDS_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

/// Buckets for counts per event (deliveries per ack frame, transactions per group commit).
const COUNT_BUCKETS: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// Describes the metrics the shared worker code records.
fn describe() {
    metrics::describe_histogram!(
        "orderflow_store_group_size",
        "Transactions one group commit held."
    );
    metrics::describe_counter!(
        "orderflow_store_group_reruns_total",
        "Groups run again with savepoints because one of their transactions failed."
    );
    metrics::describe_counter!(
        "orderflow_outbox_published_total",
        "Outbox rows the relay published and marked sent."
    );
    metrics::describe_counter!(
        "orderflow_http_requests_total",
        "HTTP requests by method, route template and status."
    );
    metrics::describe_histogram!(
        "orderflow_http_request_seconds",
        "Time from a request's head to its response, by method and route template."
    );
    metrics::describe_gauge!(
        "orderflow_outbox_backlog",
        "Outbox rows waiting to be published (quarantined ones aside)."
    );
    metrics::describe_gauge!(
        "orderflow_outbox_oldest_unsent_seconds",
        "Age of the oldest outbox row waiting to be published; 0 when none waits."
    );
    metrics::describe_gauge!(
        "orderflow_ready",
        "1 while the worker reaches this dependency (broker: connected and consuming; store)."
    );
    metrics::describe_gauge!(
        "orderflow_lease_held",
        "1 on the replica that runs the job (outbox-relay: one order worker per database)."
    );
    metrics::describe_counter!(
        "orderflow_grpc_requests_total",
        "gRPC calls served, by service, method and status code (0 is OK)."
    );
    metrics::describe_histogram!(
        "orderflow_grpc_request_seconds",
        metrics::Unit::Seconds,
        "Time from a gRPC call's arrival to its response, by service and method."
    );
    metrics::describe_gauge!(
        "orderflow_build_info",
        "Always 1; the version label names the running build."
    );
    metrics::describe_gauge!(
        "orderflow_outbox_quarantined",
        "Outbox rows the relay gave up on (kept; listed by GET /outbox/quarantined)."
    );
}

/// The process-wide Prometheus recorder, installed on first use, with histogram buckets and
/// every metric's HELP text.
///
/// # Panics
/// When another metrics recorder was installed first.
pub fn metrics() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
                .and_then(|builder| {
                    builder.set_buckets_for_metric(
                        Matcher::Full("orderflow_acks_per_frame".into()),
                        &COUNT_BUCKETS,
                    )
                })
                .and_then(|builder| {
                    builder.set_buckets_for_metric(
                        Matcher::Full("orderflow_store_group_size".into()),
                        &COUNT_BUCKETS,
                    )
                })
                .expect("bucket lists are not empty")
                .install_recorder()
                .expect("no other metrics recorder is installed");
            broker::metrics::describe("orderflow");
            describe();
            // Every crate shares the workspace's version.
            metrics::gauge!("orderflow_build_info", "version" => env!("CARGO_PKG_VERSION"))
                .set(1.0);
            handle
        })
        .clone()
}

/// The metrics text of this process, with its `process_*` figures (CPU seconds, resident memory,
/// open files, threads, start time) read now.
#[must_use]
pub fn render() -> String {
    static PROCESS: OnceLock<metrics_process::Collector> = OnceLock::new();
    let handle = metrics();
    PROCESS
        .get_or_init(|| {
            let collector = metrics_process::Collector::default();
            collector.describe();
            collector
        })
        .collect();
    handle.render()
}

/// The ops routes for a worker with this readiness flag and store.
pub fn routes(readiness: Readiness, pool: AnyPool) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(ready))
        .route(
            "/metrics",
            get(|State(ops): State<Ops>| async move {
                let store = crate::database::is_reachable(&ops.pool).await;
                record_readiness(ops.readiness.is_ready(), store);
                render()
            }),
        )
        .with_state(Ops { readiness, pool })
}

/// `orderflow_ready{dependency}`: what `/readyz` says, as of this scrape, so that an alert (or a
/// dashboard) sees a worker that is up but cannot reach its broker or store.
fn record_readiness(broker: bool, store: bool) {
    metrics::gauge!("orderflow_ready", "dependency" => "broker").set(f64::from(u8::from(broker)));
    metrics::gauge!("orderflow_ready", "dependency" => "store").set(f64::from(u8::from(store)));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_and_the_build_are_metrics() {
        let handle = metrics();
        record_readiness(false, true);
        let text = handle.render();
        assert!(
            text.contains("orderflow_ready{dependency=\"broker\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("orderflow_ready{dependency=\"store\"} 1"),
            "{text}"
        );
        let build = format!(
            "orderflow_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        assert!(text.contains(&build), "{text}");
    }

    #[test]
    fn the_process_figures_are_metrics() {
        let text = render();
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_threads",
        ] {
            assert!(text.contains(&format!("# HELP {name}")), "{name}: {text}");
        }
    }

    #[test]
    fn latencies_render_as_histograms_with_help_text() {
        let handle = metrics();
        metrics::histogram!("orderflow_handler_seconds", "queue" => "q").record(0.003);
        metrics::counter!("orderflow_dead_letters_total", "queue" => "q", "reason" => "rejected")
            .increment(1);
        let text = handle.render();
        assert!(
            text.contains("orderflow_handler_seconds_bucket{queue=\"q\",le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE orderflow_handler_seconds histogram"),
            "{text}"
        );
        assert!(text.contains("# HELP orderflow_handler_seconds"), "{text}");
        assert!(
            text.contains("# HELP orderflow_dead_letters_total"),
            "{text}"
        );
    }
}
