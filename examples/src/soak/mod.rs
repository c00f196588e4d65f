//! The chaos soak (`examples/soak.rs`): drive the real system while breaking it, then audit
//! every store.
//!
//! # Layout
//!
//! - [`rng`]: the seeded generator behind the order mix and the fault schedule.
//! - [`plan`]: the orders (approved, declined, transient, short of stock) and the inventory.
//! - [`workers`]: building, spawning, killing and restarting the worker binaries.
//! - [`system`]: the private broker node, the workers and their stores, and injecting faults.
//! - [`chaos`]: the fault kinds and their seeded schedule.
//! - [`client`]: `POST /orders` with an `Idempotency-Key`, retried through outages.
//! - [`queues`]: counting queues and reading dead letters over AMQP.
//! - [`stores`]: reading the workers' stores directly.
//! - [`audit`]: the checks, as a pure function of what was submitted and what the stores hold.

pub mod audit;
pub mod chaos;
pub mod client;
pub mod plan;
pub mod queues;
pub mod rng;
pub mod stores;
pub mod system;
pub mod workers;
