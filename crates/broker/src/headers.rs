//! The headers the library owns on retries and dead letters, and how to read them.
//!
//! The constants are the names under the default [`Naming`]; a header prefix goes before each
//! (but never before the broker's `x-` headers or `traceparent`).

use crate::naming::Naming;
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};

/// How many times the message has been retried (absent = 0).
pub const RETRY_COUNT: &str = "retry-count";
/// The last handler error, one line.
pub const ERROR: &str = "error";
/// Why a dead letter died: see [`DeadLetterReason`].
pub const ERROR_KIND: &str = "error-kind";
/// A stable name of the last error, chosen by the handler (`HandlerError::with_type`) or the
/// library (`retry`, `reject`, `malformed`, `panic`, `timeout`).
pub const ERROR_TYPE: &str = "error-type";
/// The last error's sources, outermost first: an array of one-line strings (≤ 5, ≤ 2 KiB).
pub const ERROR_CAUSES: &str = "error-causes";
/// 12 hex digits hashing `error-type` and the normalised `error`: equal for the same failure on
/// different orders (see `failure::fingerprint`).
pub const ERROR_FINGERPRINT: &str = "error-fingerprint";
/// The host name of the worker whose handler failed.
pub const FAILED_HOST: &str = "failed-host";
/// The failing worker's `app_id/version`.
pub const FAILED_BY: &str = "failed-by";
/// Deliveries of the message so far, across retries and redeliveries, the failed one included.
pub const ATTEMPTS: &str = "attempts";
/// RFC 3339 time the message was dead-lettered.
pub const FAILED_AT: &str = "failed-at";
/// The consumer queue the message failed in.
pub const SOURCE_QUEUE: &str = "source-queue";
/// The exchange the message was first published to.
pub const ORIGINAL_EXCHANGE: &str = "original-exchange";
/// The routing key the message was first published with.
pub const ORIGINAL_ROUTING_KEY: &str = "original-routing-key";
/// How many times an operator has replayed the message from its dead-letter queue (absent = 0).
pub const REPLAY_COUNT: &str = "replay-count";
/// The `user_id` of the message's first publisher, kept by retry, dead-letter and replay copies
/// (which their own publisher's login stamps); see [`crate::Trust`].
pub const ORIGINAL_USER_ID: &str = "original-user-id";
/// The broker's count of earlier deliveries of a quorum queue message (read, never written).
pub const DELIVERY_COUNT: &str = "x-delivery-count";
/// The broker's record of how often and why it dead-lettered a message (read, never written).
pub const X_DEATH: &str = "x-death";
/// W3C trace context, carried from publisher to consumer.
pub const TRACEPARENT: &str = "traceparent";

/// Longest `error` header value; longer handler errors are cut at a char boundary.
const MAX_ERROR_LEN: usize = 1024;

/// Why a message ended in a dead-letter queue (the `error-kind` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeadLetterReason {
    /// The handler kept failing until the retry policy's maximum.
    RetriesExhausted,
    /// The handler rejected the message as permanently unprocessable.
    Rejected,
    /// The body did not decode into the expected event.
    Malformed,
    /// The broker's delivery limit was reached (the consumer kept crashing).
    DeliveryLimit,
}

impl DeadLetterReason {
    /// The header value on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RetriesExhausted => "retries-exhausted",
            Self::Rejected => "rejected",
            Self::Malformed => "malformed",
            Self::DeliveryLimit => "delivery-limit",
        }
    }

    /// Parses a header value.
    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::RetriesExhausted,
            Self::Rejected,
            Self::Malformed,
            Self::DeliveryLimit,
        ]
        .into_iter()
        .find(|reason| reason.as_str() == value)
    }
}

