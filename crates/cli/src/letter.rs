//! One dead letter as an operator reads it: its properties, headers and body, and what its
//! failure record says (kind, type, error, causes, fingerprint, when it failed).

use crate::when;
use broker::headers::{self, DeadLetterReason};
use lapin::message::Delivery;
use lapin::types::{FieldTable, ShortString};
use std::time::SystemTime;

/// One dead letter.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The dead-letter queue it sits in.
    pub queue: String,
    /// The publisher's `message_id`.
    pub message_id: Option<String>,
    /// The `correlation_id` (the order id).
    pub correlation_id: Option<String>,
    /// The `type` property (the event name).
    pub kind: Option<String>,
    /// The `app_id` of its publisher.
    pub app_id: Option<String>,
    /// The `timestamp` property (seconds since the epoch).
    pub timestamp: Option<u64>,
    /// Every header, the library's (`retry-count`, `error-kind`, ...) and the broker's (`x-death`).
    pub headers: FieldTable,
    /// For dead letters the broker made (e.g. the delivery limit): the latest `x-death` reason.
    pub death_reason: Option<String>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl DeadLetter {
    /// Reads a delivery taken from `queue`.
    #[must_use]
    pub fn from_delivery(queue: &str, delivery: &Delivery) -> Self {
        let props = &delivery.properties;
        let text = |value: &Option<ShortString>| value.as_ref().map(|v| v.as_str().to_owned());
        let headers = props.headers().clone().unwrap_or_default();
        Self {
            queue: queue.to_owned(),
            message_id: text(props.message_id()),
            correlation_id: text(props.correlation_id()),
            kind: text(props.kind()),
            app_id: text(props.app_id()),
            timestamp: *props.timestamp(),
            death_reason: headers::death_reason(Some(&headers)),
            headers,
            body: delivery.data.clone(),
        }
    }

    fn header(&self, name: &str) -> Option<String> {
        headers::text(Some(&self.headers), name)
    }

    /// The handler's last error (`error`).
    #[must_use]
    pub fn error(&self) -> Option<String> {
        self.header(headers::ERROR)
    }

    /// Why it died: `error-kind`, or for one the broker dead-lettered, its `x-death` reason
    /// (`delivery_limit` reads as `delivery-limit`).
    #[must_use]
    pub fn error_kind(&self) -> Option<String> {
        self.header(headers::ERROR_KIND)
            .or_else(|| match self.death_reason.as_deref()? {
                "delivery_limit" => Some(DeadLetterReason::DeliveryLimit.as_str().to_owned()),
                other => Some(other.to_owned()),
            })
    }

    /// The error's stable name (`error-type`), absent on dead letters from before the header.
    #[must_use]
    pub fn error_type(&self) -> Option<String> {
        self.header(headers::ERROR_TYPE)
    }

    /// The error's causes (`error-causes`), outermost first.
    #[must_use]
    pub fn causes(&self) -> Vec<String> {
        headers::texts(Some(&self.headers), headers::ERROR_CAUSES)
    }

    /// Its failure group: the `error-fingerprint` header, or for a dead letter without one the
    /// same hash over its error kind and normalised error, so old dead letters group too.
    #[must_use]
    pub fn fingerprint(&self) -> String {
        self.header(headers::ERROR_FINGERPRINT).unwrap_or_else(|| {
            broker::fingerprint(
                self.error_kind().as_deref().unwrap_or("unknown"),
                self.error().as_deref().unwrap_or(""),
            )
        })
    }

    /// When it was dead-lettered: `failed-at`, else the broker's `x-death` time, else when it
    /// was published.
    #[must_use]
    pub fn failed_at(&self) -> Option<SystemTime> {
        self.header(headers::FAILED_AT)
            .and_then(|text| when::parse_time(&text))
            .or_else(|| {
                headers::integer(headers::latest_death(Some(&self.headers)), "time")
                    .map(when::from_epoch)
            })
            .or_else(|| self.timestamp.map(when::from_epoch))
    }
}

/// What an operator needs to recognise a dead letter an action touched, without its body.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Brief {
    /// The `message_id`.
    pub message_id: Option<String>,
    /// The order (`correlation_id`).
    pub correlation_id: Option<String>,
    /// The event (`type` property).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Its failure group.
    pub fingerprint: String,
    /// Its last error.
    pub error: Option<String>,
}

impl Brief {
    /// The brief of `letter`.
    #[must_use]
    pub fn of(letter: &DeadLetter) -> Self {
        Self {
            message_id: letter.message_id.clone(),
            correlation_id: letter.correlation_id.clone(),
            kind: letter.kind.clone(),
            fingerprint: letter.fingerprint(),
            error: letter.error(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use lapin::types::AMQPValue;

    /// A dead letter with `headers` (text values) and the given properties.
    pub(crate) fn letter(pairs: &[(&str, &str)]) -> DeadLetter {
        let mut headers = FieldTable::default();
        for (name, value) in pairs {
            headers::set_text(&mut headers, name, value);
        }
        DeadLetter {
            queue: "q.dlq".into(),
            message_id: Some("m-1".into()),
            correlation_id: Some("order-1".into()),
            kind: Some("order.created".into()),
            app_id: None,
            timestamp: None,
            death_reason: headers::death_reason(Some(&headers)),
            headers,
            body: b"{}".to_vec(),
        }
    }

    #[test]
    fn the_fingerprint_header_is_the_group_and_old_letters_get_one_from_kind_and_error() {
        let new = letter(&[(headers::ERROR_FINGERPRINT, "abc"), (headers::ERROR, "x")]);
        assert_eq!(new.fingerprint(), "abc");
        let old = |order: &str| {
            letter(&[
                (headers::ERROR_KIND, "retries-exhausted"),
                (
                    headers::ERROR,
                    &format!("order {order} timed out after 3 s"),
                ),
            ])
            .fingerprint()
        };
        assert_eq!(old("o-1"), old("o-22"));
        let other_kind = letter(&[
            (headers::ERROR_KIND, "rejected"),
            (headers::ERROR, "order o-1 timed out after 3 s"),
        ]);
        assert_ne!(other_kind.fingerprint(), old("o-1"));
    }

    #[test]
    fn a_broker_dead_letter_reads_as_delivery_limit_at_its_x_death_time() {
        let mut death = FieldTable::default();
        headers::set_text(&mut death, "reason", "delivery_limit");
        death.insert("time".into(), AMQPValue::Timestamp(1_795_000_000));
        let mut letter = letter(&[]);
        letter.headers.insert(
            headers::X_DEATH.into(),
            AMQPValue::FieldArray(vec![AMQPValue::FieldTable(death)].into()),
        );
        letter.death_reason = headers::death_reason(Some(&letter.headers));
        assert_eq!(letter.error_kind().as_deref(), Some("delivery-limit"));
        assert_eq!(letter.failed_at(), Some(when::from_epoch(1_795_000_000)));
    }

    #[test]
    fn failed_at_reads_the_header_first() {
        let letter = letter(&[(headers::FAILED_AT, "2026-11-22T10:00:00Z")]);
        assert_eq!(
            letter.failed_at().map(when::rfc3339).as_deref(),
            Some("2026-11-22T10:00:00Z")
        );
    }
}
