//! The saga ceiling: exactly an approved order's message operations on bare lapin, with no
//! store and no HTTP. The same exchange kinds, bindings and queue declarations as the workers
//! (declared by the library: quorum queues with their dead-letter arguments), their prefetch,
//! and their settling: a delivery that publishes is acked only after its publish is confirmed.
//!
//! Per order: `order.created` is published to a direct exchange bound to three queues (stock,
//! payment, order); stock publishes `stock.reserved` (to the order queue), payment publishes
//! `order.paid` to a fanout bound to two queues (stock, order); the order is done when its
//! order queue has seen both. Three publishes and six deliveries, as in orderflow.

use crate::bare::{self, Finish};
use crate::orders;
use broker::Naming;
use broker::{ExchangeType, QueueSpec, RetryPolicy, Topology};
use contracts::{OrderCreated, OrderPaid, StockReserved};
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicPublishOptions, QueueDeleteOptions};
use lapin::{BasicProperties, Channel, Connection};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;
use uuid::Uuid;

/// The objects of one run, named apart from the system's by a fresh tag.
struct Names {
    orders: String,
    paid: String,
    stock_created: String,
    payment_created: String,
    order_created: String,
    order_reserved: String,
    stock_paid: String,
    order_paid: String,
}

impl Names {
    fn new() -> Self {
        let tag = format!("bench.{}", Uuid::new_v4().simple());
        let name = |suffix: &str| format!("{tag}.{suffix}");
        Self {
            orders: name("orders"),
            paid: name("order.paid"),
            stock_created: name("stock.order-created"),
            payment_created: name("payment.order-created"),
            order_created: name("order.order-created"),
            order_reserved: name("order.stock-reserved"),
            stock_paid: name("stock.order-paid"),
            order_paid: name("order.order-paid"),
        }
    }

    fn queues(&self) -> [&str; 6] {
        [
            &self.stock_created,
            &self.payment_created,
            &self.order_created,
            &self.order_reserved,
            &self.stock_paid,
            &self.order_paid,
        ]
    }

    /// As `contracts::topology::system` declares them, with one retry tier (tiers are off the
    /// hot path).
    fn topology(&self) -> Topology {
        let retry = RetryPolicy::default().with_max_retries(1);
        let queue = |name: &str, exchange: &str, key: &str| {
            QueueSpec::new(name)
                .bind(exchange, key)
                .with_retry(retry.clone())
        };
        Topology::default()
            .exchange(&self.orders, ExchangeType::Direct)
            .exchange(&self.paid, ExchangeType::Fanout)
            .queue(queue(&self.stock_created, &self.orders, "order.created"))
            .queue(queue(&self.payment_created, &self.orders, "order.created"))
            .queue(queue(&self.order_created, &self.orders, "order.created"))
            .queue(queue(&self.order_reserved, &self.orders, "stock.reserved"))
            .queue(queue(&self.stock_paid, &self.paid, ""))
            .queue(queue(&self.order_paid, &self.paid, ""))
    }
}

/// Orders per second through the saga's message operations for `n` orders, and the CPU ms per
/// order of the broker and of this process (the client playing the three workers).
///
/// # Errors
/// When the broker refuses a declaration or the orders do not finish in 10 minutes.
pub async fn ceiling(
    url: &str,
    n: usize,
    prefetch: u16,
    bodies: &Bodies,
) -> anyhow::Result<(f64, BTreeMap<String, f64>)> {
    let names = Names::new();
    let conn = broker::connect(url, &broker::Tls::default(), "orderflow-bench", "ceiling").await?;
    let setup = conn.create_channel().await?;
    let version = broker::detect_version(url)
        .await
        .unwrap_or(broker::BrokerVersion::OLDEST_SUPPORTED);
    names.topology().declare(&setup, version).await?;

    let finish = Finish::new(n);
    let halves: Arc<Mutex<HashMap<String, u8>>> = Arc::default();
    // Stock: order.created → stock.reserved; payment: order.created → order.paid.
    relay(
        &conn,
        &names.stock_created,
        prefetch,
        &names.orders,
        "stock.reserved",
        &bodies.reserved,
    )
    .await?;
    relay(
        &conn,
        &names.payment_created,
        prefetch,
        &names.paid,
        "",
        &bodies.paid,
    )
    .await?;
    // Ack only: the order worker adopting its own order, the stock worker committing.
    for queue in [&names.order_created, &names.stock_paid] {
        sink(&conn, queue, prefetch, |_| {}).await?;
    }
    // The order worker: done once reserved and paid.
    for queue in [&names.order_reserved, &names.order_paid] {
        let (halves, finish) = (halves.clone(), finish.clone());
        sink(&conn, queue, prefetch, move |delivery| {
            let Some(order) = delivery.properties.correlation_id().as_ref() else {
                return;
            };
            let mut halves = halves
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let seen = halves.entry(order.as_str().to_owned()).or_insert(0);
            *seen += 1;
            if *seen == 2 {
                halves.remove(order.as_str());
                finish.one();
            }
        })
        .await?;
    }

    let publish = bare::confirm_channel(&conn).await?;
    let target = bare::Target {
        exchange: &names.orders,
        routing_key: "order.created",
        body: &bodies.created,
    };
    let measured = bare::measure(
        &publish,
        n,
        target,
        || message(&Uuid::new_v4().to_string()),
        &finish,
    )
    .await;
    delete(&setup, &names).await;
    let _ = conn.close(200, "done".into()).await;
    measured
}

