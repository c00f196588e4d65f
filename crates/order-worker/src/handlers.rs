//! The order worker's handlers: each reported fact moves the order towards `completed` or
//! `cancelled`. Orders published straight to the exchange (by the examples or another system)
//! are adopted from their `order.created`. A fact about an order this worker does not know yet
//! is retried (its `order.created` may still be on its way) and, if the order never shows up,
//! dead-lettered as `retries-exhausted` for an operator to see — never dropped.

use crate::store::{Applied, Change, OrderStore};
use broker::{HandlerError, Message};
use contracts::{
    OrderCreated, OrderPaid, PaymentFailed, PaymentRefunded, StockRejected, StockReserved,
};
use service::inbox::Claim;
use std::sync::Arc;
use tokio::sync::Notify;
use uuid::Uuid;

/// An event that reports a fact about an order.
pub trait Fact: Send + Sync + 'static {
    fn order_id(&self) -> Uuid;
    /// The change to the order.
    fn change(&self) -> Change;
}

impl Fact for StockReserved {
    fn order_id(&self) -> Uuid {
        self.order_id
    }
    fn change(&self) -> Change {
        Change::StockReserved
    }
}

impl Fact for OrderPaid {
    fn order_id(&self) -> Uuid {
        self.order_id
    }
    fn change(&self) -> Change {
        Change::Paid
    }
}

impl Fact for PaymentRefunded {
    fn order_id(&self) -> Uuid {
        self.order_id
    }
    fn change(&self) -> Change {
        Change::Refunded
    }
}

impl Fact for StockRejected {
    fn order_id(&self) -> Uuid {
        self.order_id
    }
    fn change(&self) -> Change {
        Change::Cancel(self.reason.clone())
    }
}

impl Fact for PaymentFailed {
    fn order_id(&self) -> Uuid {
        self.order_id
    }
    fn change(&self) -> Change {
        Change::Cancel("payment_declined".to_owned())
    }
}

/// Records facts on orders; wakes the outbox relay when a change produced an event.
#[derive(Debug, Clone)]
pub struct ApplyFact {
    pub store: OrderStore,
    /// The relay's wake-up call.
    pub wake: Arc<Notify>,
}

impl<E: Fact> broker::Handler<E> for ApplyFact {
    async fn handle(&self, message: Message<E>) -> Result<(), HandlerError> {
        let order_id = message.event.order_id();
        let meta = &message.meta;
        match self
            .store
            .apply(
                order_id,
                &message.event.change(),
                Claim::for_order(
                    meta.message_id.as_deref(),
                    &meta.queue,
                    &order_id.to_string(),
                ),
            )
            .await?
        {
            Applied::Done => Ok(()),
            Applied::DoneWithEvent => {
                self.wake.notify_one();
                Ok(())
            }
            Applied::UnknownOrder => Err(HandlerError::retry(format!(
                "order {order_id} is not known (yet)"
            ))
            .with_type("unknown-order")),
        }
    }
}

/// Adopts orders published straight to the exchange; orders from the API are already stored.
/// An order that breaks the contract (see [`OrderCreated::validate`]) is rejected to the DLQ.
#[derive(Debug, Clone)]
pub struct Adopt {
    pub store: OrderStore,
}

impl broker::Handler<OrderCreated> for Adopt {
    async fn handle(&self, message: Message<OrderCreated>) -> Result<(), HandlerError> {
        // Checked like an API request: an order that breaks the contract is never adopted.
        message
            .event
            .validate()
            .map_err(contracts::InvalidField::into_rejection)?;
        // Our own outbox's orders are stored already: skip the write.
        if message.meta.app_id.as_deref() == Some(crate::APP_ID) {
            return Ok(());
        }
        if self.store.adopt(&message.event).await? {
            tracing::info!(order_id = %message.event.order_id, "adopted an order published outside the API");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
