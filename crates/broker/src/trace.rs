//! W3C trace context: every published message carries a `traceparent`; events published while a
//! delivery is handled continue that delivery's trace, so one order's messages share a trace id.

use std::fmt;
use std::future::Future;

tokio::task_local! {
    static CURRENT: TraceParent;
}

/// A W3C `traceparent`: version 00, trace id, parent (span) id, flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    trace_id: u128,
    span_id: u64,
    flags: u8,
}

impl TraceParent {
    /// A new trace (sampled).
    #[must_use]
    pub fn root() -> Self {
        Self {
            trace_id: uuid::Uuid::new_v4().as_u128(),
            span_id: new_span_id(),
            flags: 1,
        }
    }

    /// The same trace with a new span id: what a message published in this context carries.
    #[must_use]
    pub fn child(&self) -> Self {
        Self {
            span_id: new_span_id(),
            ..*self
        }
    }

    /// Parses `00-<32 hex>-<16 hex>-<2 hex>`; `None` for anything else or all-zero ids.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.trim().split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version != "00"
            || parts.next().is_some()
            || trace.len() != 32
            || span.len() != 16
            || flags.len() != 2
        {
            return None;
        }
        let parsed = Self {
            trace_id: u128::from_str_radix(trace, 16).ok()?,
            span_id: u64::from_str_radix(span, 16).ok()?,
            flags: u8::from_str_radix(flags, 16).ok()?,
        };
        (parsed.trace_id != 0 && parsed.span_id != 0).then_some(parsed)
    }

    /// The trace id as 32 hex digits (for logs).
    #[must_use]
    pub fn trace_id(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    /// The context of the delivery being handled on this task, if any.
    #[must_use]
    pub fn current() -> Option<Self> {
        CURRENT.try_with(|current| *current).ok()
    }

    /// Runs `future` with this as the current context.
    pub async fn scope<F: Future>(self, future: F) -> F::Output {
        CURRENT.scope(self, future).await
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id, self.span_id, self.flags
        )
    }
}

fn new_span_id() -> u64 {
    let id = uuid::Uuid::new_v4().as_u64_pair().0;
    id.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let text = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(TraceParent::parse(text).unwrap().to_string(), text);
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-xyz-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_child_keeps_the_trace_and_changes_the_span() {
        let parent = TraceParent::root();
        let child = parent.child();
        assert_eq!(child.trace_id(), parent.trace_id());
        assert_ne!(child.to_string(), parent.to_string());
    }

    #[tokio::test]
    async fn the_current_context_is_task_local() {
        assert_eq!(TraceParent::current(), None);
        let parent = TraceParent::root();
        let seen = parent.scope(async { TraceParent::current() }).await;
        assert_eq!(seen, Some(parent));
    }
}
