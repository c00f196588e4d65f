//! Failure groups: dead letters of every dead-letter queue gathered by fingerprint, so one
//! failure on a thousand orders reads as one line with its count.

use crate::dead_letters;
use crate::filter::Filter;
use crate::letter::DeadLetter;
use crate::queues::DeadLetterQueue;
use crate::scan::Scan;
use crate::target::{Session, Target};
use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

/// One failure group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The fingerprint its dead letters share (`dlq replay --group` takes it).
    pub fingerprint: String,
    /// Dead letters in it.
    pub count: u64,
    /// The dead-letter queues they sit in.
    pub queues: BTreeSet<String>,
    /// Their `error-kind`s.
    pub kinds: BTreeSet<String>,
    /// Their `error-type` (absent for dead letters from before the header).
    pub error_type: Option<String>,
    /// One of their errors.
    pub example_error: Option<String>,
    /// The `message_id` of the dead letter the example came from.
    pub example_message_id: Option<String>,
    /// The earliest time one of them was dead-lettered.
    pub first_seen: Option<SystemTime>,
    /// The latest.
    pub last_seen: Option<SystemTime>,
}

/// Groups being gathered.
#[derive(Debug, Default)]
pub struct Groups(BTreeMap<String, Group>);

impl Groups {
    /// Counts `letter` into its group.
    pub fn add(&mut self, letter: &DeadLetter) {
        let fingerprint = letter.fingerprint();
        let group = self.0.entry(fingerprint.clone()).or_insert_with(|| Group {
            fingerprint,
            count: 0,
            queues: BTreeSet::new(),
            kinds: BTreeSet::new(),
            error_type: letter.error_type(),
            example_error: letter.error(),
            example_message_id: letter.message_id.clone(),
            first_seen: None,
            last_seen: None,
        });
        group.count += 1;
        group.queues.insert(letter.queue.clone());
        group.kinds.extend(letter.error_kind());
        if let Some(at) = letter.failed_at() {
            group.first_seen = Some(group.first_seen.map_or(at, |first| first.min(at)));
            group.last_seen = Some(group.last_seen.map_or(at, |last| last.max(at)));
        }
    }

    /// The groups, largest first (then by fingerprint).
    #[must_use]
    pub fn into_sorted(self) -> Vec<Group> {
        let mut groups: Vec<Group> = self.0.into_values().collect();
        groups.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.fingerprint.cmp(&b.fingerprint))
        });
        groups
    }
}

/// The failure groups of `only` or of every dead-letter queue in the vhost; every dead letter
/// is read and handed back, at most [`crate::scan::WINDOW`] unacked at once.
///
/// # Errors
/// When the management API or the broker cannot be reached, or `only` does not exist.
pub async fn collect(
    target: &Target,
    only: Option<&DeadLetterQueue>,
) -> anyhow::Result<Vec<Group>> {
    let queues = dead_letters::these_or_all(target, only).await?;
    let mut groups = Groups::default();
    let mut session = Session::open(target).await?;
    for dlq in &queues {
        let mut scan = Scan::start(&mut session, target, dlq).await?;
        let result = scan
            .each_match(&Filter::default(), None, async |delivery, letter| {
                groups.add(&letter);
                Ok(Some(delivery))
            })
            .await;
        scan.finish().await;
        result?;
    }
    session.close().await;
    Ok(groups.into_sorted())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::letter::tests::letter;
    use broker::headers;

    fn failed(queue: &str, fingerprint: &str, error: &str, at: &str) -> DeadLetter {
        let mut letter = letter(&[
            (headers::ERROR_FINGERPRINT, fingerprint),
            (headers::ERROR, error),
            (headers::ERROR_KIND, "retries-exhausted"),
            (headers::ERROR_TYPE, "provider-unavailable"),
            (headers::FAILED_AT, at),
        ]);
        letter.queue = queue.to_owned();
        letter
    }

    #[test]
    fn letters_group_by_fingerprint_across_queues_with_counts_and_times() {
        let mut groups = Groups::default();
        groups.add(&failed(
            "a.dlq",
            "f1",
            "down for o-1",
            "2026-11-22T10:00:00Z",
        ));
        groups.add(&failed(
            "b.dlq",
            "f1",
            "down for o-2",
            "2026-11-22T12:00:00Z",
        ));
        groups.add(&failed(
            "a.dlq",
            "f1",
            "down for o-3",
            "2026-11-22T11:00:00Z",
        ));
        groups.add(&failed("a.dlq", "f2", "declined", "2026-11-22T09:00:00Z"));
        let old = letter(&[(headers::ERROR_KIND, "malformed"), (headers::ERROR, "bad")]);
        groups.add(&old);
        let groups = groups.into_sorted();
        assert_eq!(groups.len(), 3);
        let big = &groups[0];
        assert_eq!(big.fingerprint, "f1");
        assert_eq!(big.count, 3);
        assert_eq!(
            big.queues.iter().map(String::as_str).collect::<Vec<_>>(),
            ["a.dlq", "b.dlq"]
        );
        assert_eq!(big.example_error.as_deref(), Some("down for o-1"));
        assert_eq!(big.error_type.as_deref(), Some("provider-unavailable"));
        let time = |t: Option<SystemTime>| t.map(crate::when::rfc3339);
        assert_eq!(
            time(big.first_seen).as_deref(),
            Some("2026-11-22T10:00:00Z")
        );
        assert_eq!(time(big.last_seen).as_deref(), Some("2026-11-22T12:00:00Z"));
        let legacy = groups
            .iter()
            .find(|g| g.fingerprint == old.fingerprint())
            .unwrap();
        assert_eq!(legacy.count, 1);
        assert_eq!(legacy.error_type, None);
        assert!(legacy.kinds.contains("malformed"));
    }
}
