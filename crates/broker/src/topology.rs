//! The broker objects the library relies on, described once and declared idempotently; the only
//! place that builds queue names.

use crate::error::TopologyError;
use crate::naming::Naming;
use crate::retry::RetryPolicy;
use crate::version::BrokerVersion;
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, ExchangeKind};

/// The exchange dead letters are published to, routed by their source queue's name, unless a
/// queue names another ([`QueueSpec::with_dead_letter_exchange`]).
pub const DEAD_LETTER_EXCHANGE: &str = "orders.dlx";

pub use crate::naming::{DEAD_LETTER_SUFFIX, RETRY_INFIX};

/// An exchange's routing type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeType {
    /// Routes by exact routing key.
    Direct,
    /// Copies to every bound queue.
    Fanout,
    /// Routes by routing-key pattern.
    Topic,
}

impl From<ExchangeType> for ExchangeKind {
    fn from(kind: ExchangeType) -> Self {
        match kind {
            ExchangeType::Direct => ExchangeKind::Direct,
            ExchangeType::Fanout => ExchangeKind::Fanout,
            ExchangeType::Topic => ExchangeKind::Topic,
        }
    }
}

/// A durable exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// Its name.
    pub name: String,
    /// Its type.
    pub kind: ExchangeType,
}

/// Which RabbitMQ queue type backs a consumer queue, its retry tiers and its DLQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueType {
    /// Replicated Raft queue with a delivery limit (the default).
    #[default]
    Quorum,
    /// Single-node queue; no delivery limit.
    Classic,
}

/// A binding of a consumer queue to an exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The exchange.
    pub exchange: String,
    /// The routing key ("" for fanout).
    pub routing_key: String,
}

/// A consumer queue `Q` with its retry tiers `Q.retry.N` and dead-letter queue `Q.dlq` (by
/// default; see [`Naming`]).
#[derive(Debug, Clone, PartialEq)]
pub struct QueueSpec {
    /// The queue's name, e.g. `payment.order-created`.
    pub name: String,
    /// Where its messages come from.
    pub bindings: Vec<Binding>,
    /// Quorum or classic.
    pub queue_type: QueueType,
    /// Retry count and delays; one tier per retry.
    pub retry: RetryPolicy,
    /// Quorum only: deliveries (crashes, requeues) after which the broker dead-letters a message.
    pub delivery_limit: Option<u32>,
    /// Where its dead letters are published (and its DLQ bound), routed by the queue's name.
    pub dead_letter_exchange: String,
    /// How its retry tiers, its DLQ and the headers on its copies are named.
    pub naming: Naming,
}

