//! Reliable RabbitMQ messaging for orderflow, on lapin.
//!
//! # Layout
//!
//! - [`connection`]: connecting, reconnect backoff, the readiness flag.
//! - [`topology`]: exchanges, consumer queues, retry tiers and DLQs, declared idempotently.
//! - [`publisher`]: persistent, mandatory publishes with pipelined confirms.
//! - [`consumer`]: the per-queue runtime (prefetch, concurrency, decode, handle, settle); acks
//!   are coalesced per channel (`acks`): one `multiple` ack covers the deliveries settled together.
//! - [`runtime`]: the supervisor that reconnects, redeclares and resumes consumers.
//! - [`retry`]: the backoff policy and the pure retry decision.
//! - [`headers`]: the header names the library owns and their readers.
//! - [`trace`]: W3C `traceparent` on every message, continued from delivery to published event.
//! - [`handler`], [`message`], [`event`]: what handlers see and return.
//!
//! # Guarantees
//!
//! A handler returns `Ok` (ack), [`HandlerError::Retry`] (a copy waits in retry tier `n`, whose
//! TTL dead-letters it straight back to the queue) or [`HandlerError::Reject`] (a copy goes to
//! the DLQ). Undecodable bodies go to the DLQ untouched. The original is acked only after its
//! copy is confirmed; if the copy cannot be stored, the original is nacked with requeue.
//! Retries never sleep in the consumer, and never pass through the original exchange.

mod acks;
pub mod connection;
pub mod consumer;
pub mod error;
pub mod event;
pub mod handler;
pub mod headers;
pub mod message;
pub mod publisher;
pub mod retry;
pub mod runtime;
mod settle;
pub mod topology;
pub mod trace;
pub mod version;

pub use connection::{BrokerConfig, Readiness};
pub use consumer::ConsumerSpec;
pub use error::{BrokerError, TopologyError};
pub use event::Event;
pub use handler::{BoxError, Handler, HandlerError};
pub use headers::DeadLetterReason;
pub use lapin;
pub use message::{Message, Meta, Outgoing};
pub use publisher::Publisher;
pub use retry::{Decision, Outcome, RetryPolicy, decide};
pub use runtime::Runtime;
pub use topology::{ExchangeType, QueueSpec, QueueType, Topology};
pub use trace::TraceParent;
pub use version::BrokerVersion;
