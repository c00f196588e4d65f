//! The library's errors, with a predicate that says whether trying again can help.

use std::time::Duration;

/// Everything the broker library can fail with.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The connection or a channel failed (broker gone, network, closed channel).
    #[error("broker connection failed: {0}")]
    Connection(#[from] lapin::Error),
    /// The publisher was closed (the runtime shut down).
    #[error("the publisher is closed")]
    Closed,
    /// The configured URL names no broker.
    #[error("no broker URL given")]
    NoAddress,
    /// A configured address is not an `amqp://` or `amqps://` URL (shown without its password).
    #[error("not an amqp:// or amqps:// URL: {0}")]
    InvalidUrl(String),
    /// A mandatory publish matched no queue.
    #[error(
        "unroutable: no queue is bound to exchange '{exchange}' with routing key '{routing_key}' ({reply})"
    )]
    Unroutable {
        /// Target exchange ("" is the default exchange).
        exchange: String,
        /// Routing key used.
        routing_key: String,
        /// The broker's reply text.
        reply: String,
    },
    /// The broker refused to take responsibility for a publish.
    #[error(
        "the broker nacked the publish to exchange '{exchange}' with routing key '{routing_key}'"
    )]
    Nacked {
        /// Target exchange.
        exchange: String,
        /// Routing key used.
        routing_key: String,
    },
    /// No confirm arrived in time.
    #[error("no publisher confirm within {0:?}")]
    ConfirmTimeout(Duration),
    /// Declaring the topology failed for a reason that retrying will not fix.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// An event could not be serialized.
    #[error("cannot serialize event: {0}")]
    Serialize(#[from] serde_json::Error),
}

impl BrokerError {
    /// True when the failure is in the connection and a retry on a fresh one may succeed.
    #[must_use]
    pub fn is_recoverable(&self) -> bool {
        match self {
            // A channel-level (soft) error such as a missing exchange fails again on a new channel.
            Self::Connection(err) => !err.is_amqp_soft_error(),
            Self::ConfirmTimeout(_) => true,
            Self::Topology(err) => err.is_recoverable(),
            Self::Unroutable { .. }
            | Self::Nacked { .. }
            | Self::Serialize(_)
            | Self::Closed
            | Self::NoAddress
            | Self::InvalidUrl(_) => false,
        }
    }
}

/// A declaration the broker refused.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// A queue exists with arguments other than ours; the broker will not change them.
    #[error(
        "queue '{queue}' already exists with a different '{argument}' ({detail}); delete it or align the declaration"
    )]
    QueueMismatch {
        /// The queue.
        queue: String,
        /// The argument that differs, e.g. `x-queue-type`.
        argument: String,
        /// The broker's explanation.
        detail: String,
    },
    /// An exchange exists with another type or other arguments.
    #[error("exchange '{exchange}' already exists with a different '{argument}' ({detail})")]
    ExchangeMismatch {
        /// The exchange.
        exchange: String,
        /// What differs.
        argument: String,
        /// The broker's explanation.
        detail: String,
    },
    /// This user may not declare, and part of the topology is not there.
    #[error(
        "the topology is not declared, and this user may not declare it: no {missing}; run `orderflow topology apply` with an administrator's login"
    )]
    Missing {
        /// `exchange 'x'` or `queue 'y'`: the first one found missing.
        missing: String,
    },
    /// Declaring failed for another reason (connection lost, access refused, ...).
    #[error("declaring {what} failed: {source}")]
    Declare {
        /// What was being declared.
        what: String,
        /// The underlying error.
        source: lapin::Error,
    },
}

impl TopologyError {
    /// True when the declaration failed because the connection did, not because of a conflict.
    #[must_use]
    pub fn is_recoverable(&self) -> bool {
        match self {
            Self::Declare { source, .. } => !source.is_amqp_soft_error(),
            // An operator may apply it any moment: keep trying.
            Self::Missing { .. } => true,
            _ => false,
        }
    }

    /// Classifies a failed declaration of `what` (a queue or exchange named `name`).
    /// Whether the broker refused the declaration for want of permission (`ACCESS_REFUSED`).
    #[must_use]
    pub fn is_access_refused(&self) -> bool {
        matches!(self, Self::Declare { source, .. } if source.to_string().contains("ACCESS_REFUSED"))
    }

    pub(crate) fn from_declare(kind: &str, name: &str, source: lapin::Error) -> Self {
        let text = source.to_string();
        match (
            text.contains("PRECONDITION_FAILED"),
            inequivalent_arg(&text),
        ) {
            (true, Some(argument)) if kind == "queue" => Self::QueueMismatch {
                queue: name.to_owned(),
                argument,
                detail: text,
            },
            (true, argument) if kind == "exchange" => Self::ExchangeMismatch {
                exchange: name.to_owned(),
                argument: argument.unwrap_or_else(|| "type".to_owned()),
                detail: text,
            },
            _ => Self::Declare {
                what: format!("{kind} '{name}'"),
                source,
            },
        }
    }
}

/// Extracts `x-foo` from the broker's "inequivalent arg 'x-foo' for queue ..." reply.
fn inequivalent_arg(reply: &str) -> Option<String> {
    let rest = reply.split("inequivalent arg '").nth(1)?;
    Some(rest.split('\'').next()?.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_topology_is_waited_for_and_names_the_fix() {
        let missing = TopologyError::Missing {
            missing: "queue 'q'".to_owned(),
        };
        assert!(
            missing.is_recoverable(),
            "an operator may apply it any moment"
        );
        let text = missing.to_string();
        assert!(
            text.contains("no queue 'q'") && text.contains("orderflow topology apply"),
            "{text}"
        );
    }

    #[test]
    fn finds_the_argument_in_the_broker_reply() {
        let reply = "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'q' in vhost '/': received 'quorum' but current is 'classic'";
        assert_eq!(inequivalent_arg(reply).as_deref(), Some("x-queue-type"));
        assert_eq!(inequivalent_arg("NOT_FOUND"), None);
    }
}
