//! The trace context of HTTP and gRPC calls, in their headers: server spans continue the
//! caller's context, client calls carry their own span's ([`broker::trace`] does the work).

use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use tonic::codegen::http::HeaderMap;

/// Makes `span` a child of the context in request `headers` (see [`broker::trace::follow`]).
pub fn follow(span: &tracing::Span, headers: &HeaderMap) {
    broker::trace::follow(span, &HeaderExtractor(headers));
}

/// Writes `span`'s context into outgoing `headers`.
pub fn inject(span: &tracing::Span, headers: &mut HeaderMap) {
    broker::trace::inject(span, &mut HeaderInjector(headers));
}