impl std::fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reads a header as text, whatever string type the publisher used.
#[must_use]
pub fn text(headers: Option<&FieldTable>, name: &str) -> Option<String> {
    match headers?.inner().get(name)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

/// Reads a header as an unsigned integer, whatever integer type (or decimal text) it was sent as.
#[must_use]
pub fn integer(headers: Option<&FieldTable>, name: &str) -> Option<u64> {
    let value = headers?.inner().get(name)?;
    let signed: i128 = match value {
        AMQPValue::ShortShortInt(v) => (*v).into(),
        AMQPValue::ShortShortUInt(v) => (*v).into(),
        AMQPValue::ShortInt(v) => (*v).into(),
        AMQPValue::ShortUInt(v) => (*v).into(),
        AMQPValue::LongInt(v) => (*v).into(),
        AMQPValue::LongUInt(v) => (*v).into(),
        AMQPValue::LongLongInt(v) => (*v).into(),
        AMQPValue::Timestamp(v) => (*v).into(),
        AMQPValue::LongString(_) | AMQPValue::ShortString(_) => {
            text(Some(headers?), name)?.trim().parse().ok()?
        }
        _ => return None,
    };
    u64::try_from(signed).ok()
}

/// The latest `x-death` entry: the broker's record of its last dead-lettering of a message
/// (`reason`, `queue`, `time`, `count`, ...).
#[must_use]
pub fn latest_death(headers: Option<&FieldTable>) -> Option<&FieldTable> {
    let AMQPValue::FieldArray(deaths) = headers?.inner().get(X_DEATH)? else {
        return None;
    };
    match deaths.as_slice().first()? {
        AMQPValue::FieldTable(latest) => Some(latest),
        _ => None,
    }
}

/// The broker's reason in the latest `x-death` entry (`delivery_limit`, `expired`, `rejected`,
/// ...): why the broker, not the library, dead-lettered a message.
#[must_use]
pub fn death_reason(headers: Option<&FieldTable>) -> Option<String> {
    text(latest_death(headers), "reason")
}

/// The `retry-count` of a delivery under `naming`: 0 when absent or unreadable.
#[must_use]
pub fn retry_count(properties: &BasicProperties, naming: &Naming) -> u32 {
    integer(properties.headers().as_ref(), &naming.header(RETRY_COUNT))
        .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX))
}

/// How often the broker delivered this copy before (quorum queues' `x-delivery-count`; 0 when
/// absent, as on classic queues).
#[must_use]
pub fn delivery_count(properties: &BasicProperties) -> u32 {
    integer(properties.headers().as_ref(), DELIVERY_COUNT)
        .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX))
}

/// Deliveries of a message so far, this one included: the `attempts` its copy carries (or, on
/// a first retry or a message from before the header, its `retry-count`), plus this copy's own
/// deliveries.
#[must_use]
pub fn attempts(properties: &BasicProperties, naming: &Naming) -> u32 {
    let before = integer(properties.headers().as_ref(), &naming.header(ATTEMPTS)).map_or_else(
        || retry_count(properties, naming),
        |n| u32::try_from(n).unwrap_or(u32::MAX),
    );
    before
        .saturating_add(delivery_count(properties))
        .saturating_add(1)
}

/// Reads an array header of strings (other values are left out).
#[must_use]
pub fn texts(headers: Option<&FieldTable>, name: &str) -> Vec<String> {
    let Some(AMQPValue::FieldArray(items)) = headers.and_then(|h| h.inner().get(name)) else {
        return Vec::new();
    };
    items
        .as_slice()
        .iter()
        .filter_map(|item| match item {
            AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
            AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
            _ => None,
        })
        .collect()
}

/// Inserts an array header of strings.
pub fn set_texts(headers: &mut FieldTable, name: &str, values: &[String]) {
    let items: Vec<AMQPValue> = values
        .iter()
        .map(|v| AMQPValue::LongString(LongString::from(v.as_str())))
        .collect();
    headers.insert(ShortString::from(name), AMQPValue::FieldArray(items.into()));
}

/// Inserts a text header.
pub fn set_text(headers: &mut FieldTable, name: &str, value: &str) {
    headers.insert(
        ShortString::from(name),
        AMQPValue::LongString(LongString::from(value)),
    );
}

/// Inserts an integer header.
pub fn set_integer(headers: &mut FieldTable, name: &str, value: u32) {
    headers.insert(
        ShortString::from(name),
        AMQPValue::LongLongInt(i64::from(value)),
    );
}

