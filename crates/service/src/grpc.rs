//! Serving a worker's gRPC services beside its HTTP API: health (`grpc.health.v1`, serving
//! while the store answers), reflection, a server span continuing the caller's trace, and a graceful stop; and the client
//! transport that carries a client span's context.

use crate::http::Listen;
use sqlx::AnyPool;
use std::time::Duration;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::codegen::http;
use tonic::service::Routes;
use tonic_health::ServingStatus;
use tracing::Instrument;

/// How often the health service looks at the store.
const HEALTH_EVERY: Duration = Duration::from_secs(2);

/// The server span of a gRPC call, a child of the caller's context.
fn server_span(request: &http::Request<()>) -> tracing::Span {
    rpc_span(request.uri().path(), "server")
        .inspect(|span| crate::trace::follow(span, request.headers()))
        .unwrap_or_else(tracing::Span::none)
}

/// A span of the call to `path` (`rpc.*` attributes) of `kind` (`server` or `client`); none for
/// health checks, which (readiness probes) would each be a trace of their own, burying the
/// orders'.
fn rpc_span(path: &str, kind: &'static str) -> Option<tracing::Span> {
    let (service, method) = service_and_method(path);
    (service != tonic_health::pb::health_server::SERVICE_NAME).then(|| {
        tracing::info_span!(
            "grpc",
            otel.name = %format_args!("{service}/{method}"),
            otel.kind = kind,
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            trace_id = tracing::field::Empty,
        )
    })
}

/// A gRPC server transport that counts and times every call by service, method and status
/// code (`orderflow_grpc_requests_total`, `orderflow_grpc_request_seconds`). The code is the
/// response's `grpc-status` header: where a failure puts it (trailers-only), and absent on a
/// unary success (its status rides in the trailers), counted as `0`.
#[derive(Debug, Clone)]
struct Measured<S>(S);

impl<S, B, R> tower::Service<http::Request<B>> for Measured<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures_util::future::BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let (service, method) = service_and_method(request.uri().path());
        let (service, method) = (service.to_owned(), method.to_owned());
        let started = std::time::Instant::now();
        let call = self.0.call(request);
        Box::pin(async move {
            let response = call.await?;
            let code = response
                .headers()
                .get("grpc-status")
                .and_then(|value| value.to_str().ok())
                .unwrap_or("0")
                .to_owned();
            metrics::counter!("orderflow_grpc_requests_total", "service" => service.clone(),
                "method" => method.clone(), "code" => code)
            .increment(1);
            metrics::histogram!("orderflow_grpc_request_seconds", "service" => service,
                "method" => method)
            .record(started.elapsed().as_secs_f64());
            Ok(response)
        })
    }
}

/// `/pkg.Service/Method` as (`pkg.Service`, `Method`).
fn service_and_method(path: &str) -> (&str, &str) {
    path.trim_start_matches('/')
        .split_once('/')
        .unwrap_or((path, ""))
}

/// A gRPC client transport whose every call runs in a client span whose context it carries.
#[derive(Debug, Clone)]
pub struct Traced<S>(S);

/// The channel [`balanced_channel`] returns.
pub type TracedChannel = Traced<tonic::transport::Channel>;

impl<S, B> tower::Service<http::Request<B>> for Traced<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = tracing::instrument::Instrumented<S::Future>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let span = rpc_span(request.uri().path(), "client").unwrap_or_else(tracing::Span::none);
        crate::trace::inject(&span, request.headers_mut());
        self.0.call(request).instrument(span)
    }
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
) -> anyhow::Result<TracedChannel> {
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
    Ok(Traced(tonic::transport::Channel::balance_list(
        endpoints.into_iter(),
    )))
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
            .trace_fn(server_span)
            .layer(tower::layer::layer_fn(Measured))
            .add_routes(routes)
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), stop.cancelled_owned())
            .await;
        if let Err(err) = served {
            tracing::error!(error = %err, "gRPC server failed");
        }
    }))
}
