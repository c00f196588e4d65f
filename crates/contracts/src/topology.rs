//! The whole system's topology: every worker declares all of it, so no event is unroutable
//! whichever worker starts first.

use crate::events::{
    OrderCancelled, OrderCreated, OrderPaid, PaymentFailed, PaymentRefunded, StockRejected,
    StockReserved,
};
use crate::names::{ORDER_PAID_EXCHANGE, ORDERS_EXCHANGE, queues};
use broker::{ExchangeType, QueueSpec, RetryPolicy, Topology};

/// Every consumer queue, bound to where its event type is published, with retry policy `retry`.
#[must_use]
pub fn queues(retry: &RetryPolicy) -> [QueueSpec; 11] {
    let consuming = |name: &str| QueueSpec::new(name).with_retry(retry.clone());
    [
        consuming(queues::PAYMENT_ORDER_CREATED).bind_event::<OrderCreated>(),
        consuming(queues::PAYMENT_ORDER_CANCELLED).bind_event::<OrderCancelled>(),
        consuming(queues::STOCK_ORDER_CREATED).bind_event::<OrderCreated>(),
        consuming(queues::STOCK_ORDER_PAID).bind_event::<OrderPaid>(),
        consuming(queues::STOCK_ORDER_CANCELLED).bind_event::<OrderCancelled>(),
        consuming(queues::ORDER_ORDER_CREATED).bind_event::<OrderCreated>(),
        consuming(queues::ORDER_ORDER_PAID).bind_event::<OrderPaid>(),
        consuming(queues::ORDER_STOCK_RESERVED).bind_event::<StockReserved>(),
        consuming(queues::ORDER_STOCK_REJECTED).bind_event::<StockRejected>(),
        consuming(queues::ORDER_PAYMENT_FAILED).bind_event::<PaymentFailed>(),
        consuming(queues::ORDER_PAYMENT_REFUNDED).bind_event::<PaymentRefunded>(),
    ]
}

/// The spec of consumer queue `name` with retry policy `retry`.
///
/// # Panics
/// When `name` is not one of [`queues::ALL`].
#[must_use]
pub fn queue(name: &str, retry: &RetryPolicy) -> QueueSpec {
    queues(retry)
        .into_iter()
        .find(|queue| queue.name == name)
        .unwrap_or_else(|| panic!("unknown consumer queue {name}"))
}

/// Every exchange and consumer queue of the system, with one retry policy.
#[must_use]
pub fn system(retry: &RetryPolicy) -> Topology {
    queues(retry).into_iter().fold(
        Topology::default()
            .exchange(ORDERS_EXCHANGE, ExchangeType::Direct)
            .exchange(ORDER_PAID_EXCHANGE, ExchangeType::Fanout),
        Topology::queue,
    )
}
