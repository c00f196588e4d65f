//! The order worker: takes orders over HTTP and gRPC, prices them from the stock service's
//! catalogue, stores each with its `order.created` in one
//! transaction (the outbox), relays the outbox with confirms, and drives every order to
//! `completed` or `cancelled` from the other workers' events.
//!
//! # Layout
//!
//! - [`validation`]: the order request, its checks and its pricing.
//! - [`catalogue`]: prices from the stock service over gRPC.
//! - [`place`]: placing an order, for both APIs.
//! - [`store`]: orders, outbox, idempotency keys, and which of their rows retention prunes.
//! - the inbox (`service::inbox`) keys facts by message id, queue and order.
//! - [`outbox`]: the relay that publishes outbox rows.
//! - [`handlers`]: stock and payment facts → order status.
//! - [`api`]: `POST /orders`, `GET /orders/{id}`, `POST /orders/{id}/cancel`.
//! - [`grpc`]: `api.OrderService`: create, get, cancel.

// Docs say why where it is not obvious; on every item they were filler. `missing_docs` stays
// on for the libraries others build on (broker, contracts).
#![allow(missing_docs)]

pub mod api;
pub mod catalogue;
pub mod grpc;
pub mod handlers;
pub mod outbox;
pub mod place;
pub mod store;
pub mod validation;

use contracts::names::queues;
use contracts::{OrderPaid, PaymentFailed, PaymentRefunded, StockRejected, StockReserved};
use service::args::Settings;
use service::http::Listen;
use std::future::Future;
use std::sync::Arc;
use store::OrderStore;
use tokio::sync::Notify;

/// The worker's name on the wire (`app_id`).
pub const APP_ID: &str = "order-worker";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The gRPC services the worker serves.
pub const GRPC_SERVICES: &[&str] = &["api.OrderService"];

/// Runs the worker, its HTTP API on `listen` and `api.OrderService` on `grpc` (each an address,
/// or a listener bound already), pricing orders from `catalogue`, until `shutdown` completes.
///
/// # Errors
/// When the store cannot be opened, the HTTP address bound, or the topology conflicts.
pub async fn run(
    settings: Settings,
    catalogue: catalogue::Catalogue,
    listen: impl Into<Listen>,
    grpc: impl Into<Listen>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let db = settings.database(&MIGRATOR).await?;
    let store = OrderStore::new(db.clone());
    let wake = Arc::new(Notify::new());
    let apply_fact = handlers::ApplyFact {
        store: store.clone(),
        wake: Arc::clone(&wake),
    };
    let runtime = settings
        .runtime()?
        .with_consumer(settings.consumer(
            queues::ORDER_ORDER_CREATED,
            handlers::Adopt {
                store: store.clone(),
            },
        ))
        .with_consumer(
            settings.consumer::<StockReserved, _>(queues::ORDER_STOCK_RESERVED, apply_fact.clone()),
        )
        .with_consumer(
            settings.consumer::<StockRejected, _>(queues::ORDER_STOCK_REJECTED, apply_fact.clone()),
        )
        .with_consumer(
            settings.consumer::<OrderPaid, _>(queues::ORDER_ORDER_PAID, apply_fact.clone()),
        )
        .with_consumer(
            settings.consumer::<PaymentFailed, _>(queues::ORDER_PAYMENT_FAILED, apply_fact.clone()),
        )
        .with_consumer(
            settings.consumer::<PaymentRefunded, _>(queues::ORDER_PAYMENT_REFUNDED, apply_fact),
        );
    let mut worker = service::worker::Worker::new();
    worker.prune(&db, &store::PRUNED, settings.retention);
    worker.spawn(outbox::relay(
        store.clone(),
        service::lease::Lease::new(&db, outbox::RELAY_LEASE),
        runtime.publisher(),
        Arc::clone(&wake),
        worker.stop_token(),
    ));
    worker.spawn(outbox::watch_backlog(store.clone(), worker.stop_token()));
    let front = api::Api {
        store: store.clone(),
        wake: Arc::clone(&wake),
        catalogue,
    };
    let orders = grpc::Orders { api: front.clone() };
    worker.serve_grpc(
        tonic::service::Routes::new(orders.server()),
        GRPC_SERVICES,
        grpc,
    );
    let api = api::routes(front).merge(outbox::routes(store, wake));
    worker.run(runtime, api, db, listen, shutdown).await
}

#[cfg(test)]
mod tests;
