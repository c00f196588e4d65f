//! The payment worker: charges new orders through a (simulated) provider, publishes `order.paid`
//! or `payment.failed`, and refunds orders that are cancelled after being charged.
//!
//! # Layout
//!
//! - [`provider`]: the provider interface and the simulated provider (token decides; one charge
//!   per idempotency key).
//! - [`store`]: the payments store and its state transitions.
//! - [`handlers`]: `order.created` → charge; `order.cancelled` → refund.
//! - [`api`]: `GET /payments/{order_id}`, the simulated provider's `GET /provider/charges`.

// Docs say why where it is not obvious; on every item they were filler. `missing_docs` stays
// on for the libraries others build on (broker, contracts).
#![allow(missing_docs)]

pub mod api;
pub mod handlers;
pub mod provider;
pub mod store;

use contracts::names::queues;
use service::args::Settings;
use service::http::Listen;
use std::future::Future;
use store::PaymentStore;

/// The worker's name on the wire (`app_id`).
pub const APP_ID: &str = "payment-worker";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Runs the worker, its HTTP API on `listen` (an address, or a listener bound already), until
/// `shutdown` completes.
///
/// # Errors
/// When the store cannot be opened, the HTTP address bound, or the topology conflicts.
pub async fn run(
    settings: Settings,
    listen: impl Into<Listen>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let db = settings.database(&MIGRATOR).await?;
    let store = PaymentStore::new(db.clone());
    let provider = provider::Simulated::new(db.clone());
    let runtime = settings.runtime()?;
    let publisher = runtime.publisher();
    let runtime = runtime
        .with_consumer(settings.consumer(
            queues::PAYMENT_ORDER_CREATED,
            handlers::Charge {
                store: store.clone(),
                publisher: publisher.clone(),
                provider: provider.clone(),
            },
        ))
        .with_consumer(settings.consumer(
            queues::PAYMENT_ORDER_CANCELLED,
            handlers::Refund {
                store: store.clone(),
                publisher,
            },
        ));
    let app = api::routes(api::Api { store, provider });
    let mut worker = service::worker::Worker::new();
    worker.prune(&db, &[service::retention::INBOX], settings.retention);
    worker.run(runtime, app, db, listen, shutdown).await
}
