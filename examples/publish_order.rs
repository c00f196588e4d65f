//! Publishes `order.created` events straight to the `orders` exchange (with publisher confirms),
//! bypassing the order worker's API and outbox, as another system would. The order worker adopts
//! each order from its `order.created`, so the whole saga runs and `GET /orders/{id}` shows it.
//!
//! ```sh
//! cargo run -p orderflow-examples --example publish_order -- --token tok_declined
//! cargo run -p orderflow-examples --example publish_order -- --item SKU-1:2:1250 --item SKU-3:1:500 --count 10
//! ```
//!
//! Payment tokens of the simulated provider: `tok_visa` (or none) approves, `tok_declined`
//! declines, `tok_transient_<N>` fails N times then approves, `tok_outage` always fails.

use clap::Parser;
use contracts::LineItem;
use orderflow_examples::{BrokerArgs, new_order, order_message, parse_item, publish};

/// Publish orders to the `orders` exchange.
#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    broker: BrokerArgs,
    /// Payment token for the simulated provider (none approves).
    #[arg(long)]
    token: Option<String>,
    /// An order line, SKU:QTY:PRICE_CENTS; repeat for more lines.
    #[arg(long = "item", value_name = "SKU:QTY:PRICE_CENTS", value_parser = parse_item, default_value = "SKU-1:1:1250")]
    items: Vec<LineItem>,
    /// Customer id.
    #[arg(long, default_value = "c-42")]
    customer: String,
    /// ISO 4217 currency code.
    #[arg(long, default_value = "USD")]
    currency: String,
    /// How many orders to publish (each with its own order id).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    count: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let publisher = args.broker.publisher()?;
    let result = async {
        for _ in 0..args.count {
            let order = new_order(
                &args.customer,
                args.items.clone(),
                &args.currency,
                args.token.clone(),
            )?;
            publish(&publisher, &order_message(&order)?).await?;
            println!(
                "published order {} ({} {} cents, token {})",
                order.order_id,
                order.total_cents,
                order.currency,
                order.payment_token.as_deref().unwrap_or("none"),
            );
            println!("  curl -s http://127.0.0.1:8080/orders/{}", order.order_id);
            println!(
                "  curl -s http://127.0.0.1:8081/payments/{}",
                order.order_id
            );
        }
        anyhow::Ok(())
    }
    .await;
    publisher.close().await;
    result
}
