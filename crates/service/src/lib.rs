//! What every orderflow worker shares.
//!
//! # Layout
//!
//! - [`clock`]: timestamps as the store and the wire keep them (RFC 3339, UTC).
//! - [`args`]: the flags every worker takes (broker, store, HTTP, retry policy, concurrency).
//! - [`database`]: opening the worker's own database (SQLite or PostgreSQL) and migrating it.
//! - [`db`]: reads from the pool, writes as transactions (group-committed on SQLite).
//! - [`stored`]: reading stored JSON and state names back strictly (errors, not defaults).
//! - [`inbox`]: recording handled message ids in the transaction of the state change.
//! - [`lease`]: one replica at a time for a job such as the outbox relay (an advisory lock).
//! - [`retention`]: pruning inbox claims, sent outbox rows and idempotency keys past a window.
//! - [`outage`]: telling a store outage from a message failure.
//! - [`ops`]: `/healthz`, `/readyz` and `/metrics`.
//! - [`http`]: serving a router until shutdown, and JSON errors.
//! - [`grpc`]: serving gRPC services with health, reflection and the caller's trace.
//! - [`shutdown`]: SIGTERM / Ctrl-C as a future.
//! - [`telemetry`]: logging setup for binaries.
//! - [`worker`]: running the broker runtime, the HTTP server and background tasks together.
//! - `test_store`, `test_http`, `test_worker`, `test_retention` (feature `test-util`): scratch
//!   SQLite and PostgreSQL stores, HTTP calls in process, a whole worker on port 0, the inbox's
//!   retention scenario, for tests.

// Docs say why where it is not obvious; on every item they were filler. `missing_docs` stays
// on for the libraries others build on (broker, contracts).
#![allow(missing_docs)]

pub mod args;
pub mod clock;
pub mod database;
pub mod db;
pub mod grpc;
pub mod http;
pub mod inbox;
pub mod lease;
pub mod ops;
pub mod outage;
pub mod retention;
pub mod shutdown;
mod span_filter;
pub mod stored;
pub mod telemetry;
#[cfg(feature = "test-util")]
pub mod test_http;
#[cfg(feature = "test-util")]
pub mod test_retention;
#[cfg(feature = "test-util")]
pub mod test_store;
#[cfg(feature = "test-util")]
pub mod test_worker;
pub mod trace;
pub mod worker;
