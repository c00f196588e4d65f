//! Test harness for orderflow: real brokers only.
//!
//! # Layout
//!
//! - [`endpoint`]: finds the broker (`AMQP_URL`, else the local default, else a testcontainers
//!   RabbitMQ where a Docker engine runs) or fails saying how to start one.
//! - [`vhost`]: an isolated virtual host per test, deleted when dropped.
//! - [`node`]: a private `rabbitmq-server` node for tests that restart or disturb the broker.
//! - [`cluster`]: three private nodes clustered, for tests that lose or restart nodes.
//! - [`port`]: ports for private servers that no other process is handed meanwhile.
//! - [`postgres`]: a private PostgreSQL server for tests that stop or restart the database.
//! - [`tls`]: a certificate authority made for one test, and server certificates it signs.
//! - [`inspect`]: reading queues the way a test asserts on them.
//! - [`wait`]: polling a condition with a deadline (never a bare sleep).

// Docs say why where it is not obvious; on every item they were filler. `missing_docs` stays
// on for the libraries others build on (broker, contracts).
#![allow(missing_docs)]

pub mod cluster;
pub mod endpoint;
pub mod inspect;
pub mod node;
pub mod port;
pub mod postgres;
pub mod tls;
pub mod vhost;
pub mod wait;

pub use cluster::PrivateCluster;
pub use endpoint::Endpoint;
pub use node::PrivateNode;
pub use postgres::PrivatePostgres;
pub use tls::TestCa;
pub use vhost::{Grants, TestVhost};
pub use wait::eventually;

/// Installs a test log subscriber once (respects `RUST_LOG`, default `warn`).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}