impl QueueSpec {
    /// A quorum queue with the default retry policy and a delivery limit of 10.
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            bindings: Vec::new(),
            queue_type: QueueType::Quorum,
            retry: RetryPolicy::default(),
            delivery_limit: Some(10),
            dead_letter_exchange: DEAD_LETTER_EXCHANGE.to_owned(),
            naming: Naming::default(),
        }
    }

    /// Binds the queue to where events of type `E` are published (its exchange and key).
    #[must_use]
    pub fn bind_event<E: crate::Event>(self) -> Self {
        self.bind(E::EXCHANGE, E::ROUTING_KEY)
    }

    /// Binds the queue to `exchange` with `routing_key`.
    #[must_use]
    pub fn bind(mut self, exchange: impl Into<String>, routing_key: impl Into<String>) -> Self {
        self.bindings.push(Binding {
            exchange: exchange.into(),
            routing_key: routing_key.into(),
        });
        self
    }

    /// Sets the queue type.
    #[must_use]
    pub fn with_queue_type(mut self, queue_type: QueueType) -> Self {
        self.queue_type = queue_type;
        self
    }

    /// Sets the retry policy.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the exchange its dead letters go through (default [`DEAD_LETTER_EXCHANGE`]); queues
    /// may share one, each DLQ is bound to it with its queue's name.
    #[must_use]
    pub fn with_dead_letter_exchange(mut self, exchange: impl Into<String>) -> Self {
        self.dead_letter_exchange = exchange.into();
        self
    }

    /// Sets how its retry tiers, its DLQ and its copies' headers are named (default: the wire
    /// contract, `Q.retry.N`, `Q.dlq`, unprefixed headers).
    #[must_use]
    pub fn with_naming(mut self, naming: Naming) -> Self {
        self.naming = naming;
        self
    }

    /// Name of its retry tier `tier` (1-based).
    #[must_use]
    pub fn retry_queue(&self, tier: u32) -> String {
        self.naming.retry_queue(&self.name, tier)
    }

    /// Name of its dead-letter queue.
    #[must_use]
    pub fn dead_letter_queue(&self) -> String {
        self.naming.dead_letter_queue(&self.name)
    }

    /// Sets (or with `None` removes) the broker-side delivery limit.
    #[must_use]
    pub fn with_delivery_limit(mut self, limit: Option<u32>) -> Self {
        self.delivery_limit = limit;
        self
    }

    /// Arguments of the consumer queue itself: its own delivery limit, or unlimited.
    fn main_arguments(&self, version: BrokerVersion) -> FieldTable {
        let mut args = self.type_arguments();
        put(
            &mut args,
            "x-dead-letter-exchange",
            &self.dead_letter_exchange,
        );
        put(&mut args, "x-dead-letter-routing-key", &self.name);
        self.put_delivery_limit(&mut args, self.delivery_limit, version);
        args
    }

    /// Arguments of the dead-letter queue: never a delivery limit, so peeking at a dead letter
    /// (a get and a requeue) can never make the broker discard it.
    fn dead_letter_arguments(&self, version: BrokerVersion) -> FieldTable {
        let mut args = self.type_arguments();
        self.put_delivery_limit(&mut args, None, version);
        args
    }

    /// Arguments of retry tier `tier`: hold for its delay, then dead-letter straight back to the
    /// queue; unlimited deliveries (nobody consumes a tier).
    fn tier_arguments(&self, tier: u32, version: BrokerVersion) -> FieldTable {
        let mut args = self.type_arguments();
        self.put_delivery_limit(&mut args, None, version);
        let ttl = u64::try_from(self.retry.delay(tier).as_millis()).unwrap_or(u64::MAX);
        args.insert(
            "x-message-ttl".into(),
            AMQPValue::LongLongInt(i64::try_from(ttl).unwrap_or(i64::MAX)),
        );
        put(&mut args, "x-dead-letter-exchange", "");
        put(&mut args, "x-dead-letter-routing-key", &self.name);
        args
    }

    /// A quorum queue's `x-delivery-limit`: `limit`, or (with `None`) whatever means unlimited
    /// on `version` — leaving it out before 4.0, `-1` since (4.0 defaults to 20).
    fn put_delivery_limit(
        &self,
        args: &mut FieldTable,
        limit: Option<u32>,
        version: BrokerVersion,
    ) {
        if self.queue_type != QueueType::Quorum {
            return;
        }
        let value = limit
            .map(i64::from)
            .or_else(|| version.unlimited_deliveries());
        if let Some(value) = value {
            args.insert("x-delivery-limit".into(), AMQPValue::LongLongInt(value));
        }
    }

    /// The queue type, and for quorum queues at-least-once dead-lettering so that the broker's
    /// own dead-lettering (expired retries, the delivery limit) loses nothing.
    fn type_arguments(&self) -> FieldTable {
        let mut args = FieldTable::default();
        match self.queue_type {
            QueueType::Quorum => {
                put(&mut args, "x-queue-type", "quorum");
                put(&mut args, "x-dead-letter-strategy", "at-least-once");
                put(&mut args, "x-overflow", "reject-publish");
            }
            QueueType::Classic => put(&mut args, "x-queue-type", "classic"),
        }
        args
    }
}

fn put(args: &mut FieldTable, key: &str, value: &str) {
    args.insert(
        ShortString::from(key),
        AMQPValue::LongString(LongString::from(value)),
    );
}

/// Everything one application declares: its exchanges and its consumer queues.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Topology {
    /// Exchanges to declare (the dead-letter exchange is added implicitly).
    pub exchanges: Vec<Exchange>,
    /// Consumer queues, each with retry tiers and a DLQ.
    pub queues: Vec<QueueSpec>,
}

impl Topology {
    /// Adds a durable exchange.
    #[must_use]
    pub fn exchange(mut self, name: impl Into<String>, kind: ExchangeType) -> Self {
        self.exchanges.push(Exchange {
            name: name.into(),
            kind,
        });
        self
    }

    /// Adds a consumer queue.
    #[must_use]
    pub fn queue(mut self, queue: QueueSpec) -> Self {
        self.queues.push(queue);
        self
    }

    /// Exchanges it declares, the dead-letter exchange included.
    #[must_use]
    pub fn exchange_count(&self) -> usize {
        self.exchanges.len() + 1
    }

    /// Consumer queues it declares (each with its retry tiers and DLQ).
    #[must_use]
    pub fn queue_count(&self) -> usize {
        self.queues.len()
    }

