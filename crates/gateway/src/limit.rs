//! Rate limits: per authenticated caller, and per client IP for requests without a valid
//! credential (so guessing keys is slow too). Over the limit is a 429 with `Retry-After`.

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// The limiters of one gateway.
#[derive(Debug, Clone)]
pub struct Limits {
    callers: Arc<DefaultKeyedRateLimiter<String>>,
    addresses: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

impl Limits {
    /// `per_caller` requests a minute for each caller and `per_address` for each address
    /// without a credential, each with a burst of a tenth of a minute's worth (at least 1).
    #[must_use]
    pub fn per_minute(per_caller: NonZeroU32, per_address: NonZeroU32) -> Self {
        let quota = |n: NonZeroU32| {
            let burst = NonZeroU32::new(n.get() / 10).unwrap_or(NonZeroU32::MIN);
            Quota::per_minute(n).allow_burst(burst)
        };
        Self {
            callers: Arc::new(DefaultKeyedRateLimiter::keyed(quota(per_caller))),
            addresses: Arc::new(DefaultKeyedRateLimiter::keyed(quota(per_address))),
        }
    }

    /// `Err(wait)` when `caller` is over its limit.
    ///
    /// # Errors
    /// How long until the next request is allowed.
    pub fn check_caller(&self, caller: &str) -> Result<(), Duration> {
        self.callers
            .check_key(&caller.to_owned())
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// `Err(wait)` when `address` is over its limit.
    ///
    /// # Errors
    /// How long until the next request is allowed.
    pub fn check_address(&self, address: IpAddr) -> Result<(), Duration> {
        self.addresses
            .check_key(&address)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_over_its_burst_waits_and_others_do_not() {
        let limits = Limits::per_minute(NonZeroU32::new(60).unwrap(), NonZeroU32::new(10).unwrap());
        for _ in 0..6 {
            limits.check_caller("a").unwrap();
        }
        let wait = limits.check_caller("a").unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        limits.check_caller("b").unwrap();
        let ip: IpAddr = [127, 0, 0, 1].into();
        limits.check_address(ip).unwrap();
        assert!(
            limits.check_address(ip).is_err(),
            "a burst of 1 for 10 a minute"
        );
    }
}
