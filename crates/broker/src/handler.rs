//! What a handler is and how it says that a message failed: for now, or for good, and under
//! which error type (the `error-type` header that groups dead letters).

use crate::failure;
use crate::message::Message;
use std::borrow::Cow;
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

    /// Names the failure with a stable error type (e.g. `provider-timeout`, `invalid-order`),
    /// written to the `error-type` header and hashed into `error-fingerprint`, so dead letters of
    /// the same failure group together whatever order they belong to. Without it the type is
    /// the library's: `retry`, `reject` or `unavailable`.
    #[must_use]
    pub fn with_type(self, name: impl Into<Cow<'static, str>>) -> Self {
        let typed = |error: BoxError| -> BoxError {
            Box::new(Typed {
                name: name.into(),
                error,
            })
        };
        match self {
            Self::Retry(error) => Self::Retry(typed(error)),
            Self::Reject(error) => Self::Reject(typed(error)),
            Self::Unavailable(error) => Self::Unavailable(typed(error)),
        }
    }

    /// The error type: the handler's (see [`HandlerError::with_type`]) or the library's default.
    #[must_use]
    pub fn error_type(&self) -> &str {
        match self.boxed().downcast_ref::<Typed>() {
            Some(typed) => &typed.name,
            None => match self {
                Self::Retry(_) => failure::RETRY,
                Self::Reject(_) => failure::REJECT,
                Self::Unavailable(_) => failure::UNAVAILABLE,
            },
        }
    }

    /// The error the handler gave, without the type it was named with.
    #[must_use]
    pub fn error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        let error = self.boxed();
        match error.downcast_ref::<Typed>() {
            Some(typed) => &*typed.error,
            None => &**error,
        }
    }

    fn boxed(&self) -> &BoxError {
        let (Self::Retry(error) | Self::Reject(error) | Self::Unavailable(error)) = self;
        error
    }

    /// True for [`HandlerError::Retry`].
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retry(_))
    }
}

/// An error named with an error type; it reads as the error it wraps, so the type never shows
/// in messages or cause chains.
struct Typed {
    name: Cow<'static, str>,
    error: BoxError,
}

impl std::fmt::Debug for Typed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.error, f)
    }
}

impl std::fmt::Display for Typed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.error, f)
    }
}

impl std::error::Error for Typed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_type_is_the_handlers_or_the_librarys_and_never_changes_the_message() {
        assert_eq!(HandlerError::retry("x").error_type(), "retry");
        assert_eq!(HandlerError::reject("x").error_type(), "reject");
        assert_eq!(HandlerError::unavailable("x").error_type(), "unavailable");
        let io: HandlerError = std::io::Error::other("disk").into();
        assert_eq!(io.error_type(), "retry");
        let typed = HandlerError::reject("card expired").with_type("card-expired");
        assert_eq!(typed.error_type(), "card-expired");
        assert_eq!(typed.to_string(), "card expired");
        assert_eq!(typed.error().to_string(), "card expired");
        assert!(!typed.is_retryable());
        let renamed = HandlerError::retry("x").with_type("a").with_type("b");
        assert_eq!(renamed.error_type(), "b");
    }
}
