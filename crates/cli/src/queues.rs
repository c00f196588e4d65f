//! Queue names as an operator types them: `Q` or `Q.dlq`, resolved to the dead-letter queue and
//! the consumer queue it belongs to.

use anyhow::bail;
use broker::Naming;

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
        let naming = Naming::default();
        let source = queue
            .strip_suffix(naming.dead_letter_suffix())
            .unwrap_or(queue);
        if source.is_empty() {
            bail!("no queue named: give a consumer queue `Q` or its dead-letter queue `Q.dlq`");
        }
        Ok(Self {
            name: naming.dead_letter_queue(source),
            source: source.to_owned(),
        })
    }
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
}