/// The bodies the saga's events carry, serialized once.
#[derive(Debug, Clone)]
pub struct Bodies {
    /// `order.created`.
    pub created: Vec<u8>,
    /// `stock.reserved`.
    pub reserved: Vec<u8>,
    /// `order.paid`.
    pub paid: Vec<u8>,
}

impl Bodies {
    /// The events of one approved order of the benchmark's kind.
    ///
    /// # Errors
    /// When an event does not serialize.
    pub fn new() -> anyhow::Result<Self> {
        let order = OrderCreated::new("load", orders::line(), "USD", Some("tok_visa".into()))?;
        let now = OffsetDateTime::now_utc();
        Ok(Self {
            created: serde_json::to_vec(&order)?,
            reserved: serde_json::to_vec(&StockReserved {
                order_id: order.order_id,
                reserved_at: now,
            })?,
            paid: serde_json::to_vec(&OrderPaid {
                order_id: order.order_id,
                payment_id: order.order_id,
                amount_cents: order.total_cents,
                currency: order.currency.clone(),
                paid_at: now,
            })?,
        })
    }
}

/// A message's properties: persistent JSON with the order as correlation id and a fresh id.
fn message(order: &str) -> BasicProperties {
    bare::properties()
        .with_correlation_id(order.into())
        .with_message_id(Uuid::new_v4().to_string().into())
}

/// Consumes `queue`; per delivery, publishes `body` to `exchange`/`key` (same order), waits for
/// the confirm, then acks.
async fn relay(
    conn: &Connection,
    queue: &str,
    prefetch: u16,
    exchange: &str,
    key: &str,
    body: &[u8],
) -> anyhow::Result<()> {
    let (channel, mut consumer) = bare::consume(conn, queue, prefetch).await?;
    let out = bare::confirm_channel(conn).await?;
    let (exchange, key, body) = (exchange.to_owned(), key.to_owned(), body.to_vec());
    tokio::spawn(async move {
        while let Some(Ok(delivery)) = consumer.next().await {
            let (out, exchange, key, body) =
                (out.clone(), exchange.clone(), key.clone(), body.clone());
            tokio::spawn(async move {
                let order = delivery
                    .properties
                    .correlation_id()
                    .as_ref()
                    .map(|id| id.as_str().to_owned())
                    .unwrap_or_default();
                let confirm = out
                    .basic_publish(
                        exchange.as_str().into(),
                        key.as_str().into(),
                        BasicPublishOptions::default(),
                        &body,
                        message(&order),
                    )
                    .await;
                if let Ok(confirm) = confirm
                    && confirm.await.is_ok()
                {
                    let _ = delivery.acker.ack(BasicAckOptions::default()).await;
                }
            });
        }
        drop(channel);
    });
    Ok(())
}

/// Consumes `queue`, calling `seen` with and then acking every delivery.
async fn sink(
    conn: &Connection,
    queue: &str,
    prefetch: u16,
    seen: impl Fn(&Delivery) + Send + 'static,
) -> anyhow::Result<()> {
    let (channel, mut consumer) = bare::consume(conn, queue, prefetch).await?;
    tokio::spawn(async move {
        while let Some(Ok(delivery)) = consumer.next().await {
            seen(&delivery);
            let _ = delivery.acker.ack(BasicAckOptions::default()).await;
        }
        drop(channel);
    });
    Ok(())
}

/// Deletes the run's queues, their retry tier and DLQ, and its exchanges.
async fn delete(setup: &Channel, names: &Names) {
    let naming = Naming::default();
    for queue in names.queues() {
        for name in [
            queue.to_owned(),
            naming.retry_queue(queue, 1),
            naming.dead_letter_queue(queue),
        ] {
            let _ = setup
                .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
    }
    for exchange in [&names.orders, &names.paid] {
        let _ = setup
            .exchange_delete(exchange.as_str().into(), Default::default())
            .await;
    }
}
