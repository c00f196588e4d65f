//! The names the library derives for a consumer queue — its retry tiers, its dead-letter queue,
//! the headers it writes — so that another system's conventions fit; orderflow's are the default.

use std::borrow::Cow;

/// What stands between a consumer queue's name and a retry tier's number, by default.
pub const RETRY_INFIX: &str = ".retry.";

/// What follows a consumer queue's name in its dead-letter queue's, by default.
pub const DEAD_LETTER_SUFFIX: &str = ".dlq";

/// How one consumer queue's retry tiers, dead-letter queue and library headers are named.
///
/// The default is the wire contract orderflow's tools read: `Q.retry.N`, `Q.dlq`, and the
/// header names of [`crate::headers`] as they are. A header prefix goes before every header the
/// library writes (`retry-count` becomes `acme-retry-count`); the broker's `x-` headers and the
/// W3C `traceparent` are never prefixed. Set it per queue with [`crate::QueueSpec::with_naming`];
/// tools that read the queues (a replay) must use the same value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naming {
    header_prefix: String,
    retry_infix: String,
    dead_letter_suffix: String,
}

impl Default for Naming {
    fn default() -> Self {
        Self {
            header_prefix: String::new(),
            retry_infix: RETRY_INFIX.to_owned(),
            dead_letter_suffix: DEAD_LETTER_SUFFIX.to_owned(),
        }
    }
}

impl Naming {
    /// Puts `prefix` before every header name the library writes and reads.
    ///
    /// # Panics
    /// When `prefix` starts with `x-`, which RabbitMQ keeps for its own headers (the library
    /// drops those from the copies it publishes), or is longer than 64 bytes.
    #[must_use]
    pub fn with_header_prefix(mut self, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        assert!(
            !prefix.to_ascii_lowercase().starts_with("x-"),
            "header prefix {prefix:?}: x- headers are the broker's"
        );
        assert!(prefix.len() <= 64, "header prefix {prefix:?} is too long");
        self.header_prefix = prefix;
        self
    }

    /// Sets what stands between a queue's name and a tier number (default [`RETRY_INFIX`]).
    ///
    /// # Panics
    /// When `infix` is empty or ends in a digit (a tier name would not parse back).
    #[must_use]
    pub fn with_retry_infix(mut self, infix: impl Into<String>) -> Self {
        let infix = infix.into();
        assert!(
            infix.chars().last().is_some_and(|c| !c.is_ascii_digit()),
            "retry infix {infix:?} must be non-empty and not end in a digit"
        );
        self.retry_infix = infix;
        self
    }

    /// Sets what follows a queue's name in its dead-letter queue's (default
    /// [`DEAD_LETTER_SUFFIX`]).
    ///
    /// # Panics
    /// When `suffix` is empty: the dead-letter queue would be the queue itself.
    #[must_use]
    pub fn with_dead_letter_suffix(mut self, suffix: impl Into<String>) -> Self {
        let suffix = suffix.into();
        assert!(
            !suffix.is_empty(),
            "the dead-letter suffix must be non-empty"
        );
        self.dead_letter_suffix = suffix;
        self
    }

    /// The prefix of the library's header names ("" by default).
    #[must_use]
    pub fn header_prefix(&self) -> &str {
        &self.header_prefix
    }

    /// What follows a queue's name in its dead-letter queue's.
    #[must_use]
    pub fn dead_letter_suffix(&self) -> &str {
        &self.dead_letter_suffix
    }

