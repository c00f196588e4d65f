//! Names on the wire: exchanges, routing keys and consumer queues.

/// Direct exchange for `order.created` and the saga's other events.
pub const ORDERS_EXCHANGE: &str = "orders";
/// Fanout exchange for `order.paid`.
pub const ORDER_PAID_EXCHANGE: &str = "order.paid";
/// The dead-letter exchange (owned by the broker library).
pub const DEAD_LETTER_EXCHANGE: &str = broker::topology::DEAD_LETTER_EXCHANGE;

/// The worker (`app_id`) that publishes fact `event_type`; `None` for `order.created`, which
/// systems outside the order worker publish too (and which is validated like an API request).
#[must_use]
pub fn publisher_of(event_type: &str) -> Option<&'static str> {
    match event_type {
        "order.cancelled" => Some("order-worker"),
        "order.paid" | "payment.failed" | "payment.refunded" => Some("payment-worker"),
        "stock.reserved" | "stock.rejected" => Some("stock-worker"),
        _ => None,
    }
}

/// Consumer queues, `<worker>.<event>`.
pub mod queues {
    /// Payment worker: charges new orders.
    pub const PAYMENT_ORDER_CREATED: &str = "payment.order-created";
    /// Payment worker: refunds cancelled orders.
    pub const PAYMENT_ORDER_CANCELLED: &str = "payment.order-cancelled";
    /// Stock worker: reserves new orders.
    pub const STOCK_ORDER_CREATED: &str = "stock.order-created";
    /// Stock worker: commits paid reservations.
    pub const STOCK_ORDER_PAID: &str = "stock.order-paid";
    /// Stock worker: releases cancelled reservations.
    pub const STOCK_ORDER_CANCELLED: &str = "stock.order-cancelled";
    /// Order worker: adopts orders published straight to the exchange (not through its API).
    pub const ORDER_ORDER_CREATED: &str = "order.order-created";
    /// Order worker: marks orders paid.
    pub const ORDER_ORDER_PAID: &str = "order.order-paid";
    /// Order worker: records reservations.
    pub const ORDER_STOCK_RESERVED: &str = "order.stock-reserved";
    /// Order worker: cancels orders whose stock was refused.
    pub const ORDER_STOCK_REJECTED: &str = "order.stock-rejected";
    /// Order worker: cancels orders whose payment was declined.
    pub const ORDER_PAYMENT_FAILED: &str = "order.payment-failed";
    /// Order worker: records refunds.
    pub const ORDER_PAYMENT_REFUNDED: &str = "order.payment-refunded";

    /// Every consumer queue of the system.
    pub const ALL: [&str; 11] = [
        PAYMENT_ORDER_CREATED,
        PAYMENT_ORDER_CANCELLED,
        STOCK_ORDER_CREATED,
        STOCK_ORDER_PAID,
        STOCK_ORDER_CANCELLED,
        ORDER_ORDER_CREATED,
        ORDER_ORDER_PAID,
        ORDER_STOCK_RESERVED,
        ORDER_STOCK_REJECTED,
        ORDER_PAYMENT_FAILED,
        ORDER_PAYMENT_REFUNDED,
    ];
}
