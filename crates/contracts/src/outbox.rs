//! The order worker's outbox rows as its HTTP API shows them and the `orderflow` CLI reads them
//! (`GET /outbox/quarantined`).

use serde::{Deserialize, Serialize};

/// An outbox row the relay gave up on after repeated refusals: kept, never dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantinedRow {
    /// Its `message_id`.
    pub message_id: String,
    /// The order it is about.
    pub order_id: String,
    /// Event type.
    pub event_type: String,
    /// Target exchange.
    pub exchange: String,
    /// Routing key.
    pub routing_key: String,
    /// Failed publishes.
    pub attempts: i64,
    /// The last publish error.
    pub last_error: Option<String>,
    /// When the relay quarantined it (RFC 3339).
    pub quarantined_at: String,
}
