//! Messages in both directions: an incoming delivery as a handler sees it, and an outgoing one.

use crate::event::Event;
use crate::headers;
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString};
use std::time::{SystemTime, UNIX_EPOCH};

/// What a handler receives: the decoded event and facts about its delivery.
#[derive(Debug, Clone)]
pub struct Message<E> {
    /// The decoded body.
    pub event: E,
    /// Delivery facts.
    pub meta: Meta,
}

/// Facts about one delivery.
#[derive(Debug, Clone)]
pub struct Meta {
    /// The consumer queue it was delivered from.
    pub queue: String,
    /// The publisher's `message_id` (unique per event; the idempotency key).
    pub message_id: Option<String>,
    /// The `correlation_id` (the order id).
    pub correlation_id: Option<String>,
    /// The publisher's `app_id`.
    pub app_id: Option<String>,
    /// The `user_id` the broker validated: who published this copy.
    pub user_id: Option<String>,
    /// How often it has been retried: 0 on first delivery.
    pub retry_count: u32,
    /// The broker's redelivered flag: set after a crash or requeue.
    pub redelivered: bool,
    /// All headers as received.
    pub headers: FieldTable,
}

#[cfg(feature = "test-util")]
impl<E> Message<E> {
    /// `event` on its first delivery from `queue` with `message_id` and no headers: what the
    /// runtime hands a handler, for calling one in a test (feature `test-util`).
    #[must_use]
    pub fn delivered(event: E, queue: &str, message_id: &str) -> Self {
        Self {
            event,
            meta: Meta {
                queue: queue.to_owned(),
                message_id: Some(message_id.to_owned()),
                correlation_id: None,
                app_id: None,
                user_id: None,
                retry_count: 0,
                redelivered: false,
                headers: FieldTable::default(),
            },
        }
    }
}

/// A message ready to publish: target, body and properties.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Target exchange ("" is the default exchange).
    pub exchange: String,
    /// Routing key.
    pub routing_key: String,
    /// Body bytes, sent as they are.
    pub body: Vec<u8>,
    /// AMQP properties (persistence is forced on publish).
    pub properties: BasicProperties,
}

impl Outgoing {
    /// Serializes `event` with every property of the wire contract and a fresh UUID `message_id`.
    ///
    /// # Errors
    /// When the event does not serialize.
    pub fn event<E: Event>(event: &E, app_id: &str) -> Result<Self, serde_json::Error> {
        Ok(Self::json(
            E::EXCHANGE,
            E::ROUTING_KEY,
            E::TYPE,
            serde_json::to_vec(event)?,
            &event.correlation_id(),
            app_id,
        ))
    }

    /// A JSON body already serialized (e.g. from an outbox), with every property of the wire
    /// contract, and a fresh UUID `message_id`; the publish adds the trace context.
    #[must_use]
    pub fn json(
        exchange: &str,
        routing_key: &str,
        event_type: &str,
        body: Vec<u8>,
        correlation_id: &str,
        app_id: &str,
    ) -> Self {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(2)
            .with_message_id(uuid::Uuid::new_v4().to_string().into())
            .with_correlation_id(correlation_id.into())
            .with_type(event_type.into())
            .with_timestamp(timestamp)
            .with_app_id(app_id.into());
        Self {
            exchange: exchange.to_owned(),
            routing_key: routing_key.to_owned(),
            body,
            properties,
        }
    }

    /// The same message with another body format: `content_type` (e.g. `application/x-protobuf`)
    /// and its `body`, for consumers with a matching [`Decode`](crate::Decode).
    #[must_use]
    pub fn with_body(mut self, content_type: &str, body: Vec<u8>) -> Self {
        self.properties = self.properties.with_content_type(content_type.into());
        self.body = body;
        self
    }

    /// Replaces the `message_id` (e.g. with an outbox row's id, so a re-send is recognised).
    #[must_use]
    pub fn with_message_id(mut self, message_id: &str) -> Self {
        self.properties = self.properties.with_message_id(message_id.into());
        self
    }

    /// Adds or replaces a text header.
    #[must_use]
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        let mut table = self.properties.headers().clone().unwrap_or_default();
        headers::set_text(&mut table, name, value);
        self.properties = self.properties.with_headers(table);
        self
    }

    /// The `message_id`, if set.
    #[must_use]
    pub fn message_id(&self) -> Option<&str> {
        self.properties.message_id().as_ref().map(|id| id.as_str())
    }

    /// The event type (the AMQP `type` property), if set.
    #[must_use]
    pub fn event_type(&self) -> Option<&str> {
        self.properties.kind().as_ref().map(|kind| kind.as_str())
    }

    /// The `correlation_id` (the order id), if set.
    #[must_use]
    pub fn correlation_id(&self) -> Option<&str> {
        self.properties
            .correlation_id()
            .as_ref()
            .map(|id| id.as_str())
    }
}

/// Builds a header table from text pairs.
#[must_use]
pub fn text_headers(pairs: &[(&str, &str)]) -> FieldTable {
    let mut table = FieldTable::default();
    for (name, value) in pairs {
        table.insert(
            (*name).into(),
            AMQPValue::LongString(LongString::from(*value)),
        );
    }
    table
}
