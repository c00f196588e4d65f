//! What a handler is and how it says that a message failed: for now, or for good.

use crate::message::Message;
use std::future::Future;

/// A boxed error of any type.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a handler did not succeed. An unclassified error (via `?`) is retryable.
#[derive(Debug)]
pub enum HandlerError {
    /// May succeed later: the message goes to the next retry tier (or, past the maximum, the DLQ).
    Retry(BoxError),
    /// Can never succeed: the message goes straight to the DLQ.
    Reject(BoxError),
    /// A dependency (a store, a provider) is down: the message did not fail. The runtime holds
    /// the delivery, pauses its consumer and runs the handler again once the dependency answers,
    /// burning neither a retry nor a delivery count.
    Unavailable(BoxError),
}

impl HandlerError {
    /// A retryable failure.
    pub fn retry(error: impl Into<BoxError>) -> Self {
        Self::Retry(error.into())
    }

    /// A permanent failure.
    pub fn reject(error: impl Into<BoxError>) -> Self {
        Self::Reject(error.into())
    }

    /// A dependency outage (see [`HandlerError::Unavailable`]).
    pub fn unavailable(error: impl Into<BoxError>) -> Self {
        Self::Unavailable(error.into())
    }

    /// True for [`HandlerError::Retry`].
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retry(_))
    }
}

impl std::fmt::Display for HandlerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Retry(err) | Self::Reject(err) | Self::Unavailable(err) => write!(f, "{err}"),
        }
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for HandlerError {
    fn from(error: E) -> Self {
        Self::Retry(Box::new(error))
    }
}

/// Business logic for one event type: returns, never acks.
pub trait Handler<E>: Send + Sync + 'static {
    /// Handles one message.
    fn handle(&self, message: Message<E>) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

impl<E, F, Fut> Handler<E> for F
where
    E: Send + 'static,
    F: Fn(Message<E>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send,
{
    fn handle(&self, message: Message<E>) -> impl Future<Output = Result<(), HandlerError>> + Send {
        self(message)
    }
}
