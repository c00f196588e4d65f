//! Typed events: what a message's body is, where it is published and what it is called on the wire.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// An event type with a fixed name and route.
pub trait Event: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The message's `type` property, e.g. `order.created`.
    const TYPE: &'static str;
    /// The exchange it is published to.
    const EXCHANGE: &'static str;
    /// The routing key it is published with ("" on a fanout exchange).
    const ROUTING_KEY: &'static str;

    /// The `correlation_id`: the id of the business entity (the order) it is about.
    fn correlation_id(&self) -> String;
}