    /// Merges another description into this one (later duplicates are skipped).
    #[must_use]
    pub fn merge(mut self, other: Topology) -> Self {
        for exchange in other.exchanges {
            if !self.exchanges.contains(&exchange) {
                self.exchanges.push(exchange);
            }
        }
        for queue in other.queues {
            if !self.queues.iter().any(|q| q.name == queue.name) {
                self.queues.push(queue);
            }
        }
        self
    }

    /// The dead-letter exchanges its queues name, each once.
    fn dead_letter_exchanges(&self) -> std::collections::BTreeSet<&str> {
        self.queues
            .iter()
            .map(|queue| queue.dead_letter_exchange.as_str())
            .collect()
    }

    /// Declares every exchange, queue, tier, DLQ and binding with the arguments that fit the
    /// broker's `version` (see [`BrokerVersion`]); safe to repeat.
    ///
    /// # Errors
    /// [`TopologyError::QueueMismatch`] when a queue exists with different arguments (naming
    /// the queue and the argument); [`TopologyError::Declare`] when the broker refuses otherwise.
    pub async fn declare(
        &self,
        channel: &Channel,
        version: BrokerVersion,
    ) -> Result<(), TopologyError> {
        for exchange in self.dead_letter_exchanges() {
            declare_exchange(channel, exchange, ExchangeType::Direct).await?;
        }
        for exchange in &self.exchanges {
            declare_exchange(channel, &exchange.name, exchange.kind).await?;
        }
        for queue in &self.queues {
            declare_queue_set(channel, queue, version).await?;
        }
        Ok(())
    }

    /// Checks, without declaring anything (passive declarations need no permission), that every
    /// exchange and queue exists: what a worker whose user may not configure does instead of
    /// [`Topology::declare`]. Bindings cannot be checked so; `orderflow topology apply` made them.
    ///
    /// # Errors
    /// [`TopologyError::Missing`] naming the first object missing; [`TopologyError::Declare`]
    /// when the connection fails.
    pub async fn verify(&self, connection: &lapin::Connection) -> Result<(), TopologyError> {
        let mut objects: Vec<(&str, String)> = self
            .dead_letter_exchanges()
            .into_iter()
            .map(|exchange| ("exchange", exchange.to_owned()))
            .collect();
        objects.extend(self.exchanges.iter().map(|e| ("exchange", e.name.clone())));
        for queue in &self.queues {
            objects.push(("queue", queue.name.clone()));
            objects.extend(
                (1..=queue.retry.max_retries).map(|tier| ("queue", queue.retry_queue(tier))),
            );
            objects.push(("queue", queue.dead_letter_queue()));
        }
        let channel = open_channel(connection).await?;
        for (kind, object) in objects {
            let object = object.as_str();
            let found = if kind == "exchange" {
                let passive = ExchangeDeclareOptions {
                    passive: true,
                    ..ExchangeDeclareOptions::default()
                };
                channel
                    .exchange_declare(
                        object.into(),
                        ExchangeKind::Direct,
                        passive,
                        FieldTable::default(),
                    )
                    .await
            } else {
                let passive = QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                };
                channel
                    .queue_declare(object.into(), passive, FieldTable::default())
                    .await
                    .map(drop)
            };
            match found {
                Ok(()) => {}
                // NOT_FOUND closes the channel; the first missing object is enough to act on.
                Err(err) if err.is_amqp_soft_error() => {
                    return Err(TopologyError::Missing {
                        missing: format!("{kind} '{object}'"),
                    });
                }
                Err(err) => return Err(TopologyError::from_declare(kind, object, err)),
            }
        }
        let _ = channel.close(200, "topology verified".into()).await;
        Ok(())
    }
}

async fn open_channel(connection: &lapin::Connection) -> Result<Channel, TopologyError> {
    connection
        .create_channel()
        .await
        .map_err(|source| TopologyError::Declare {
            what: "a channel".to_owned(),
            source,
        })
}

async fn declare_queue_set(
    channel: &Channel,
    queue: &QueueSpec,
    version: BrokerVersion,
) -> Result<(), TopologyError> {
    let dlq = queue.dead_letter_queue();
    declare_queue(channel, &dlq, queue.dead_letter_arguments(version)).await?;
    bind(channel, &dlq, &queue.dead_letter_exchange, &queue.name).await?;
    for tier in 1..=queue.retry.max_retries {
        declare_queue(
            channel,
            &queue.retry_queue(tier),
            queue.tier_arguments(tier, version),
        )
        .await?;
    }
    declare_queue(channel, &queue.name, queue.main_arguments(version)).await?;
    for binding in &queue.bindings {
        bind(
            channel,
            &queue.name,
            &binding.exchange,
            &binding.routing_key,
        )
        .await?;
    }
    Ok(())
}

