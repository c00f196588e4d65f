//! Exponential backoff, the project's one source: jittered delays for loops that retry until
//! something answers, and the plain doubling for pauses counted by failures.

use backon::{BackoffBuilder, ExponentialBuilder};
use std::time::Duration;

/// Jittered delays from `min` doubling to `max`, for ever: between reconnects (100 ms → 5 s),
/// publish attempts (50 ms → 2 s), runs of a handler held through an outage, a client's retries.
pub fn jittered(min: Duration, max: Duration) -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(min)
        .with_max_delay(max)
        .with_jitter()
        .without_max_times()
        .build()
}

/// The pause after the `n`-th failure in a row (0-based): `first` doubled `n` times, at most
/// `max`. Deterministic, for pauses whose length a test or an operator reads off the count.
#[must_use]
pub fn doubling(first: Duration, max: Duration, n: u32) -> Duration {
    first.saturating_mul(2u32.saturating_pow(n)).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubling_starts_at_first_and_stops_at_max() {
        let ms = |n| doubling(Duration::from_millis(250), Duration::from_secs(30), n).as_millis();
        assert_eq!(
            [0, 1, 2, 6, 7, 40].map(ms),
            [250, 500, 1000, 16_000, 30_000, 30_000]
        );
    }

    #[test]
    fn jittered_delays_stay_between_min_and_twice_max() {
        let delays: Vec<_> = jittered(Duration::from_millis(10), Duration::from_millis(80))
            .take(20)
            .collect();
        assert_eq!(delays.len(), 20, "never runs out");
        assert!(
            delays.iter().all(|d| *d >= Duration::from_millis(10)),
            "{delays:?}"
        );
        assert!(
            delays.iter().all(|d| *d <= Duration::from_millis(160)),
            "{delays:?}"
        );
    }
}
