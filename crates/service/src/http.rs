//! Serving a router until shutdown, within limits that keep slow or oversized clients from
//! piling up or holding a shutdown open, and the JSON error every endpoint returns.

use axum::Json;
use axum::Router;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tracing::Instrument;

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

/// The `Idempotency-Key` header, if any: 1 to 255 visible ASCII characters.
///
/// # Errors
/// A 400 naming the header for any other value.
pub fn idempotency_key(headers: &axum::http::HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key)
            if !key.is_empty() && key.len() <= 255 && key.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Ok(Some(key.to_owned()))
        }
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        )
        .field("Idempotency-Key")),
    }
}

/// Decodes a JSON body: syntax errors are 400, missing, unknown or mistyped fields 422 naming
/// the field by its path (`items[0].quantity`).
///
/// # Errors
/// The 400 or 422 to answer.
pub fn decode_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_data() {
            // A missing field's path is its parent's; the message names the field itself.
            let message = inner.to_string();
            let field = match message.strip_prefix("missing field `") {
                Some(rest) => {
                    let name = rest.split('`').next().unwrap_or_default();
                    if path == "." {
                        name.to_owned()
                    } else {
                        format!("{path}.{name}")
                    }
                }
                None => path,
            };
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, inner.to_string()).field(field)
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, format!("malformed JSON: {inner}"))
        }
    })
}

/// What one server lets clients do.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A client must send a request's whole head within this (hyper's header read timer);
    /// a slower one is disconnected.
    pub header_read_timeout: Duration,
    /// A request (body reading included) must be answered within this, else 503.
    pub request_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Largest declared request body; a larger one is answered 413.
    pub max_body_bytes: u64,
    /// How much of a refused body is read and discarded so that the client, which is still
    /// sending, reads the 413 instead of a reset connection; beyond it the connection is closed.
    pub drain_bytes: u64,
    /// On shutdown, open connections get this long to finish their request; then they are dropped.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_body_bytes: 64 * 1024,
            drain_bytes: 16 * 1024 * 1024,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// The operations endpoints, served without a span.
