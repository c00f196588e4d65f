//! orderflow's events, their names on the wire, and the system's topology.
//!
//! # Layout
//!
//! - [`events`]: every event of the saga with its `type`, exchange and routing key.
//! - [`names`]: exchange and queue names (`docs/design.md` §2).
//! - [`outbox`]: the order worker's quarantined outbox rows as its API shows them.
//! - [`topology`]: the whole system's exchanges and consumer queues, declared by every worker.
//! - [`ids`]: deterministic message ids, so a re-published event is recognised as a duplicate.
//! - `fixtures` (feature `test-util`): a valid `order.created`; checking a published event.

pub mod events;
#[cfg(feature = "test-util")]
pub mod fixtures;
pub mod ids;
pub mod names;
pub mod outbox;
pub mod topology;

pub use events::*;

use broker::{BrokerError, Event, Outgoing, Publish};

/// Publishes a saga event with its deterministic `message_id` (one fact per order), so that
/// re-publishing after a crash is recognised downstream as the same event.
///
/// # Errors
/// As [`Publish::publish`].
pub async fn publish<E: Event>(publisher: &impl Publish, event: &E) -> Result<(), BrokerError> {
    publisher
        .publish(&outgoing(event, publisher.app_id())?)
        .await
}

/// The message for a saga event, with its deterministic `message_id`.
///
/// # Errors
/// When the event does not serialize.
pub fn outgoing<E: Event>(event: &E, app_id: &str) -> Result<Outgoing, serde_json::Error> {
    let message = Outgoing::event(event, app_id)?;
    let id = ids::message_id(E::TYPE, &event.correlation_id());
    Ok(message.with_message_id(&id))
}
