//! The library's metrics: their names under a prefix (`orderflow` unless
//! [`BrokerConfig::with_metric_prefix`](crate::BrokerConfig::with_metric_prefix) says otherwise),
//! described once so every exporter shows their HELP text and unit.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// The name of every metric the library records, under one prefix; made once per prefix and
/// kept for the process (metric names are process-wide, like the recorder).
#[derive(Debug)]
pub(crate) struct MetricNames {
    pub(crate) deliveries: &'static str,
    pub(crate) decisions: &'static str,
    pub(crate) dead_letters: &'static str,
    pub(crate) handler_seconds: &'static str,
    pub(crate) published: &'static str,
    pub(crate) acks_per_frame: &'static str,
    pub(crate) consumer_paused: &'static str,
}

impl MetricNames {
    /// The names under `prefix` (`<prefix>_deliveries_total`, …).
    pub(crate) fn under(prefix: &str) -> &'static Self {
        static MADE: OnceLock<Mutex<HashMap<String, &'static MetricNames>>> = OnceLock::new();
        let mut made = MADE
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        made.entry(prefix.to_owned()).or_insert_with(|| {
            let name = |suffix: &str| -> &'static str {
                Box::leak(format!("{prefix}_{suffix}").into_boxed_str())
            };
            Box::leak(Box::new(Self {
                deliveries: name("deliveries_total"),
                decisions: name("decisions_total"),
                dead_letters: name("dead_letters_total"),
                handler_seconds: name("handler_seconds"),
                published: name("published_total"),
                acks_per_frame: name("acks_per_frame"),
                consumer_paused: name("consumer_paused"),
            }))
        })
    }
}

/// Counts one under `name` and `labels` (nothing without the `metrics` feature).
pub(crate) fn increment(name: &'static str, labels: &[(&'static str, &str)]) {
    #[cfg(feature = "metrics")]
    metrics::counter!(name, owned(labels)).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = (name, labels);
}

/// Records `value` in the histogram `name`.
pub(crate) fn record(name: &'static str, labels: &[(&'static str, &str)], value: f64) {
    #[cfg(feature = "metrics")]
    metrics::histogram!(name, owned(labels)).record(value);
    #[cfg(not(feature = "metrics"))]
    let _ = (name, labels, value);
}

/// Sets the gauge `name` to `value`.
pub(crate) fn set(name: &'static str, labels: &[(&'static str, &str)], value: f64) {
    #[cfg(feature = "metrics")]
    metrics::gauge!(name, owned(labels)).set(value);
    #[cfg(not(feature = "metrics"))]
    let _ = (name, labels, value);
}

#[cfg(feature = "metrics")]
fn owned(labels: &[(&'static str, &str)]) -> Vec<metrics::Label> {
    labels
        .iter()
        .map(|(key, value)| metrics::Label::new(*key, (*value).to_owned()))
        .collect()
}

/// Describes every metric the library records under `prefix` (the one its `BrokerConfig`
/// names), through the `metrics` facade; call once after installing a recorder. Without the
/// `metrics` feature the library records nothing and this does nothing.
pub fn describe(prefix: &str) {
    #[cfg(feature = "metrics")]
    describe_all(MetricNames::under(prefix));
    #[cfg(not(feature = "metrics"))]
    let _ = prefix;
}

#[cfg(feature = "metrics")]
fn describe_all(names: &MetricNames) {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        names.deliveries,
        "Deliveries by consumer queue and what the handler returned (handled, retryable, rejected, malformed, unavailable)."
    );
    describe_counter!(
        names.decisions,
        "Deliveries by consumer queue and what the runtime did with them (ack, retry, dead_letter, requeue)."
    );
    describe_counter!(
        names.dead_letters,
        "Messages the runtime dead-lettered, by consumer queue and reason (retries-exhausted, rejected, malformed)."
    );
    describe_histogram!(
        names.handler_seconds,
        Unit::Seconds,
        "Time a handler took, by consumer queue."
    );
    describe_counter!(
        names.published,
        "Publishes by exchange and outcome (confirmed, unroutable, nacked, failed)."
    );
    describe_histogram!(
        names.acks_per_frame,
        "Deliveries one basic.ack frame settled (coalesced acks)."
    );
    describe_gauge!(
        names.consumer_paused,
        "1 while a consumer is paused because a dependency (the store) is down."
    );
}

#[cfg(test)]
mod tests {
    use super::MetricNames;

    #[test]
    fn names_are_made_once_per_prefix() {
        let ours = MetricNames::under("orderflow");
        assert_eq!(ours.deliveries, "orderflow_deliveries_total");
        assert!(std::ptr::eq(ours, MetricNames::under("orderflow")));
        assert_eq!(
            MetricNames::under("acme").handler_seconds,
            "acme_handler_seconds"
        );
    }
}
