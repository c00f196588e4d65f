//! orderflow's events, their names on the wire, and the system's topology.
//!
//! # Layout
//!
//! - [`events`]: every event of the saga with its `type`, exchange and routing key.
//! - [`names`]: exchange and queue names (DESIGN.md §2).
//! - [`topology`]: the whole system's exchanges and consumer queues, declared by every worker.
//! - [`ids`]: deterministic message ids, so a re-published event is recognised as a duplicate.

pub mod events;
pub mod ids;
pub mod names;
pub mod topology;

pub use events::*;
