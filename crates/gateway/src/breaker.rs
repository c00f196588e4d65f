//! A circuit breaker per upstream (failsafe): open once more than half the calls in the window
//! failed (with at least `min_calls` calls), answer at once while open, then let calls through
//! half-open and close on the first success. `orderflow_gateway_breaker_open{upstream}` says which.

use failsafe::futures::CircuitBreaker;
use failsafe::{Config, Instrument, StateMachine, backoff, failure_policy};
use std::future::Future;
use std::time::Duration;

/// When a breaker opens and for how long.
#[derive(Debug, Clone, Copy)]
pub struct BreakerSettings {
    /// Calls in the window before the failure rate counts.
    pub min_calls: u32,
    /// The window the failure rate is measured over.
    pub window: Duration,
    /// How long it stays open before half-open probes.
    pub open_for: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            min_calls: 10,
            window: Duration::from_secs(10),
            open_for: Duration::from_secs(30),
        }
    }
}

/// Sets the breaker-state gauge of one upstream.
#[derive(Debug, Clone, Copy)]
struct Gauge(&'static str);

impl Gauge {
    fn set(self, open: bool) {
        metrics::gauge!("orderflow_gateway_breaker_open", "upstream" => self.0)
            .set(f64::from(u8::from(open)));
    }
}

impl Instrument for Gauge {
    fn on_call_rejected(&self) {
        metrics::counter!("orderflow_gateway_breaker_rejected_total", "upstream" => self.0)
            .increment(1);
    }
    fn on_open(&self) {
        tracing::warn!(
            upstream = self.0,
            "circuit open: calls are refused until it half-opens"
        );
        self.set(true);
    }
    fn on_half_open(&self) {
        tracing::info!(upstream = self.0, "circuit half-open: probing");
        self.set(false);
    }
    fn on_closed(&self) {
        tracing::info!(upstream = self.0, "circuit closed");
        self.set(false);
    }
}

type Policy = failure_policy::SuccessRateOverTimeWindow<backoff::Constant>;

/// The breaker of one upstream.
#[derive(Debug, Clone)]
pub struct Breaker {
    upstream: &'static str,
    machine: StateMachine<Policy, Gauge>,
}

/// A call through a breaker that did not succeed.
#[derive(Debug)]
pub enum Tripped<E> {
    /// The breaker is open: the upstream was not called.
    Open(&'static str),
    /// The upstream's own error (counted as a failure when `is_failure` said so).
    Failed(E),
}

impl Breaker {
    /// A closed breaker for `upstream`.
    #[must_use]
    pub fn new(upstream: &'static str, settings: BreakerSettings) -> Self {
        let policy = failure_policy::success_rate_over_time_window(
            0.5,
            settings.min_calls,
            settings.window,
            backoff::constant(settings.open_for),
        );
        let gauge = Gauge(upstream);
        gauge.set(false);
        Self {
            upstream,
            machine: Config::new()
                .failure_policy(policy)
                .instrument(gauge)
                .build(),
        }
    }

    /// Runs `call` unless the breaker is open; its error counts as a failure when `is_failure`
    /// says so (an upstream that answers "not found" is healthy).
    ///
    /// # Errors
    /// [`Tripped::Open`] without calling, or the call's error.
    pub async fn call<T, E>(
        &self,
        is_failure: fn(&E) -> bool,
        call: impl Future<Output = Result<T, E>>,
    ) -> Result<T, Tripped<E>> {
        let predicate = move |err: &E| is_failure(err);
        match self.machine.call_with(predicate, call).await {
            Ok(value) => Ok(value),
            Err(failsafe::Error::Rejected) => Err(Tripped::Open(self.upstream)),
            Err(failsafe::Error::Inner(err)) => Err(Tripped::Failed(err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fails(_: &&str) -> bool {
        true
    }

    #[tokio::test]
    async fn it_opens_on_failures_refuses_without_calling_then_half_opens_and_closes() {
        let settings = BreakerSettings {
            min_calls: 4,
            window: Duration::from_secs(1),
            open_for: Duration::from_millis(300),
        };
        let breaker = Breaker::new("test", settings);
        // The policy counts only once the window has passed since the breaker was made.
        tokio::time::sleep(settings.window).await;
        let mut opened = false;
        for _ in 0..50 {
            match breaker.call(fails, async { Err::<(), _>("down") }).await {
                Err(Tripped::Open(_)) => {
                    opened = true;
                    break;
                }
                Err(Tripped::Failed(_)) => {}
                Ok(()) => unreachable!(),
            }
        }
        assert!(opened, "open after failures");
        let mut called = false;
        let refused = breaker
            .call(fails, async {
                called = true;
                Ok::<_, &str>(())
            })
            .await;
        assert!(matches!(refused, Err(Tripped::Open("test"))));
        assert!(!called, "an open breaker does not call the upstream");
        tokio::time::sleep(settings.open_for * 2).await;
        breaker
            .call(fails, async { Ok::<_, &str>(()) })
            .await
            .unwrap();
        breaker
            .call(fails, async { Ok::<_, &str>(()) })
            .await
            .unwrap();
    }
}
