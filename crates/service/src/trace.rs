//! The trace context of HTTP and gRPC calls: server spans continue the caller's context from
//! the request headers (W3C `traceparent`/`tracestate` through the installed propagator), and
//! client calls carry their own span's context.

use opentelemetry::trace::TraceContextExt;
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use tonic::codegen::http::HeaderMap;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Makes `span` a child of the context in `headers`, when they carry a valid one, and records
/// its trace id in the span's `trace_id` field (so its log lines carry it).
pub fn follow(span: &tracing::Span, headers: &HeaderMap) {
    let cx = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(headers))
    });
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
    if let Some(trace_id) = broker::trace::trace_id(span) {
        span.record("trace_id", trace_id);
    }
}

/// Writes `span`'s context into outgoing `headers`.
pub fn inject(span: &tracing::Span, headers: &mut HeaderMap) {
    let cx = span.context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&cx, &mut HeaderInjector(headers));
    });
}
