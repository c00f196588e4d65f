//! The library's metrics, described once so every exporter shows their HELP text and unit.

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

/// Describes every metric the library records; call once after installing a recorder.
pub fn describe() {
    describe_counter!(
        "orderflow_deliveries_total",
        "Deliveries by consumer queue and what the handler returned (handled, retryable, rejected, malformed, unavailable)."
    );
    describe_counter!(
        "orderflow_decisions_total",
        "Deliveries by consumer queue and what the runtime did with them (ack, retry, dead_letter, requeue)."
    );
    describe_counter!(
        "orderflow_dead_letters_total",
        "Messages the runtime dead-lettered, by consumer queue and reason (retries-exhausted, rejected, malformed)."
    );
    describe_histogram!(
        "orderflow_handler_seconds",
        Unit::Seconds,
        "Time a handler took, by consumer queue."
    );
    describe_counter!(
        "orderflow_published_total",
        "Publishes by exchange and outcome (confirmed, unroutable, nacked, failed)."
    );
    describe_histogram!(
        "orderflow_acks_per_frame",
        "Deliveries one basic.ack frame settled (coalesced acks)."
    );
    describe_gauge!(
        "orderflow_consumer_paused",
        "1 while a consumer is paused because a dependency (the store) is down."
    );
}
