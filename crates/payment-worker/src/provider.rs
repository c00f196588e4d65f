//! The simulated payment provider: like a card processor's test tokens, the token decides.

/// What the provider answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Charged.
    Approved,
    /// Refused for good, with the reason.
    Declined(&'static str),
    /// Could not answer now; try again later.
    Unavailable(String),
}

/// How often this order's charge has been tried.
#[derive(Debug, Clone, Copy, Default)]
pub struct Attempt {
    /// The message's `retry-count`.
    pub retry_count: u32,
    /// The message's `replay-count` (set when an operator replays a dead letter).
    pub replay_count: u32,
}

/// The provider's answer for `token` on this `attempt`.
///
/// | token | answer |
/// |---|---|
/// | none, `tok_visa`, `tok_mastercard` | approved |
/// | `tok_declined` | declined (`card_declined`) |
/// | `tok_insufficient_funds` | declined (`insufficient_funds`) |
/// | `tok_transient_<N>` | unavailable for the first N attempts, then approved |
/// | `tok_outage` | unavailable until an operator replays the dead letter, then approved |
/// | anything else | declined (`invalid_token`) |
#[must_use]
pub fn charge(token: Option<&str>, attempt: Attempt) -> Verdict {
    match token {
        None | Some("tok_visa" | "tok_mastercard") => Verdict::Approved,
        Some("tok_declined") => Verdict::Declined("card_declined"),
        Some("tok_insufficient_funds") => Verdict::Declined("insufficient_funds"),
        Some("tok_outage") if attempt.replay_count == 0 => {
            Verdict::Unavailable("payment provider unavailable (simulated outage)".to_owned())
        }
        Some("tok_outage") => Verdict::Approved,
        Some(token) => match token.strip_prefix("tok_transient_").map(str::parse::<u32>) {
            Some(Ok(failures)) if attempt.retry_count < failures => Verdict::Unavailable(format!(
                "payment provider timed out (simulated, attempt {} of {failures} failing)",
                attempt.retry_count + 1
            )),
            Some(Ok(_)) => Verdict::Approved,
            _ => Verdict::Declined("invalid_token"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(retry_count: u32, replay_count: u32) -> Attempt {
        Attempt {
            retry_count,
            replay_count,
        }
    }

    /// The verdict without the unavailable message, for table comparison.
    fn kind(verdict: &Verdict) -> &'static str {
        match verdict {
            Verdict::Approved => "approved",
            Verdict::Declined(reason) => reason,
            Verdict::Unavailable(_) => "unavailable",
        }
    }

    #[test]
    fn tokens_behave_as_documented() {
        let table = [
            (None, at(0, 0), "approved"),
            (Some("tok_visa"), at(0, 0), "approved"),
            (Some("tok_declined"), at(0, 0), "card_declined"),
            (
                Some("tok_insufficient_funds"),
                at(3, 0),
                "insufficient_funds",
            ),
            (Some("tok_transient_2"), at(0, 0), "unavailable"),
            (Some("tok_transient_2"), at(1, 0), "unavailable"),
            (Some("tok_transient_2"), at(2, 0), "approved"),
            (Some("tok_transient_0"), at(0, 0), "approved"),
            (Some("tok_outage"), at(5, 0), "unavailable"),
            (Some("tok_outage"), at(0, 1), "approved"),
            (Some("tok_transient_x"), at(0, 0), "invalid_token"),
            (Some("bogus"), at(0, 0), "invalid_token"),
        ];
        for (token, attempt, expected) in table {
            assert_eq!(
                kind(&charge(token, attempt)),
                expected,
                "{token:?} {attempt:?}"
            );
        }
    }
}
