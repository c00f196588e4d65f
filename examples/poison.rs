//! Publishes a message that ends in a dead-letter queue, to try the DLQ tooling:
//! `--kind malformed` sends an `order.created` whose body is truncated JSON (every consumer
//! dead-letters it at once as `malformed`: instant with any settings); `--kind outage` sends a
//! valid order with the token `tok_outage`, whose payment fails transiently until the retries
//! run out: seconds with `deploy/run.sh --demo`, about 13 minutes with the default retries.
//!
//! ```sh
//! cargo run -p orderflow-examples --example poison -- --kind malformed
//! ```

use broker::Outgoing;
use clap::{Parser, ValueEnum};
use contracts::{LineItem, OrderCreated};
use orderflow_examples::{APP_ID, BrokerArgs, MANAGEMENT_UI, new_order, order_message, publish};

/// Publish a poison message.
#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    broker: BrokerArgs,
    /// What kind of poison.
    #[arg(long, value_enum)]
    kind: Kind,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Kind {
    /// `order.created` with a body that is not valid JSON: dead-lettered at once.
    Malformed,
    /// A valid order whose payment always fails transiently (token `tok_outage`): dead-lettered
    /// when the retries run out (seconds with `deploy/run.sh --demo`).
    Outage,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let order = new_order(
        "c-poison",
        vec![LineItem {
            sku: "SKU-1".to_owned(),
            quantity: 1,
            unit_price_cents: 1250,
        }],
        "USD",
        matches!(args.kind, Kind::Outage).then(|| "tok_outage".to_owned()),
    )?;
    let message = match args.kind {
        Kind::Malformed => malformed(&order)?,
        Kind::Outage => order_message(&order)?,
    };
    let publisher = args.broker.publisher()?;
    let result = publish(&publisher, &message).await;
    publisher.close().await;
    result?;

    let message_id = message.message_id().unwrap_or_default();
    match args.kind {
        Kind::Malformed => {
            println!(
                "published a malformed order.created to '{}' with key '{}' (message_id {message_id}, \
                 correlation_id {}, {} bytes of truncated JSON)",
                message.exchange,
                message.routing_key,
                order.order_id,
                message.body.len()
            );
            println!(
                "every consumer of order.created cannot decode it and dead-letters it at once \
                 (error-kind=malformed, error-type=malformed, body intact), e.g. into:"
            );
            println!("  payment.order-created.dlq");
            println!("  stock.order-created.dlq");
            println!("  order.order-created.dlq");
            println!("see the group, then fix the body and send it back:");
            println!("  orderflow dlq groups");
            println!(
                "  orderflow dlq edit payment.order-created --message-id {message_id}   # opens $EDITOR"
            );
        }
        Kind::Outage => {
            println!(
                "published order {} with token tok_outage (message_id {message_id})",
                order.order_id
            );
            println!(
                "payment fails transiently on every attempt and walks through the retry tiers \
                 payment.order-created.retry.1..N: seconds with `deploy/run.sh --demo` (retries \
                 after 0.5 s, 1 s, 2 s), about 13 minutes with the default RETRY_* settings \
                 (`--kind malformed` is instant); then it lands in:"
            );
            println!(
                "  payment.order-created.dlq (error-kind=retries-exhausted, error-type=provider-unavailable)"
            );
            println!(
                "until then the stock worker holds the reservation; replay it and the payment succeeds:"
            );
            println!("  orderflow dlq groups");
            println!(
                "  orderflow dlq show payment.order-created --correlation-id {}",
                order.order_id
            );
            println!("  orderflow dlq replay payment.order-created --message-id {message_id}");
            println!(
                "  curl -s http://127.0.0.1:8081/payments/{}",
                order.order_id
            );
        }
    }
    println!("look at the queues in the management UI: {MANAGEMENT_UI}/#/queues (guest/guest)");
    println!("or with the admin CLI: orderflow dlq list; orderflow dlq show <queue>");
    Ok(())
}

/// A message routed and labelled like `order.created` whose body is cut off mid-JSON.
fn malformed(order: &OrderCreated) -> anyhow::Result<Outgoing> {
    let mut message = Outgoing::event(order, APP_ID)?;
    let truncated = message.body.len() / 2;
    message.body.truncate(truncated);
    Ok(message)
}
