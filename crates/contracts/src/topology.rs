//! The whole system's topology: every worker declares all of it, so no event is unroutable
//! whichever worker starts first.

use crate::names::{ORDER_PAID_EXCHANGE, ORDERS_EXCHANGE, queues};
use broker::{ExchangeType, QueueSpec, RetryPolicy, Topology};

/// Routing of each consumer queue: (queue, exchange, routing key).
pub const BINDINGS: [(&str, &str, &str); 11] = [
    (
        queues::PAYMENT_ORDER_CREATED,
        ORDERS_EXCHANGE,
        "order.created",
    ),
    (
        queues::PAYMENT_ORDER_CANCELLED,
        ORDERS_EXCHANGE,
        "order.cancelled",
    ),
    (
        queues::STOCK_ORDER_CREATED,
        ORDERS_EXCHANGE,
        "order.created",
    ),
    (queues::STOCK_ORDER_PAID, ORDER_PAID_EXCHANGE, ""),
    (
        queues::STOCK_ORDER_CANCELLED,
        ORDERS_EXCHANGE,
        "order.cancelled",
    ),
    (
        queues::ORDER_ORDER_CREATED,
        ORDERS_EXCHANGE,
        "order.created",
    ),
    (queues::ORDER_ORDER_PAID, ORDER_PAID_EXCHANGE, ""),
    (
        queues::ORDER_STOCK_RESERVED,
        ORDERS_EXCHANGE,
        "stock.reserved",
    ),
    (
        queues::ORDER_STOCK_REJECTED,
        ORDERS_EXCHANGE,
        "stock.rejected",
    ),
    (
        queues::ORDER_PAYMENT_FAILED,
        ORDERS_EXCHANGE,
        "payment.failed",
    ),
    (
        queues::ORDER_PAYMENT_REFUNDED,
        ORDERS_EXCHANGE,
        "payment.refunded",
    ),
];

/// The spec of consumer queue `name` with retry policy `retry`.
///
/// # Panics
/// When `name` is not one of [`queues::ALL`].
#[must_use]
pub fn queue(name: &str, retry: &RetryPolicy) -> QueueSpec {
    let (_, exchange, key) = BINDINGS
        .iter()
        .find(|(queue, _, _)| *queue == name)
        .unwrap_or_else(|| panic!("unknown consumer queue {name}"));
    QueueSpec::new(name)
        .bind(*exchange, *key)
        .with_retry(retry.clone())
}

/// Every exchange and consumer queue of the system, with one retry policy.
#[must_use]
pub fn system(retry: &RetryPolicy) -> Topology {
    BINDINGS.iter().fold(
        Topology::default()
            .exchange(ORDERS_EXCHANGE, ExchangeType::Direct)
            .exchange(ORDER_PAID_EXCHANGE, ExchangeType::Fanout),
        |topology, (name, _, _)| topology.queue(queue(name, retry)),
    )
}
