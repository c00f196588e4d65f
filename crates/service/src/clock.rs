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

/// The text a stored stamp sorts below exactly when its whole second is before `at`'s.
/// RFC 3339 text sorts as time only up to the seconds: after them comes a fraction of varying
/// length, or none, so `…:05.5Z` sorts below `…:05Z`. The bound is that fixed-width prefix.
#[must_use]
pub fn second_bound(at: OffsetDateTime) -> String {
    let mut text = format(at.to_offset(time::UtcOffset::UTC));
    text.truncate("YYYY-MM-DDTHH:MM:SS".len());
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_is_below_the_bound_only_when_its_second_is_earlier() {
        let at = parse("2024-03-01T12:00:05.25Z");
        let bound = second_bound(at);
        assert_eq!(bound, "2024-03-01T12:00:05");
        let below = |stamp: &str| stamp < bound.as_str();
        assert!(below("2024-03-01T12:00:04.999Z"));
        assert!(below("2024-02-29T23:59:59Z"));
        assert!(!below("2024-03-01T12:00:05Z"));
        assert!(!below("2024-03-01T12:00:05.1Z"));
        assert!(!below("2024-03-01T12:00:06Z"));
        // The stamps the stores write vary in width: that is why the bound stops at the second.
        let whole = format(parse("2024-03-01T12:00:05Z"));
        assert_ne!(whole.len(), format(at).len());
    }
}
