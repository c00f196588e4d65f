//! Times as an operator reads and types them: RFC 3339 with "3 min ago", and durations such as
//! `10m`, `2h` or `1h 30m`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Parses a human duration (`90s`, `10m`, `2h`, `1d`, `1h 30m`); for clap.
///
/// # Errors
/// A message saying what is expected.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|err| format!("'{text}' is not a duration such as 10m, 2h or 1d: {err}"))
}

/// Reads an RFC 3339 time (the `failed-at` header).
#[must_use]
pub fn parse_time(text: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(text.trim()).ok()
}

/// A time in seconds since the epoch (the `timestamp` property, `x-death`'s `time`).
#[must_use]
pub fn from_epoch(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

/// `2026-11-22T10:00:00Z`, to the second.
#[must_use]
pub fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

/// How long before `now` `at` was, in its largest unit: `just now`, `42 s ago`, `3 min ago`,
/// `5 h ago`, `2 d ago` (`in 3 min` for a time ahead of `now`).
#[must_use]
pub fn ago(at: SystemTime, now: SystemTime) -> String {
    let (span, ahead) = match now.duration_since(at) {
        Ok(span) => (span, false),
        Err(err) => (err.duration(), true),
    };
    let secs = span.as_secs();
    let text = match secs {
        0 => return "just now".to_owned(),
        1..60 => format!("{secs} s"),
        60..3600 => format!("{} min", secs / 60),
        3600..86_400 => format!("{} h", secs / 3600),
        _ => format!("{} d", secs / 86_400),
    };
    if ahead {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// `2026-11-22T10:00:00Z (3 min ago)`.
#[must_use]
pub fn human(at: SystemTime, now: SystemTime) -> String {
    format!("{} ({})", rfc3339(at), ago(at, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_operators_type_them() {
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert!(parse_duration("soon").unwrap_err().contains("10m, 2h"));
    }

    #[test]
    fn times_read_the_failed_at_header_with_or_without_fractions() {
        let at = parse_time("2026-11-22T10:00:00Z").unwrap();
        assert_eq!(rfc3339(at), "2026-11-22T10:00:00Z");
        let fraction = parse_time("2026-11-22T10:00:00.123456789Z").unwrap();
        assert_eq!(rfc3339(fraction), "2026-11-22T10:00:00Z");
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn ages_are_said_in_their_largest_unit() {
        let now = parse_time("2026-11-22T10:00:00Z").unwrap();
        let before = |secs| now - Duration::from_secs(secs);
        assert_eq!(ago(now, now), "just now");
        assert_eq!(ago(before(42), now), "42 s ago");
        assert_eq!(ago(before(200), now), "3 min ago");
        assert_eq!(ago(before(5 * 3600 + 10), now), "5 h ago");
        assert_eq!(ago(before(3 * 86_400), now), "3 d ago");
        assert_eq!(ago(now + Duration::from_secs(180), now), "in 3 min");
        assert_eq!(human(before(180), now), "2026-11-22T09:57:00Z (3 min ago)");
    }
}
