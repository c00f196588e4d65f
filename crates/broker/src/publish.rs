//! The publishing seam: what code that publishes needs from a publisher, so that handlers can be
//! tested with a recording publisher instead of a broker.

use crate::error::BrokerError;
use crate::message::Outgoing;
use crate::publisher::Publisher;
use std::future::Future;

/// Publishes a message and reports once the broker took responsibility for it.
pub trait Publish: Send + Sync + 'static {
    /// The `app_id` stamped on what it publishes.
    fn app_id(&self) -> &str;

    /// Publishes `message` and waits for its confirm.
    ///
    /// # Errors
    /// As [`Publisher::publish`]: the message is not known to be in the broker.
    fn publish(&self, message: &Outgoing) -> impl Future<Output = Result<(), BrokerError>> + Send;
}

impl Publish for Publisher {
    fn app_id(&self) -> &str {
        Publisher::app_id(self)
    }

    fn publish(&self, message: &Outgoing) -> impl Future<Output = Result<(), BrokerError>> + Send {
        Publisher::publish(self, message)
    }
}
