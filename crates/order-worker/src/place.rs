//! Placing an order, for `POST /orders` and gRPC `CreateOrder` alike: the request's own checks,
//! prices from the catalogue, then the order and its `order.created` stored in one transaction.

use crate::api::Api;
use crate::catalogue::Unavailable;
use crate::store::Created;
use crate::validation::{Invalid, NewOrder, ValidOrder};
use uuid::Uuid;

/// A placed order.
#[derive(Debug)]
pub struct Placed {
    pub order_id: Uuid,
    /// The Idempotency-Key was seen with this request: this is its earlier order.
    pub replayed: bool,
}

/// Why an order was not placed.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("{0}")]
    Invalid(Invalid),
    #[error("this idempotency key was already used with a different request")]
    KeyConflict,
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    #[error(transparent)]
    Store(#[from] sqlx::Error),
}

impl From<Invalid> for Refused {
    fn from(invalid: Invalid) -> Self {
        Self::Invalid(invalid)
    }
}

/// Checks `request`, prices it from the catalogue and stores it with its outbox row, once per
/// `idempotency_key`; wakes the relay for a new order.
///
/// # Errors
/// See [`Refused`].
pub async fn place(
    api: &Api,
    request: NewOrder,
    idempotency_key: Option<&str>,
) -> Result<Placed, Refused> {
    request.check()?;
    let prices = api.catalogue.prices(&request.lines()).await?;
    let order: ValidOrder = request.price(&prices)?;
    match api.store.create(&order, idempotency_key).await? {
        Created::New(order_id) => {
            api.wake.notify_one();
            let trace_id = broker::trace::current_trace_id();
            tracing::info!(%order_id, trace_id = trace_id.as_deref().unwrap_or(""), "order placed");
            Ok(Placed {
                order_id,
                replayed: false,
            })
        }
        Created::Replayed(order_id) => Ok(Placed {
            order_id,
            replayed: true,
        }),
        Created::KeyConflict => Err(Refused::KeyConflict),
    }
}
