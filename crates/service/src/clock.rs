//! Timestamps as the stores and the wire keep them: RFC 3339 in UTC.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Now, as RFC 3339 text.
#[must_use]
pub fn now() -> String {
    format(OffsetDateTime::now_utc())
}

/// `at` as RFC 3339 text.
#[must_use]
pub fn format(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

/// Parses RFC 3339 text; the epoch when it does not parse (stored values always do).
#[must_use]
pub fn parse(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &Rfc3339).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