async fn declare_exchange(
    channel: &Channel,
    name: &str,
    kind: ExchangeType,
) -> Result<(), TopologyError> {
    let options = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(name.into(), kind.into(), options, FieldTable::default())
        .await
        .map_err(|err| TopologyError::from_declare("exchange", name, err))
}

async fn declare_queue(
    channel: &Channel,
    name: &str,
    arguments: FieldTable,
) -> Result<(), TopologyError> {
    let options = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(name.into(), options, arguments)
        .await
        .map(drop)
        .map_err(|err| TopologyError::from_declare("queue", name, err))
}

async fn bind(
    channel: &Channel,
    queue: &str,
    exchange: &str,
    routing_key: &str,
) -> Result<(), TopologyError> {
    channel
        .queue_bind(
            queue.into(),
            exchange.into(),
            routing_key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|source| TopologyError::Declare {
            what: format!("binding of '{queue}' to '{exchange}' with key '{routing_key}'"),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Duration;

    fn arg<'a>(args: &'a FieldTable, key: &str) -> &'a AMQPValue {
        args.inner().get(key).expect(key)
    }

    #[test]
    fn tiers_hold_their_delay_and_return_to_the_queue_only() {
        let spec = QueueSpec::new("q").with_retry(
            RetryPolicy::default()
                .with_initial_delay(Duration::from_millis(200))
                .with_multiplier(2.0),
        );
        let tier2 = spec.tier_arguments(2, BrokerVersion::OLDEST_SUPPORTED);
        assert_eq!(arg(&tier2, "x-message-ttl"), &AMQPValue::LongLongInt(400));
        assert_eq!(
            arg(&tier2, "x-dead-letter-exchange"),
            &AMQPValue::LongString("".into())
        );
        assert_eq!(
            arg(&tier2, "x-dead-letter-routing-key"),
            &AMQPValue::LongString("q".into())
        );
    }

    #[test]
    fn quorum_queue_has_delivery_limit_classic_has_none() {
        let v3 = BrokerVersion::OLDEST_SUPPORTED;
        let quorum = QueueSpec::new("q").main_arguments(v3);
        assert_eq!(
            arg(&quorum, "x-delivery-limit"),
            &AMQPValue::LongLongInt(10)
        );
        assert_eq!(
            arg(&quorum, "x-dead-letter-exchange"),
            &AMQPValue::LongString("orders.dlx".into())
        );
        let classic = QueueSpec::new("q")
            .with_queue_type(QueueType::Classic)
            .main_arguments(v3);
        assert!(!classic.contains_key("x-delivery-limit"));
        assert_eq!(
            arg(&classic, "x-queue-type"),
            &AMQPValue::LongString("classic".into())
        );
    }

    /// The `x-delivery-limit` of the main queue, a tier and the DLQ of a quorum queue set, and of
    /// the main queue without a limit.
    fn limits(version: &str) -> [Option<AMQPValue>; 4] {
        let v = BrokerVersion::parse(version).unwrap();
        let spec = QueueSpec::new("q");
        let unlimited = QueueSpec::new("q").with_delivery_limit(None);
        let limit = |args: FieldTable| args.inner().get("x-delivery-limit").cloned();
        [
            limit(spec.main_arguments(v)),
            limit(spec.tier_arguments(1, v)),
            limit(spec.dead_letter_arguments(v)),
            limit(unlimited.main_arguments(v)),
        ]
    }

    #[test]
    fn delivery_limits_per_broker_version() {
        let ten = Some(AMQPValue::LongLongInt(10));
        let unlimited = Some(AMQPValue::LongLongInt(-1));
        for version in ["3.10.8", "3.13.7"] {
            // Absent means unlimited; -1 would be refused.
            assert_eq!(
                limits(version),
                [ten.clone(), None, None, None],
                "{version}"
            );
        }
        for version in ["4.0.5", "4.3.0"] {
            // Absent would mean 20: a DLQ would discard a dead letter peeked at 20 times.
            assert_eq!(
                limits(version),
                [
                    ten.clone(),
                    unlimited.clone(),
                    unlimited.clone(),
                    unlimited.clone()
                ],
                "{version}"
            );
        }
    }
}
