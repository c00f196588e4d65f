//! What the examples (this package's `[[example]]` targets) share: the broker option, order lines
//! given as `SKU:QTY:PRICE_CENTS`, building an `order.created` and publishing it with confirms.

pub mod soak;

use anyhow::Context as _;
use broker::{BrokerConfig, BrokerError, Outgoing, Publisher};
use contracts::{LineItem, OrderCreated};
use std::time::Duration;

/// The broker a local setup runs (`docs/design.md` §4).
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// The `app_id` stamped on what the examples publish.
pub const APP_ID: &str = "orderflow-examples";

/// Where to look at dead letters, printed by the examples.
pub const MANAGEMENT_UI: &str = "http://localhost:15672";

/// Which broker to publish to.
#[derive(Debug, Clone, clap::Args)]
pub struct BrokerArgs {
    /// Broker URL, including the vhost.
    #[arg(long, env = "AMQP_URL", default_value = DEFAULT_AMQP_URL, hide_env_values = true)]
    pub amqp_url: String,
}

impl BrokerArgs {
    /// A confirmed publisher that gives up after 5 s without a broker (an example should not
    /// hang for the library's default 30 s).
    ///
    /// # Errors
    /// When the URL cannot be used.
    pub fn publisher(&self) -> anyhow::Result<Publisher> {
        let config = BrokerConfig::new(&self.amqp_url, APP_ID)
            .with_publish_retry_for(Duration::from_secs(5));
        Publisher::new(&config).with_context(|| format!("broker URL {}", self.amqp_url))
    }
}

/// Parses an order line `SKU:QTY:PRICE_CENTS`, e.g. `SKU-1:2:1250` (the SKU may contain `:`).
///
/// # Errors
/// A message naming the part that is missing or not a number.
pub fn parse_item(text: &str) -> Result<LineItem, String> {
    let mut parts = text.rsplitn(3, ':');
    let (Some(price), Some(quantity), Some(sku)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("'{text}': expected SKU:QTY:PRICE_CENTS"));
    };
    if sku.is_empty() {
        return Err(format!("'{text}': the SKU is empty"));
    }
    let quantity: u32 = quantity
        .parse()
        .ok()
        .filter(|q| *q >= 1)
        .ok_or_else(|| format!("'{text}': QTY must be a whole number ≥ 1"))?;
    let unit_price_cents = price
        .parse()
        .map_err(|_| format!("'{text}': PRICE_CENTS must be a whole number of cents"))?;
    Ok(LineItem {
        sku: sku.to_owned(),
        quantity,
        unit_price_cents,
    })
}

/// A new `order.created` with a fresh order id, checked like `POST /orders` checks a request.
///
/// # Errors
/// The first field that breaks the contract.
pub fn new_order(
    customer_id: &str,
    items: Vec<LineItem>,
    currency: &str,
    payment_token: Option<String>,
) -> anyhow::Result<OrderCreated> {
    Ok(OrderCreated::new(
        customer_id,
        items,
        currency,
        payment_token,
    )?)
}

/// The message for `order`, with the deterministic `message_id` of its `order.created` fact
/// (as the order worker's outbox relay sends it).
///
/// # Errors
/// When the event does not serialize.
pub fn order_message(order: &OrderCreated) -> anyhow::Result<Outgoing> {
    Ok(contracts::outgoing(order, APP_ID)?)
}

/// Publishes `message` and waits for its confirm; when the topology is missing, says what to start.
///
/// # Errors
/// When the broker is unreachable, refuses the message, or no queue is bound to its route.
pub async fn publish(publisher: &Publisher, message: &Outgoing) -> anyhow::Result<()> {
    let result = publisher.publish(message).await;
    let hint = match &result {
        Err(BrokerError::Unroutable { .. }) => "no consumer queue is bound yet",
        Err(err) if err.to_string().contains("NOT_FOUND - no exchange") => {
            "the exchange does not exist yet"
        }
        _ => {
            return result.with_context(|| {
                format!(
                    "publishing to exchange '{}' with routing key '{}'",
                    message.exchange, message.routing_key
                )
            });
        }
    };
    result.with_context(|| {
        format!(
            "{hint}: start the workers first (each one declares the whole topology), \
             with `deploy/run.sh` or `docker compose -f deploy/compose.yaml up -d`"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_items_and_names_the_bad_part() {
        let item = parse_item("SKU-1:2:1250").unwrap();
        assert_eq!(
            (item.sku.as_str(), item.quantity, item.unit_price_cents),
            ("SKU-1", 2, 1250)
        );
        assert_eq!(parse_item("a:b:3:4").unwrap().sku, "a:b");
        assert!(
            parse_item("SKU-1:2")
                .unwrap_err()
                .contains("SKU:QTY:PRICE_CENTS")
        );
        assert!(parse_item("SKU-1:0:10").unwrap_err().contains("QTY"));
        assert!(
            parse_item("SKU-1:1:1.5")
                .unwrap_err()
                .contains("PRICE_CENTS")
        );
        assert!(parse_item(":1:1").unwrap_err().contains("SKU"));
    }

    #[test]
    fn total_is_the_sum_of_the_lines() {
        let items = vec![
            parse_item("SKU-1:2:1250").unwrap(),
            parse_item("SKU-2:1:99").unwrap(),
        ];
        let order = new_order("c-42", items, "USD", None).unwrap();
        assert_eq!(order.total_cents, 2599);
        let huge = vec![parse_item(&format!("X:2:{}", u64::MAX)).unwrap()];
        assert!(new_order("c", huge, "USD", None).is_err());
        assert!(new_order("c", vec![], "USD", None).is_err());
    }

    #[test]
    fn message_follows_the_wire_contract() {
        let order = new_order(
            "c-42",
            vec![parse_item("SKU-1:1:1250").unwrap()],
            "USD",
            None,
        )
        .unwrap();
        let message = order_message(&order).unwrap();
        assert_eq!(
            (message.exchange.as_str(), message.routing_key.as_str()),
            ("orders", "order.created")
        );
        assert_eq!(
            message.message_id(),
            Some(contracts::ids::message_id("order.created", &order.order_id.to_string()).as_str())
        );
        let body: OrderCreated = serde_json::from_slice(&message.body).unwrap();
        assert_eq!(
            body,
            OrderCreated {
                created_at: body.created_at,
                ..order
            }
        );
    }
}