/// Turns an error into one bounded line for the `error` header.
#[must_use]
pub fn one_line(error: &str) -> String {
    let mut line: String = error
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if line.len() > MAX_ERROR_LEN {
        let mut cut = MAX_ERROR_LEN;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push('…');
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_count_reads_any_integer_type_and_text() {
        for value in [
            AMQPValue::ShortShortUInt(3),
            AMQPValue::LongInt(3),
            AMQPValue::LongLongInt(3),
            AMQPValue::LongString("3".into()),
        ] {
            let mut headers = FieldTable::default();
            headers.insert(RETRY_COUNT.into(), value);
            let props = BasicProperties::default().with_headers(headers);
            assert_eq!(retry_count(&props, &Naming::default()), 3);
        }
    }

    #[test]
    fn retry_count_is_zero_when_absent_negative_or_garbage() {
        assert_eq!(
            retry_count(&BasicProperties::default(), &Naming::default()),
            0
        );
        let mut headers = FieldTable::default();
        headers.insert(RETRY_COUNT.into(), AMQPValue::LongInt(-1));
        headers.insert("other".into(), AMQPValue::Boolean(true));
        assert_eq!(
            retry_count(
                &BasicProperties::default().with_headers(headers),
                &Naming::default()
            ),
            0
        );
    }

    #[test]
    fn attempts_add_this_copys_deliveries_to_those_before_it() {
        let props = |pairs: &[(&str, i64)]| {
            let mut headers = FieldTable::default();
            for (name, value) in pairs {
                headers.insert((*name).into(), AMQPValue::LongLongInt(*value));
            }
            BasicProperties::default().with_headers(headers)
        };
        let attempts = |props: &BasicProperties| attempts(props, &Naming::default());
        assert_eq!(attempts(&BasicProperties::default()), 1);
        assert_eq!(attempts(&props(&[(DELIVERY_COUNT, 2)])), 3);
        assert_eq!(attempts(&props(&[(RETRY_COUNT, 2)])), 3);
        assert_eq!(attempts(&props(&[(RETRY_COUNT, 2), (ATTEMPTS, 4)])), 5);
        assert_eq!(
            attempts(&props(&[
                (RETRY_COUNT, 2),
                (ATTEMPTS, 4),
                (DELIVERY_COUNT, 1)
            ])),
            6
        );
        let acme = Naming::default().with_header_prefix("acme-");
        let prefixed = props(&[
            ("acme-retry-count", 2),
            ("acme-attempts", 4),
            (RETRY_COUNT, 9),
        ]);
        assert_eq!(
            super::attempts(&prefixed, &acme),
            5,
            "reads its own names only"
        );
        assert_eq!(retry_count(&prefixed, &acme), 2);
    }

    #[test]
    fn string_arrays_round_trip() {
        let mut headers = FieldTable::default();
        set_texts(
            &mut headers,
            ERROR_CAUSES,
            &["a".to_owned(), "b".to_owned()],
        );
        assert_eq!(texts(Some(&headers), ERROR_CAUSES), ["a", "b"]);
        assert!(texts(Some(&headers), "other").is_empty());
    }

    #[test]
    fn one_line_strips_newlines_and_bounds_length() {
        assert_eq!(one_line("a\nb\tc"), "a b c");
        let long = "é".repeat(2000);
        let line = one_line(&long);
        assert!(line.len() <= MAX_ERROR_LEN + '…'.len_utf8());
        assert!(line.ends_with('…'));
    }

    #[test]
    fn the_latest_death_reason_is_read_from_x_death() {
        let entry = |reason: &str| {
            let mut table = FieldTable::default();
            set_text(&mut table, "reason", reason);
            AMQPValue::FieldTable(table)
        };
        let mut headers = FieldTable::default();
        assert_eq!(death_reason(Some(&headers)), None);
        headers.insert(
            X_DEATH.into(),
            AMQPValue::FieldArray(vec![entry("delivery_limit"), entry("expired")].into()),
        );
        assert_eq!(
            death_reason(Some(&headers)).as_deref(),
            Some("delivery_limit")
        );
    }

    #[test]
    fn reasons_round_trip() {
        for reason in [
            DeadLetterReason::RetriesExhausted,
            DeadLetterReason::Rejected,
            DeadLetterReason::Malformed,
            DeadLetterReason::DeliveryLimit,
        ] {
            assert_eq!(DeadLetterReason::parse(reason.as_str()), Some(reason));
        }
        assert_eq!(DeadLetterReason::parse("nope"), None);
    }
}
