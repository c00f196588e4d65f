//! The stock worker's handlers: reserve on `order.created`, commit on `order.paid`, release on
//! `order.cancelled`. Each announces the state it finds, so a redelivery re-publishes what a
//! crash may have lost (with the same deterministic `message_id`).

use crate::store::{Lines, Reservation, StockStore};
use broker::{HandlerError, Message, Publish};
use contracts::{OrderCancelled, OrderCreated, OrderPaid, StockRejected, StockReserved};
use service::inbox::Claim;
use time::OffsetDateTime;

/// Handles `order.created`.
#[derive(Debug, Clone)]
pub struct Reserve<P> {
    pub store: StockStore,
    /// Publisher for `stock.reserved` / `stock.rejected`.
    pub publisher: P,
}

impl<P: Publish> broker::Handler<OrderCreated> for Reserve<P> {
    async fn handle(&self, message: Message<OrderCreated>) -> Result<(), HandlerError> {
        let order = &message.event;
        // Checked like an API request: nothing is reserved for an order that breaks the contract.
        order
            .validate()
            .map_err(contracts::InvalidField::into_rejection)?;
        let mut lines = Lines::new();
        for item in &order.items {
            *lines.entry(item.sku.clone()).or_default() += i64::from(item.quantity);
        }
        let meta = &message.meta;
        let order_id = order.order_id.to_string();
        let outcome = self
            .store
            .reserve(&order_id, &lines, Claim::of(meta))
            .await?;
        match outcome {
            Reservation::Reserved | Reservation::Committed => {
                let event = StockReserved {
                    order_id: order.order_id,
                    reserved_at: OffsetDateTime::now_utc(),
                };
                contracts::publish(&self.publisher, &event).await?;
            }
            Reservation::Rejected(skus) => {
                tracing::info!(order_id = %order.order_id, ?skus, "out of stock");
                let event = StockRejected {
                    order_id: order.order_id,
                    reason: "out_of_stock".to_owned(),
                    skus,
                    rejected_at: OffsetDateTime::now_utc(),
                };
                contracts::publish(&self.publisher, &event).await?;
            }
            Reservation::Released | Reservation::Cancelled | Reservation::Paid => {}
        }
        Ok(())
    }
}

/// Handles `order.paid`.
#[derive(Debug, Clone)]
pub struct Commit {
    pub store: StockStore,
}

impl broker::Handler<OrderPaid> for Commit {
    async fn handle(&self, message: Message<OrderPaid>) -> Result<(), HandlerError> {
        let meta = &message.meta;
        let order_id = message.event.order_id.to_string();
        // A payment that overtook this worker's `order.created` is recorded, and the reservation
        // sells the units when it comes; rejected or cancelled orders are refunded by the payment
        // worker. Nothing is left to wait for here.
        self.store.commit(&order_id, Claim::of(meta)).await?;
        Ok(())
    }
}

/// Handles `order.cancelled`.
#[derive(Debug, Clone)]
pub struct Release {
    pub store: StockStore,
}

impl broker::Handler<OrderCancelled> for Release {
    async fn handle(&self, message: Message<OrderCancelled>) -> Result<(), HandlerError> {
        let meta = &message.meta;
        let order_id = message.event.order_id.to_string();
        self.store.release(&order_id, Claim::of(meta)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
