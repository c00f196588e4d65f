//! Reading queues as a test asserts on them: counts, and taking messages with all their headers.

use lapin::options::{BasicAckOptions, BasicGetOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

/// A message taken from a queue.
#[derive(Debug, Clone)]
pub struct Taken {
    /// Body bytes as stored.
    pub body: Vec<u8>,
    /// Properties, headers included.
    pub properties: BasicProperties,
    /// Routing key it was delivered with.
    pub routing_key: String,
}

impl Taken {
    /// A header as text.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<String> {
        let table = self.properties.headers().as_ref()?;
        match table.inner().get(name)? {
            lapin::types::AMQPValue::LongString(s) => {
                Some(String::from_utf8_lossy(s.as_bytes()).into_owned())
            }
            lapin::types::AMQPValue::ShortString(s) => Some(s.to_string()),
            other => Some(format!("{other:?}")),
        }
    }

    /// A header as an integer.
    #[must_use]
    pub fn header_int(&self, name: &str) -> Option<i64> {
        let table = self.properties.headers().as_ref()?;
        match table.inner().get(name)? {
            lapin::types::AMQPValue::LongLongInt(v) => Some(*v),
            lapin::types::AMQPValue::LongInt(v) => Some((*v).into()),
            lapin::types::AMQPValue::LongString(s) => {
                String::from_utf8_lossy(s.as_bytes()).parse().ok()
            }
            _ => None,
        }
    }
}

/// A connection and channel for inspecting one vhost.
#[derive(Debug)]
pub struct Inspector {
    connection: Connection,
    channel: Channel,
}

impl Inspector {
    /// Connects to `url`.
    ///
    /// # Errors
    /// When the broker cannot be reached.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let connection = Connection::connect(
            url,
            ConnectionProperties::default().with_connection_name("test-inspector".into()),
        )
        .await?;
        let channel = connection.create_channel().await?;
        Ok(Self {
            connection,
            channel,
        })
    }

    /// The channel, for publishing raw test input.
    #[must_use]
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// Messages ready in `queue` (0 when it does not exist yet).
    ///
    /// # Errors
    /// When the connection fails.
    pub async fn count(&mut self, queue: &str) -> anyhow::Result<u32> {
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        match self
            .channel
            .queue_declare(queue.into(), passive, FieldTable::default())
            .await
        {
            Ok(q) => Ok(q.message_count()),
            Err(_) => {
                // A passive declare of a missing queue closes the channel; open a new one.
                self.channel = self.connection.create_channel().await?;
                Ok(0)
            }
        }
    }

    /// Takes (gets and acks) every message now in `queue`.
    ///
    /// # Errors
    /// When the connection fails.
    pub async fn take_all(&self, queue: &str) -> anyhow::Result<Vec<Taken>> {
        let mut taken = Vec::new();
        while let Some(message) = self
            .channel
            .basic_get(queue.into(), BasicGetOptions::default())
            .await?
        {
            let delivery = message.delivery;
            delivery.acker.ack(BasicAckOptions::default()).await?;
            taken.push(Taken {
                body: delivery.data,
                properties: delivery.properties,
                routing_key: delivery.routing_key.to_string(),
            });
        }
        Ok(taken)
    }
}
