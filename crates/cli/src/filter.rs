//! Which dead letters a command acts on: by message id, failure group, error kind or type,
//! event, order, age or text in the error. Every criterion given must hold.

use crate::exit::Exit;
use crate::letter::DeadLetter;
use std::time::{Duration, SystemTime};

/// A selection of dead letters; the default selects every one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only the one with this `message_id`.
    pub message_id: Option<String>,
    /// Only this failure group (see [`DeadLetter::fingerprint`]).
    pub fingerprint: Option<String>,
    /// Only this `error-kind` (e.g. `retries-exhausted`, `delivery-limit`).
    pub error_kind: Option<String>,
    /// Only this `error-type` (e.g. `provider-unavailable`).
    pub error_type: Option<String>,
    /// Only this event (`type` property).
    pub event_type: Option<String>,
    /// Only this order (`correlation_id`).
    pub correlation_id: Option<String>,
    /// Only those that failed longer ago than this.
    pub older_than: Option<Duration>,
    /// Only those that failed more recently than this.
    pub newer_than: Option<Duration>,
    /// Only those whose error or causes contain this text (case-insensitive).
    pub error_contains: Option<String>,
}

impl Filter {
    /// Exactly the dead letter with `message_id`.
    #[must_use]
    pub fn message_id(message_id: &str) -> Self {
        Self {
            message_id: Some(message_id.to_owned()),
            ..Self::default()
        }
    }

    /// True when nothing narrows the selection.
    #[must_use]
    pub fn is_everything(&self) -> bool {
        *self == Self::default()
    }

    /// Fails with exit code 1 when this selects one message id and none of the `found` dead
    /// letters of `dlq` matched; `undone` says what did not happen ("nothing replayed").
    ///
    /// # Errors
    /// As said.
    pub fn ensure_id_matched(
        &self,
        matched: usize,
        found: u32,
        dlq: &str,
        undone: &str,
    ) -> anyhow::Result<()> {
        match &self.message_id {
            Some(id) if matched == 0 => Err(Exit::nothing_matched(format!(
                "no dead letter with message id '{id}' among the {found} in '{dlq}'; {undone}"
            ))
            .into()),
            _ => Ok(()),
        }
    }

    /// Whether `letter` is selected, its age measured at `now`. A dead letter whose time is
    /// unknown matches no age criterion.
    #[must_use]
    pub fn matches(&self, letter: &DeadLetter, now: SystemTime) -> bool {
        let same = |wanted: &Option<String>, actual: Option<String>| {
            wanted
                .as_ref()
                .is_none_or(|wanted| actual.as_deref() == Some(wanted.as_str()))
        };
        let age = letter
            .failed_at()
            .map(|at| now.duration_since(at).unwrap_or(Duration::ZERO));
        same(&self.message_id, letter.message_id.clone())
            && same(&self.fingerprint, Some(letter.fingerprint()))
            && same(&self.error_kind, letter.error_kind())
            && same(&self.error_type, letter.error_type())
            && same(&self.event_type, letter.kind.clone())
            && same(&self.correlation_id, letter.correlation_id.clone())
            && self
                .older_than
                .is_none_or(|limit| age.is_some_and(|age| age > limit))
            && self
                .newer_than
                .is_none_or(|limit| age.is_some_and(|age| age < limit))
            && self.error_contains.as_ref().is_none_or(|text| {
                let text = text.to_lowercase();
                std::iter::once(letter.error().unwrap_or_default())
                    .chain(letter.causes())
                    .any(|line| line.to_lowercase().contains(&text))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::letter::tests::letter;
    use broker::headers;

    fn now() -> SystemTime {
        crate::when::parse_time("2026-11-22T12:00:00Z").unwrap()
    }

    fn sample() -> DeadLetter {
        let mut letter = letter(&[
            (headers::ERROR, "Provider unavailable for order o-1"),
            (headers::ERROR_KIND, "retries-exhausted"),
            (headers::ERROR_TYPE, "provider-unavailable"),
            (headers::ERROR_FINGERPRINT, "f00d"),
            (headers::FAILED_AT, "2026-11-22T11:00:00Z"),
        ]);
        headers::set_texts(
            &mut letter.headers,
            headers::ERROR_CAUSES,
            &["connection reset by peer".to_owned()],
        );
        letter
    }

    #[test]
    fn everything_matches_the_empty_filter() {
        assert!(Filter::default().is_everything());
        assert!(Filter::default().matches(&sample(), now()));
        assert!(Filter::default().matches(&letter(&[]), now()));
    }

    #[test]
    fn each_criterion_selects_by_its_own_field() {
        let some = |s: &str| Some(s.to_owned());
        let hour = Duration::from_secs(3600);
        let cases = [
            (
                Filter {
                    message_id: some("m-1"),
                    ..Filter::default()
                },
                true,
            ),
            (
                Filter {
                    message_id: some("m-2"),
                    ..Filter::default()
                },
                false,
            ),
            (
                Filter {
                    fingerprint: some("f00d"),
                    ..Filter::default()
                },
                true,
            ),
            (
                Filter {
                    fingerprint: some("beef"),
                    ..Filter::default()
                },
                false,
            ),
            (
                Filter {
                    error_kind: some("retries-exhausted"),
                    ..Filter::default()
                },
                true,
            ),
            (
                Filter {
                    error_kind: some("rejected"),
                    ..Filter::default()
                },
                false,
            ),
            (
                Filter {
                    error_type: some("provider-unavailable"),
                    ..Filter::default()
                },
                true,
            ),
            (
                Filter {
                    error_type: some("retry"),
                    ..Filter::default()
                },
                false,
            ),
            (
                Filter {
                    event_type: some("order.created"),
                    ..Filter::default()
                },
                true,
            ),
            (
                Filter {
                    event_type: some("order.paid"),
                    ..Filter::default()
                },
                false,
            ),
            (
                Filter {
                    correlation_id: some("order-1"),
                    ..Filter::default()
                },
                true,
            ),
            (
                Filter {
                    correlation_id: some("order-2"),
                    ..Filter::default()
                },
                false,
            ),
            (
                Filter {
                    older_than: Some(hour / 2),
                    ..Filter::default()
                },
                true,
            ),
            (
                Filter {
                    older_than: Some(hour * 2),
                    ..Filter::default()
                },
                false,
            ),
            (
                Filter {
                    newer_than: Some(hour * 2),
                    ..Filter::default()
                },
                true,
            ),
            (
                Filter {
                    newer_than: Some(hour / 2),
                    ..Filter::default()
                },
                false,
            ),
            (
                Filter {
                    error_contains: some("PROVIDER"),
                    ..Filter::default()
                },
                true,
            ),
            (
                Filter {
                    error_contains: some("reset by"),
                    ..Filter::default()
                },
                true,
            ),
            (
                Filter {
                    error_contains: some("declined"),
                    ..Filter::default()
                },
                false,
            ),
        ];
        for (filter, expected) in cases {
            assert_eq!(filter.matches(&sample(), now()), expected, "{filter:?}");
        }
    }

    #[test]
    fn criteria_combine_and_an_unknown_age_matches_no_age_limit() {
        let both = Filter {
            error_type: Some("provider-unavailable".into()),
            correlation_id: Some("order-2".into()),
            ..Filter::default()
        };
        assert!(!both.matches(&sample(), now()));
        let timeless = letter(&[]);
        let old = Filter {
            older_than: Some(Duration::from_secs(1)),
            ..Filter::default()
        };
        assert!(!old.matches(&timeless, now()));
    }
}