const UNTRACED: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// Runs the request in a server span (HTTP semantic-convention attributes), a child of the
/// caller's trace context if it sent one; what the request causes (e.g. an outbox row's event)
/// continues it.
async fn traced(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    // Probes and scrapes would each be a trace of their own, burying the orders'.
    if UNTRACED.contains(&route) {
        return next.run(request).await;
    }
    let span = tracing::info_span!(
        "request",
        otel.name = %format_args!("{} {route}", request.method()),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = %request.method(),
        http.route = %route,
        url.path = %request.uri().path(),
        http.response.status_code = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    crate::trace::follow(&span, request.headers());
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    response
}

/// Counts every request and times it, by method, route template (`/orders/{id}`, never the raw
/// path: ids would make a series each) and status; requests no route matched are `unmatched`.
async fn measured(request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("orderflow_http_requests_total", "method" => method.clone(),
        "route" => route.clone(), "status" => status)
    .increment(1);
    metrics::histogram!("orderflow_http_request_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Answers 503 when the request (reading its body included) takes longer than allowed.
async fn timed(State(limits): State<Limits>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limits.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the request took longer than {:?}", limits.request_timeout),
        )
        .into_response(),
    }
}

/// Refuses a body declared larger than allowed with a 413 the client can read: the body is read
/// and discarded first (up to [`Limits::drain_bytes`]), as a client that sends its whole body
/// before reading (Python's urllib, most simple clients) would otherwise see a reset.
async fn limited(State(limits): State<Limits>, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let Some(declared) = declared.filter(|n| *n > limits.max_body_bytes) else {
        return next.run(request).await;
    };
    if declared <= limits.drain_bytes {
        let mut body = request.into_body().into_data_stream();
        while let Some(Ok(_)) = body.next().await {}
    }
    let mut response = ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the body is {declared} bytes; at most {} are accepted",
            limits.max_body_bytes
        ),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Where a server listens: an address to bind when it starts, or a listener bound already (a
/// test binds port 0 and passes it, so no other process can take the port in between).
#[derive(Debug)]
pub enum Listen {
    /// Bind this address.
    Addr(SocketAddr),
    /// Accept on this listener.
    Bound(TcpListener),
}

impl From<SocketAddr> for Listen {
    fn from(addr: SocketAddr) -> Self {
        Self::Addr(addr)
    }
}

impl From<TcpListener> for Listen {
    fn from(listener: TcpListener) -> Self {
        Self::Bound(listener)
    }
}

impl Listen {
    /// The listener, binding the address first when there is one.
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub async fn bind(self) -> anyhow::Result<TcpListener> {
        match self {
            Self::Addr(addr) => TcpListener::bind(addr)
                .await
                .map_err(|err| anyhow::anyhow!("cannot listen on {addr}: {err}")),
            Self::Bound(listener) => Ok(listener),
        }
    }
}

/// Serves `app` on `listen` with the default [`Limits`] until `stop` is cancelled.
///
/// # Errors
/// When the address cannot be bound.
pub async fn serve(
    listen: impl Into<Listen>,
    app: Router,
    stop: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = listen.into().bind().await?;
    tracing::info!(addr = %listener.local_addr()?, "HTTP listening");
    Ok(tokio::spawn(serve_on(
        listener,
        app,
        Limits::default(),
        stop,
    )))
}

/// Serves `app` on `listener` within `limits` until `stop` is cancelled; then stops accepting,
/// lets open connections finish their request for [`Limits::shutdown_grace`] and drops the rest.
pub async fn serve_on(listener: TcpListener, app: Router, limits: Limits, stop: CancellationToken) {
    let app = app
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(axum::middleware::from_fn_with_state(limits, limited))
        .layer(axum::middleware::from_fn_with_state(limits, timed))
        .layer(axum::middleware::from_fn(measured))
        .layer(axum::middleware::from_fn(traced));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let slot = tokio::select! {
            () = stop.cancelled() => break,
            slot = Arc::clone(&slots).acquire_owned() => slot.expect("the semaphore is never closed"),
        };
        let stream = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    // E.g. out of file descriptors: wait for connections to close.
                    tracing::warn!(error = %err, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // The peer's address, for handlers that key on it (the gateway's per-address limits).
        let peer = stream.peer_addr().ok();
        let service = TowerToHyperService::new(app.clone().map_request(
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                if let Some(peer) = peer {
                    request.extensions_mut().insert(ConnectInfo(peer));
                }
                request
            },
        ));
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let stop = stop.clone();
        connections.spawn(async move {
            let _slot = slot;
            let mut connection = std::pin::pin!(connection);
            let served = tokio::select! {
                served = connection.as_mut() => served,
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(err) = served {
                tracing::debug!(error = %err, "HTTP connection ended with an error");
            }
        });
    }
    drop(listener);
    let finished = tokio::time::timeout(limits.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if finished.is_err() {
        tracing::warn!(
            open = connections.len(),
            grace = ?limits.shutdown_grace,
            "HTTP connections still open after the shutdown grace; dropping them"
        );
        connections.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Bytes;
    use axum::routing::{get, post};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    async fn start(limits: Limits) -> (SocketAddr, CancellationToken, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/ping", get(|| async { "pong" }))
            .route(
                "/orders",
                post(|body: Bytes| async move { body.len().to_string() }),
            );
        let stop = CancellationToken::new();
        let server = tokio::spawn(serve_on(listener, app, limits, stop.clone()));
        (addr, stop, server)
    }

    /// Sends `bytes` one at a time, 20 ms apart, until done or the server closes the connection;
    /// returns how many were sent.
    async fn trickle(stream: TcpStream, bytes: &[u8]) -> usize {
        let (mut read, mut write) = stream.into_split();
        let mut closed = tokio::spawn(async move {
            let mut sink = Vec::new();
            let _ = read.read_to_end(&mut sink).await;
        });
        for (sent, byte) in bytes.iter().enumerate() {
            if closed.is_finished() || write.write_all(&[*byte]).await.is_err() {
                return sent;
            }
            tokio::select! {
                _ = &mut closed => return sent + 1,
                () = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
        bytes.len()
    }

    #[tokio::test]
    async fn requests_are_counted_by_route_template_and_status() {
        let metrics = crate::ops::metrics();
        let (addr, _stop, _server) = start(Limits::default()).await;
        for path in ["/ping", "/ping", "/no/such/path/42"] {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let head = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
            stream.write_all(head.as_bytes()).await.unwrap();
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer).await.unwrap();
        }
        let text = metrics.render();
        let line = |route: &str, status: &str| {
            format!(
                "orderflow_http_requests_total{{method=\"GET\",route=\"{route}\",status=\"{status}\"}}"
            )
        };
        let count = |series: String| {
            text.lines()
                .find(|l| l.starts_with(&series))
                .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        };
        assert!(
            count(line("/ping", "200")).is_some_and(|n| n >= 2.0),
            "{text}"
        );
        assert!(
            count(line("unmatched", "404")).is_some_and(|n| n >= 1.0),
            "{text}"
        );
        assert!(
            !text.contains("/no/such/path"),
            "raw paths never become labels"
        );
        assert!(
            text.contains("orderflow_http_request_seconds_bucket{method=\"GET\",route=\"/ping\"")
        );
    }

    #[tokio::test]
    async fn a_client_sending_its_head_byte_by_byte_is_cut_off() {
        let (addr, _stop, _server) = start(Limits {
            header_read_timeout: Duration::from_millis(300),
            ..Limits::default()
        })
        .await;
        // 1,000 bytes at 20 ms each would take 20 s.
        let head = format!(
            "GET /ping HTTP/1.1\r\nhost: x\r\nx-slow: {}\r\n\r\n",
            "a".repeat(960)
        );
        let stream = TcpStream::connect(addr).await.unwrap();
        let sent = trickle(stream, head.as_bytes()).await;
        assert!(sent < head.len(), "the whole slow head was accepted");

        // A prompt client is still served.
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /ping HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("pong"), "{answer}");
    }

    #[tokio::test]
    async fn shutdown_drops_a_stuck_client_after_the_grace() {
        let (addr, stop, server) = start(Limits {
            shutdown_grace: Duration::from_millis(500),
            ..Limits::default()
        })
        .await;
        // A whole head, then a body that arrives one byte per 20 ms (20 s in all).
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"POST /orders HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n")
            .await
            .unwrap();
        let client = tokio::spawn(trickle(stream, &[b'x'; 1000]));
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.cancel();
        wait_until("the server stopped", Duration::from_secs(15), || {
            server.is_finished()
        })
        .await;
        let sent = client.await.unwrap();
        assert!(sent < 1000, "the server waited for the whole slow body");
    }

    /// Polls `done` every 50 ms until true; panics naming `what` after `timeout`.
    async fn wait_until(what: &str, timeout: Duration, done: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + timeout;
        while !done() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn a_plain_client_posting_10_mb_reads_the_413() {
        let (addr, _stop, _server) = start(Limits::default()).await;
        let script = r#"
import json, sys, urllib.request, urllib.error
request = urllib.request.Request(sys.argv[1], data=b"x" * (10 * 1024 * 1024), method="POST",
                                 headers={"content-type": "application/json"})
try:
    urllib.request.urlopen(request, timeout=60)
    print("accepted")
except urllib.error.HTTPError as err:
    print(err.code, json.loads(err.read())["error"])
"#;
        let out = tokio::process::Command::new("python3")
            .args(["-c", script, &format!("http://{addr}/orders")])
            .output()
            .await
            .expect("python3 is installed");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "urllib failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.starts_with("413 the body is 10485760 bytes"),
            "{stdout}"
        );
    }
}
