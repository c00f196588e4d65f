//! The stock worker: reserves every line of a new order at once or refuses it, commits the
//! reservation when the order is paid and releases it when the order is cancelled.
//!
//! # Layout
//!
//! - [`catalogue`]: `STOCK_FILE`, the price list and initial inventory.
//! - [`store`]: the catalogue, stock per SKU and reservations, with oversell-proof conditional
//!   updates.
//! - [`handlers`]: `order.created` → reserve; `order.paid` → commit; `order.cancelled` → release.
//! - [`api`]: `GET /stock/{sku}`.
//! - [`grpc`]: `api.StockService`, the catalogue's prices and the units available.

// Docs say why where it is not obvious; on every item they were filler. `missing_docs` stays
// on for the libraries others build on (broker, contracts).
#![allow(missing_docs)]

pub mod api;
pub mod catalogue;
pub mod grpc;
pub mod handlers;
pub mod store;

use catalogue::Inventory;
use contracts::names::queues;
use service::args::Settings;
use service::http::Listen;
use std::future::Future;
use store::StockStore;

/// The worker's name on the wire (`app_id`).
pub const APP_ID: &str = "stock-worker";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The gRPC services the worker serves.
pub const GRPC_SERVICES: &[&str] = &["api.StockService"];

/// Runs the worker, its HTTP API on `listen` and `api.StockService` on `grpc` (each an address,
/// or a listener bound already), until `shutdown` completes; `inventory` is the catalogue and
/// seeds SKUs the store does not know.
///
/// # Errors
/// When the store cannot be opened, the HTTP address bound, or the topology conflicts.
pub async fn run(
    settings: Settings,
    inventory: Inventory,
    listen: impl Into<Listen>,
    grpc: impl Into<Listen>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let db = settings.database(&MIGRATOR).await?;
    let store = StockStore::new(db.clone());
    let added = store.seed(&inventory).await?;
    tracing::info!(added, known = inventory.len(), "inventory seeded");
    let runtime = settings.runtime()?;
    let publisher = runtime.publisher();
    let runtime = runtime
        .with_consumer(settings.consumer(
            queues::STOCK_ORDER_CREATED,
            handlers::Reserve {
                store: store.clone(),
                publisher,
            },
        ))
        .with_consumer(settings.consumer(
            queues::STOCK_ORDER_PAID,
            handlers::Commit {
                store: store.clone(),
            },
        ))
        .with_consumer(settings.consumer(
            queues::STOCK_ORDER_CANCELLED,
            handlers::Release {
                store: store.clone(),
            },
        ));
    let mut worker = service::worker::Worker::new();
    worker.prune(&db, &[service::retention::INBOX], settings.retention);
    let stock = grpc::Stock {
        store: store.clone(),
    };
    worker.serve_grpc(
        tonic::service::Routes::new(stock.server()),
        GRPC_SERVICES,
        grpc,
    );
    worker
        .run(runtime, api::routes(store), db, listen, shutdown)
        .await
}

#[cfg(test)]
mod tests;
