//! Queue names as an operator types them: `Q` or `Q.dlq`, resolved to the dead-letter queue and
//! the consumer queue it belongs to.

use anyhow::bail;
use broker::topology::dead_letter_queue;

/// The suffix of every dead-letter queue.
pub const DLQ_SUFFIX: &str = ".dlq";

/// A dead-letter queue and the consumer queue whose failures it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterQueue {
    /// `Q.dlq`.
    pub name: String,
    /// `Q`.
    pub source: String,
}

impl DeadLetterQueue {
    /// Resolves `Q` or `Q.dlq`.
    ///
    /// # Errors
    /// When the name is empty.
    pub fn parse(queue: &str) -> anyhow::Result<Self> {
        let source = queue.strip_suffix(DLQ_SUFFIX).unwrap_or(queue);
        if source.is_empty() {
            bail!("no queue named: give a consumer queue `Q` or its dead-letter queue `Q.dlq`");
        }
        Ok(Self {
            name: dead_letter_queue(source),
            source: source.to_owned(),
        })
    }
}

/// True for `Q.dlq` names.
#[must_use]
pub fn is_dead_letter_queue(name: &str) -> bool {
    name.strip_suffix(DLQ_SUFFIX)
        .is_some_and(|source| !source.is_empty())
}

/// The consumer queue a retry tier `Q.retry.N` belongs to.
#[must_use]
pub fn retry_tier_of(name: &str) -> Option<&str> {
    let (queue, tier) = name.rsplit_once(".retry.")?;
    (!queue.is_empty() && !tier.is_empty() && tier.bytes().all(|b| b.is_ascii_digit()))
        .then_some(queue)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_name_the_same_dead_letter_queue() {
        let expected = DeadLetterQueue {
            name: "payment.order-created.dlq".into(),
            source: "payment.order-created".into(),
        };
        assert_eq!(
            DeadLetterQueue::parse("payment.order-created").unwrap(),
            expected
        );
        assert_eq!(
            DeadLetterQueue::parse("payment.order-created.dlq").unwrap(),
            expected
        );
        assert!(DeadLetterQueue::parse(".dlq").is_err());
        assert!(DeadLetterQueue::parse("").is_err());
    }

    #[test]
    fn retry_tiers_are_recognised_by_their_numeric_suffix() {
        assert_eq!(retry_tier_of("q.retry.3"), Some("q"));
        assert_eq!(retry_tier_of("a.b.retry.12"), Some("a.b"));
        assert_eq!(retry_tier_of("q.retry.x"), None);
        assert_eq!(retry_tier_of("q.retry."), None);
        assert_eq!(retry_tier_of("q"), None);
        assert!(is_dead_letter_queue("q.dlq"));
        assert!(!is_dead_letter_queue(".dlq"));
        assert!(!is_dead_letter_queue("q"));
    }
}
