//! The retry policy (a value) and the retry decision (a pure function of policy, attempt and outcome).

use crate::headers::DeadLetterReason;
use std::time::Duration;

/// Exponential backoff for one consumer queue: retry `n` waits
/// `initial_delay × multiplier^(n-1)`, capped at `max_delay`, in its own retry tier.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries before a message is dead-lettered; 0 dead-letters on the first failure.
    pub max_retries: u32,
    /// Delay before the first retry.
    pub initial_delay: Duration,
    /// Growth factor from one retry to the next (≥ 1).
    pub multiplier: f64,
    /// Upper bound of any one delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 5 retries after 1 s, 5 s, 25 s, 2 min 5 s and 10 min (capped).
    fn default() -> Self {
        Self {
            max_retries: 5,
            initial_delay: Duration::from_secs(1),
            multiplier: 5.0,
            max_delay: Duration::from_secs(600),
        }
    }
}

impl RetryPolicy {
    /// A policy with `max_retries` retries and the default delays.
    #[must_use]
    pub fn with_max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = max_retries;
        self
    }

    /// Sets the first delay.
    #[must_use]
    pub fn with_initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }

    /// Sets the growth factor (values below 1 are treated as 1).
    #[must_use]
    pub fn with_multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = multiplier;
        self
    }

    /// Sets the cap on any one delay.
    #[must_use]
    pub fn with_max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// The delay of retry tier `tier` (1-based), whole milliseconds, as the broker's TTL.
    #[must_use]
    pub fn delay(&self, tier: u32) -> Duration {
        let exponent = i32::try_from(tier.saturating_sub(1)).unwrap_or(i32::MAX);
        let factor = self.multiplier.max(1.0).powi(exponent);
        let millis = (self.initial_delay.as_millis() as f64 * factor)
            .min(self.max_delay.as_millis() as f64)
            .max(1.0);
        Duration::from_millis(millis as u64)
    }

    /// The delays of tiers `1..=max_retries`, in order.
    #[must_use]
    pub fn delays(&self) -> Vec<Duration> {
        (1..=self.max_retries)
            .map(|tier| self.delay(tier))
            .collect()
    }
}

/// What a handler's attempt came to, as far as the retry decision cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The handler returned `Ok`.
    Handled,
    /// The handler failed and the failure may pass.
    Retryable,
    /// The handler said the message can never succeed.
    Rejected,
    /// The body did not decode.
    Malformed,
    /// A dependency was down for longer than the consumer holds a delivery: the message did not
    /// fail, it goes back to its queue as it is.
    Unavailable,
}

/// What the runtime does with a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Acknowledge: done.
    Ack,
    /// Publish a copy to retry tier `tier` (its `retry-count` becomes `tier`), then ack.
    Retry {
        /// 1-based tier, also the copy's new `retry-count`.
        tier: u32,
    },
    /// Publish a copy to the dead-letter queue, then ack.
    DeadLetter(DeadLetterReason),
    /// Return the delivery to its queue unchanged (`basic.nack` with requeue): not a failure,
    /// so no retry is spent (and since RabbitMQ 4.3 no delivery count either).
    GiveBack,
}

/// Decides what happens to a delivery that has been retried `retry_count` times.
#[must_use]
pub fn decide(policy: &RetryPolicy, retry_count: u32, outcome: Outcome) -> Decision {
    match outcome {
        Outcome::Handled => Decision::Ack,
        Outcome::Unavailable => Decision::GiveBack,
        Outcome::Malformed => Decision::DeadLetter(DeadLetterReason::Malformed),
        Outcome::Rejected => Decision::DeadLetter(DeadLetterReason::Rejected),
        Outcome::Retryable if retry_count < policy.max_retries => Decision::Retry {
            tier: retry_count + 1,
        },
        Outcome::Retryable => Decision::DeadLetter(DeadLetterReason::RetriesExhausted),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Decision::{Ack, DeadLetter, GiveBack, Retry};
    use Outcome::{Handled, Malformed, Rejected, Retryable, Unavailable};
    type Why = DeadLetterReason;

    #[test]
    fn decision_table() {
        let policy = RetryPolicy::default().with_max_retries(3);
        let table = [
            (0, Handled, Ack),
            (3, Handled, Ack),
            (0, Retryable, Retry { tier: 1 }),
            (1, Retryable, Retry { tier: 2 }),
            (2, Retryable, Retry { tier: 3 }),
            (3, Retryable, DeadLetter(Why::RetriesExhausted)),
            (99, Retryable, DeadLetter(Why::RetriesExhausted)),
            (0, Rejected, DeadLetter(Why::Rejected)),
            (2, Rejected, DeadLetter(Why::Rejected)),
            (0, Malformed, DeadLetter(Why::Malformed)),
            (1, Malformed, DeadLetter(Why::Malformed)),
            (0, Unavailable, GiveBack),
            (3, Unavailable, GiveBack),
        ];
        for (retry_count, outcome, expected) in table {
            assert_eq!(
                decide(&policy, retry_count, outcome),
                expected,
                "retry_count={retry_count} outcome={outcome:?}"
            );
        }
    }

    #[test]
    fn zero_retries_dead_letters_the_first_failure() {
        let policy = RetryPolicy::default().with_max_retries(0);
        assert_eq!(
            decide(&policy, 0, Retryable),
            DeadLetter(Why::RetriesExhausted)
        );
    }

    #[test]
    fn delays_grow_exponentially_and_are_capped() {
        let policy = RetryPolicy::default()
            .with_max_retries(5)
            .with_initial_delay(Duration::from_millis(100))
            .with_multiplier(3.0)
            .with_max_delay(Duration::from_millis(2000));
        let millis: Vec<u128> = policy.delays().iter().map(Duration::as_millis).collect();
        assert_eq!(millis, [100, 300, 900, 2000, 2000]);
    }

    #[test]
    fn default_delays_are_documented_ones() {
        let secs: Vec<u64> = RetryPolicy::default()
            .delays()
            .iter()
            .map(Duration::as_secs)
            .collect();
        assert_eq!(secs, [1, 5, 25, 125, 600]);
    }

    #[test]
    fn multiplier_below_one_never_shrinks_delays() {
        let policy = RetryPolicy::default()
            .with_max_retries(3)
            .with_initial_delay(Duration::from_millis(50))
            .with_multiplier(0.5);
        assert!(policy.delays().iter().all(|d| d.as_millis() == 50));
    }
}
