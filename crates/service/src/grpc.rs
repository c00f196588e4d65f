//! Serving a worker's gRPC services beside its HTTP API: health (`grpc.health.v1`, serving
//! while the store answers), reflection, the caller's W3C trace context, and a graceful stop.

use crate::http::Listen;
use broker::TraceParent;
use sqlx::AnyPool;
use std::time::Duration;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic_health::ServingStatus;

/// How often the health service looks at the store.
const HEALTH_EVERY: Duration = Duration::from_secs(2);

/// The trace a gRPC call runs in: a child of the caller's `traceparent` metadata, else a new
/// trace, so that the events the call causes continue the caller's trace.
pub fn trace_of<T>(request: &tonic::Request<T>) -> TraceParent {
    request
        .metadata()
        .get(broker::headers::TRACEPARENT)
        .and_then(|value| value.to_str().ok())
        .and_then(TraceParent::parse)
        .map_or_else(TraceParent::root, |parent| parent.child())
}

/// `message` as a request that carries the current trace (a child span of it) to the server.
pub fn traced<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(trace) = TraceParent::current()
        && let Ok(value) = trace.child().to_string().parse()
    {
        request
            .metadata_mut()
            .insert(broker::headers::TRACEPARENT, value);
    }
    request
}

/// A channel to the servers at `urls` (`http://host:port`; `flag` names where they came from in
/// errors), connected on first use and again after a failure, calls spread across those that
/// answer, each call bounded by `timeout`.
///
/// # Errors
/// When a URL is not one, or none is given.
pub fn balanced_channel(
    flag: &str,
    urls: &[String],
    timeout: Duration,
) -> anyhow::Result<tonic::transport::Channel> {
    let endpoints = urls
        .iter()
        .map(|url| {
            tonic::transport::Endpoint::from_shared(url.clone())
                .map(|endpoint| {
                    endpoint
                        .connect_timeout(Duration::from_secs(1))
                        .timeout(timeout)
                })
                .map_err(|err| anyhow::anyhow!("{flag} {url}: {err}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(!endpoints.is_empty(), "{flag} names no server");
    Ok(tonic::transport::Channel::balance_list(
        endpoints.into_iter(),
    ))
}

/// `INTERNAL`, logging the cause and telling the client nothing internal.
pub fn internal(err: impl std::fmt::Display) -> tonic::Status {
    tracing::error!(error = %err, "gRPC call failed");
    tonic::Status::internal("internal error")
}

/// Serves `routes` (the worker's services, named in `services` for health) plus health and
/// reflection on `listen` until `stop` is cancelled; in-flight calls then finish.
///
/// # Errors
/// When the address cannot be bound.
pub async fn serve(
    listen: Listen,
    routes: Routes,
    services: &'static [&'static str],
    pool: AnyPool,
    stop: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = listen.bind().await?;
    tracing::info!(addr = %listener.local_addr()?, "gRPC listening");
    let (health, health_service) = tonic_health::server::health_reporter();
    // The contract holds every service: advertise only those this worker serves.
    let mut reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(grpc::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name("grpc.health.v1.Health")
        .with_service_name("grpc.reflection.v1.ServerReflection");
    for name in services {
        reflection = reflection.with_service_name(*name);
    }
    let reflection = reflection.build_v1()?;
    let routes = routes.add_service(health_service).add_service(reflection);
    let watch = stop.clone();
    tokio::spawn(async move {
        loop {
            let status = if crate::database::is_reachable(&pool).await {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            for name in std::iter::once(&"").chain(services) {
                health.set_service_status(*name, status).await;
            }
            tokio::select! {
                () = watch.cancelled() => break,
                () = tokio::time::sleep(HEALTH_EVERY) => {}
            }
        }
    });
    Ok(tokio::spawn(async move {
        let served = tonic::transport::Server::builder()
            .timeout(Duration::from_secs(30))
            .add_routes(routes)
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), stop.cancelled_owned())
            .await;
        if let Err(err) = served {
            tracing::error!(error = %err, "gRPC server failed");
        }
    }))
}
