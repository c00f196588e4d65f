//! Trace context on the wire through OpenTelemetry's propagator (W3C `traceparent` and
//! `tracestate` unless the application installs another): a delivery's span continues the trace
//! its message carries, and every publish carries the context of its own span, so one order's
//! spans share a trace id across services. Spans are `tracing` spans; with the
//! `tracing-opentelemetry` layer installed they are exported, without it nothing is propagated.

use crate::headers::TRACEPARENT;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt;
use std::collections::HashMap;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Writes `span`'s context into `carrier` (message headers, HTTP headers, a map), replacing a
/// context it held; nothing when `span` has no valid one.
pub fn inject(span: &tracing::Span, carrier: &mut dyn Injector) {
    let cx = span.context();
    if cx.span().span_context().is_valid() {
        opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.inject_context(&cx, carrier);
        });
    }
}

/// Makes `span` a child of the context in `carrier` when it holds a valid one (a span given a
/// parent this way is not re-parented by the task's current span), and records the trace id in
/// its `trace_id` field, if it has one, so its log lines carry it.
pub fn follow(span: &tracing::Span, carrier: &dyn Extractor) {
    let cx =
        opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(carrier));
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
    if let Some(trace_id) = trace_id(span) {
        span.record("trace_id", trace_id);
    }
}

/// Writes `span`'s context into message headers.
pub(crate) fn inject_headers(span: &tracing::Span, headers: &mut FieldTable) {
    inject(span, &mut HeaderInjector(headers));
}

/// Makes `span` a child of the context message headers carry.
pub(crate) fn follow_headers(span: &tracing::Span, headers: &FieldTable) {
    follow(span, &HeaderExtractor(headers));
}

/// The W3C `traceparent` of the current span (through the installed propagator, which must
/// write one: the default W3C one does), to store with work published later, such as an outbox
/// row; `None` outside a valid trace.
#[must_use]
pub fn current_traceparent() -> Option<String> {
    let cx = tracing::Span::current().context();
    let mut carrier = HashMap::new();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&cx, &mut carrier);
    });
    carrier.remove(TRACEPARENT)
}

/// Makes `span` continue the trace of a stored `traceparent` (see [`current_traceparent`]); an
/// unparsable one leaves `span` where it was.
pub fn continue_traceparent(span: &tracing::Span, traceparent: &str) {
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), traceparent.to_owned())]);
    follow(span, &carrier);
}

/// The current span's trace id as 32 hex digits (for log lines); `None` outside a valid trace.
#[must_use]
pub fn current_trace_id() -> Option<String> {
    trace_id(&tracing::Span::current())
}

/// `span`'s trace id as 32 hex digits; `None` outside a valid trace.
#[must_use]
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    let context = cx.span().span_context().clone();
    context.is_valid().then(|| context.trace_id().to_string())
}

struct HeaderInjector<'a>(&'a mut FieldTable);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0
            .insert(ShortString::from(key), AMQPValue::LongString(value.into()));
    }
}

struct HeaderExtractor<'a>(&'a FieldTable);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match self.0.inner().get(key)? {
            AMQPValue::LongString(text) => std::str::from_utf8(text.as_bytes()).ok(),
            AMQPValue::ShortString(text) => Some(text.as_str()),
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        self.0.inner().keys().map(ShortString::as_str).collect()
    }
}