    /// The name on the wire of the library header `name` (one of [`crate::headers`]' constants).
    #[must_use]
    pub fn header(&self, name: &'static str) -> Cow<'static, str> {
        if self.header_prefix.is_empty() {
            Cow::Borrowed(name)
        } else {
            Cow::Owned(format!("{}{name}", self.header_prefix))
        }
    }

    /// The constant a wire header name stands for, when it is one of the library's under this
    /// naming (its prefix removed), else `None`.
    pub(crate) fn library_header<'a>(&self, wire: &'a str) -> Option<&'a str> {
        wire.strip_prefix(self.header_prefix.as_str())
    }

    /// Name of retry tier `tier` (1-based) of `queue`.
    #[must_use]
    pub fn retry_queue(&self, queue: &str, tier: u32) -> String {
        format!("{queue}{}{tier}", self.retry_infix)
    }

    /// Name of the dead-letter queue of `queue`.
    #[must_use]
    pub fn dead_letter_queue(&self, queue: &str) -> String {
        format!("{queue}{}", self.dead_letter_suffix)
    }

    /// The consumer queue whose dead letters `name` holds, when `name` is a dead-letter queue.
    #[must_use]
    pub fn queue_of_dead_letter_queue<'a>(&self, name: &'a str) -> Option<&'a str> {
        name.strip_suffix(self.dead_letter_suffix.as_str())
            .filter(|queue| !queue.is_empty())
    }

    /// The consumer queue and tier of `name`, when `name` is a retry tier.
    #[must_use]
    pub fn queue_of_retry_tier<'a>(&self, name: &'a str) -> Option<(&'a str, u32)> {
        let (queue, tier) = name.rsplit_once(self.retry_infix.as_str())?;
        let digits = !tier.is_empty() && tier.bytes().all(|b| b.is_ascii_digit());
        let tier = tier.parse().ok().filter(|_| digits)?;
        (!queue.is_empty()).then_some((queue, tier))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_the_wire_contract() {
        let naming = Naming::default();
        assert_eq!(
            naming.retry_queue("payment.order-created", 2),
            "payment.order-created.retry.2"
        );
        assert_eq!(
            naming.dead_letter_queue("stock.order-paid"),
            "stock.order-paid.dlq"
        );
        assert_eq!(naming.header(crate::headers::RETRY_COUNT), "retry-count");
        assert!(matches!(naming.header("error"), Cow::Borrowed(_)));
    }

    #[test]
    fn names_parse_back_to_their_consumer_queue() {
        let naming = Naming::default();
        assert_eq!(
            naming.queue_of_retry_tier(&naming.retry_queue("q", 3)),
            Some(("q", 3))
        );
        assert_eq!(
            naming.queue_of_retry_tier("a.b.retry.12"),
            Some(("a.b", 12))
        );
        for not_a_tier in ["q.retry.x", "q.retry.", "q.retry.+1", ".retry.1", "q"] {
            assert_eq!(naming.queue_of_retry_tier(not_a_tier), None, "{not_a_tier}");
        }
        assert_eq!(
            naming.queue_of_dead_letter_queue(&naming.dead_letter_queue("q")),
            Some("q")
        );
        assert_eq!(naming.queue_of_dead_letter_queue(".dlq"), None);
        assert_eq!(naming.queue_of_dead_letter_queue("q"), None);
    }

    #[test]
    fn another_convention_names_and_parses_its_own_queues_and_headers() {
        let naming = Naming::default()
            .with_header_prefix("acme-")
            .with_retry_infix("_wait_")
            .with_dead_letter_suffix("_error");
        assert_eq!(naming.retry_queue("billing", 1), "billing_wait_1");
        assert_eq!(naming.dead_letter_queue("billing"), "billing_error");
        assert_eq!(
            naming.queue_of_retry_tier("billing_wait_1"),
            Some(("billing", 1))
        );
        assert_eq!(
            naming.queue_of_dead_letter_queue("billing_error"),
            Some("billing")
        );
        assert_eq!(naming.queue_of_dead_letter_queue("billing.dlq"), None);
        assert_eq!(naming.header("retry-count"), "acme-retry-count");
        assert_eq!(naming.library_header("acme-error"), Some("error"));
        assert_eq!(naming.library_header("error"), None);
    }

    #[test]
    #[should_panic(expected = "x- headers are the broker's")]
    fn a_prefix_in_the_brokers_namespace_is_refused() {
        let _ = Naming::default().with_header_prefix("X-App-");
    }

    #[test]
    #[should_panic(expected = "not end in a digit")]
    fn an_infix_that_would_not_parse_back_is_refused() {
        let _ = Naming::default().with_retry_infix("-r1");
    }
}
