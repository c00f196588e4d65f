//! HTTP calls for tests (feature `test-util`): to a router in process (no socket, no server), or
//! to a server the test started on a listener it bound.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use serde_json::Value;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

/// Bodies read back at most (well above any API answer).
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// What a router answered.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The body as JSON; `Value::Null` when it is empty or not JSON.
    pub body: Value,
}

/// Sends `request` to `router` and reads the whole answer.
///
/// # Panics
/// When the router fails or the body cannot be read (a router answers every request).
pub async fn send(router: &Router, request: Request<Body>) -> Answer {
    let response = router
        .clone()
        .oneshot(request)
        .await
        .expect("routers are infallible");
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_ANSWER_BYTES)
        .await
        .expect("reading the answer");
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// `GET uri` on `router`.
///
/// # Panics
/// As [`send`], and when `uri` is not a valid URI.
pub async fn get(router: &Router, uri: &str) -> Answer {
    let request = Request::get(uri).body(Body::empty()).expect("a valid URI");
    send(router, request).await
}

/// `method path` with `body` (as JSON) to the server at `addr` on a fresh connection, all sent
/// before the answer is read; the status and the body as JSON.
///
/// # Panics
/// When the server does not answer with HTTP.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> (StatusCode, Value) {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|err| panic!("connecting to {addr}: {err}"));
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("sending");
    stream.write_all(body).await.expect("sending the body");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("reading");
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer}"));
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// `GET path` from the server at `addr`; see [`request`].
///
/// # Panics
/// As [`request`].
pub async fn fetch(addr: SocketAddr, path: &str) -> (StatusCode, Value) {
    request(addr, "GET", path, b"").await
}
