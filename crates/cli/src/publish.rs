//! Publishing a JSON body by hand (to inject an event), persistent and confirmed.

use crate::exit::Exit;
use crate::target::{APP_ID, Session, Target, is_not_found};
use anyhow::{Context, bail};
use broker::Outgoing;
use lapin::options::ExchangeDeclareOptions;
use lapin::types::FieldTable;
use lapin::{BasicProperties, ExchangeKind};
use std::time::{SystemTime, UNIX_EPOCH};

/// What to publish and where.
#[derive(Debug, Clone)]
pub struct Publication {
    /// Target exchange ("" is the default exchange).
    pub exchange: String,
    /// Routing key.
    pub routing_key: String,
    /// The JSON body, sent byte for byte.
    pub body: Vec<u8>,
    /// The `type` property.
    pub kind: Option<String>,
    /// The `correlation_id` property.
    pub correlation_id: Option<String>,
    /// The `message_id` property (a new UUID when absent).
    pub message_id: Option<String>,
}

impl Publication {
    /// The message with the wire contract's properties: JSON content type, persistent,
    /// a `message_id`, a timestamp and the CLI's `app_id`.
    ///
    /// # Errors
    /// When the body is not JSON.
    pub fn outgoing(&self) -> anyhow::Result<Outgoing> {
        if let Err(err) = serde_json::from_slice::<serde::de::IgnoredAny>(&self.body) {
            bail!("the body is not valid JSON: {err}");
        }
        let message_id = self
            .message_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(2)
            .with_message_id(message_id.as_str().into())
            .with_timestamp(timestamp)
            .with_app_id(APP_ID.into())
            .with_headers(FieldTable::default());
        if let Some(kind) = &self.kind {
            properties = properties.with_type(kind.as_str().into());
        }
        if let Some(correlation_id) = &self.correlation_id {
            properties = properties.with_correlation_id(correlation_id.as_str().into());
        }
        Ok(Outgoing {
            exchange: self.exchange.clone(),
            routing_key: self.routing_key.clone(),
            body: self.body.clone(),
            properties,
        })
    }
}

/// Publishes `manual` (mandatory, confirmed); returns its `message_id`.
///
/// # Errors
/// When the body is not JSON, the exchange does not exist, no queue is bound for it, or the
/// broker does not confirm it.
pub async fn publish(target: &Target, manual: &Publication) -> anyhow::Result<String> {
    let message = manual.outgoing()?;
    if !manual.exchange.is_empty() {
        ensure_exchange(target, &manual.exchange).await?;
    }
    let id = message.message_id().unwrap_or_default().to_owned();
    let publisher = target.publisher()?;
    let result = publisher.publish(&message).await;
    publisher.close().await;
    result.with_context(|| {
        format!(
            "could not publish to exchange '{}' with routing key '{}'",
            manual.exchange, manual.routing_key
        )
    })?;
    Ok(id)
}

/// Fails fast and clearly on a missing exchange (the publisher would retry the closed channel).
async fn ensure_exchange(target: &Target, exchange: &str) -> anyhow::Result<()> {
    let session = Session::open(target).await?;
    let passive = ExchangeDeclareOptions {
        passive: true,
        ..ExchangeDeclareOptions::default()
    };
    let declared = session
        .channel
        .exchange_declare(
            exchange.into(),
            ExchangeKind::Direct,
            passive,
            FieldTable::default(),
        )
        .await;
    session.close().await;
    match declared {
        Ok(()) => Ok(()),
        Err(err) if is_not_found(&err) => Err(Exit::not_found(format!(
            "there is no exchange '{exchange}' in vhost '{}'",
            target.vhost
        ))
        .into()),
        Err(err) => Err(err).with_context(|| format!("cannot inspect exchange '{exchange}'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manual(body: &str) -> Publication {
        Publication {
            exchange: "orders".into(),
            routing_key: "order.created".into(),
            body: body.as_bytes().to_vec(),
            kind: Some("order.created".into()),
            correlation_id: None,
            message_id: None,
        }
    }

    #[test]
    fn a_json_body_gets_the_wire_contract_properties() {
        let out = manual(r#"{"order_id":"o-1"}"#).outgoing().unwrap();
        let p = &out.properties;
        assert_eq!(
            p.content_type().as_ref().map(|c| c.as_str()),
            Some("application/json")
        );
        assert_eq!(*p.delivery_mode(), Some(2));
        assert_eq!(p.kind().as_ref().map(|k| k.as_str()), Some("order.created"));
        assert!(uuid::Uuid::parse_str(out.message_id().unwrap()).is_ok());
        assert_eq!(out.body, br#"{"order_id":"o-1"}"#);
    }

    #[test]
    fn a_body_that_is_not_json_is_refused() {
        let err = manual("not json").outgoing().unwrap_err();
        assert!(err.to_string().contains("not valid JSON"), "{err}");
    }
}
