//! Deterministic message ids: the same fact about the same order always has the same id.

use uuid::Uuid;

/// Namespace of orderflow's v5 message ids.
const NAMESPACE: Uuid = Uuid::from_u128(0x6f72_6465_7266_6c6f_7700_0000_0000_0001);

/// The `message_id` of event `event_type` about order `order_id` (a v5 UUID).
#[must_use]
pub fn message_id(event_type: &str, order_id: &str) -> String {
    Uuid::new_v5(&NAMESPACE, format!("{event_type}/{order_id}").as_bytes()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_fact_same_id_other_fact_other_id() {
        let order = Uuid::new_v4().to_string();
        let other = Uuid::new_v4().to_string();
        assert_eq!(
            message_id("order.paid", &order),
            message_id("order.paid", &order)
        );
        assert_ne!(
            message_id("order.paid", &order),
            message_id("payment.failed", &order)
        );
        assert_ne!(
            message_id("order.paid", &order),
            message_id("order.paid", &other)
        );
    }
}
