//! What a failed attempt records on its retry and dead-letter copies: the error's type, message
//! and causes, who failed it, and a fingerprint that groups the same failure across orders.

use crate::handler::HandlerError;
use crate::headers;
use regex::Regex;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::sync::LazyLock;

/// The error type of a [`HandlerError::Retry`] not named by its handler (and of `?`).
pub(crate) const RETRY: &str = "retry";
/// The error type of a [`HandlerError::Reject`] not named by its handler.
pub(crate) const REJECT: &str = "reject";
/// The error type of a [`HandlerError::Unavailable`] not named by its handler.
pub(crate) const UNAVAILABLE: &str = "unavailable";
/// The error type of a body that does not decode.
pub(crate) const MALFORMED: &str = "malformed";
/// The error type of a handler that panicked.
pub(crate) const PANIC: &str = "panic";
/// The error type of a handler that ran past its timeout.
pub(crate) const TIMEOUT: &str = "timeout";
/// The error type of a message from a publisher the consumer does not trust ([`crate::trust`]).
pub(crate) const UNTRUSTED_PUBLISHER: &str = "untrusted-publisher";

/// Causes kept at most: the chain's first ones say most.
const MAX_CAUSES: usize = 5;
/// Bytes all kept causes may take together (one header; the broker copies it on every hop).
const MAX_CAUSES_LEN: usize = 2048;
/// Longest error type; a longer one is cut.
const MAX_TYPE_LEN: usize = 64;

/// One failed attempt, as its copies' headers record it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// A stable name of what went wrong (`error-type`).
    pub error_type: Cow<'static, str>,
    /// The error, one bounded line (`error`).
    pub message: String,
    /// The error's sources, outermost first, each one line (`error-causes`).
    pub causes: Vec<String>,
}

impl Failure {
    /// A failure without causes; `message` is made one bounded line.
    #[must_use]
    pub fn new(error_type: impl Into<Cow<'static, str>>, message: &str) -> Self {
        let mut error_type = error_type.into();
        if error_type.len() > MAX_TYPE_LEN || error_type.chars().any(char::is_control) {
            let mut short = headers::one_line(&error_type);
            let mut cut = MAX_TYPE_LEN.min(short.len());
            while !short.is_char_boundary(cut) {
                cut -= 1;
            }
            short.truncate(cut);
            error_type = short.into();
        }
        Self {
            error_type,
            message: headers::one_line(message),
            causes: Vec::new(),
        }
    }

    /// What a handler's error records: its type, its message and its source chain.
    #[must_use]
    pub fn of(error: &HandlerError) -> Self {
        let mut failure = Self::new(error.error_type().to_owned(), &error.to_string());
        failure.causes = causes(error.error().source(), &failure.message);
        failure
    }

    /// The fingerprint of this failure (see [`fingerprint`]).
    #[must_use]
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.error_type, &self.message)
    }
}

/// Who failed a message: the `failed-host` and `failed-by` headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedBy {
    /// The host name the worker runs on.
    pub host: String,
    /// `app_id/version`, or the `app_id` alone when no version was given.
    pub app: String,
}

impl FailedBy {
    /// `app_id` (with `version`, if any) on `host`.
    #[must_use]
    pub fn new(host: &str, app_id: &str, version: Option<&str>) -> Self {
        Self {
            host: host.to_owned(),
            app: match version {
                Some(version) => format!("{app_id}/{version}"),
                None => app_id.to_owned(),
            },
        }
    }
}

/// The cause chain from `source` on, bounded: at most 5 causes, each one line, 2 KiB in all.
/// A cause the line before it already says (many errors repeat their source in their message)
/// is left out.
fn causes(mut source: Option<&(dyn std::error::Error + 'static)>, message: &str) -> Vec<String> {
    let mut kept: Vec<String> = Vec::new();
    let mut len = 0;
    while let Some(cause) = source {
        source = cause.source();
        let line = headers::one_line(&cause.to_string());
        let said = kept.last().map_or(message, String::as_str);
        if line.is_empty() || said.contains(line.as_str()) {
            continue;
        }
        if kept.len() == MAX_CAUSES || len + line.len() > MAX_CAUSES_LEN {
            break;
        }
        len += line.len();
        kept.push(line);
    }
    kept
}

/// A short stable hash of an error type and its normalised message (UUIDs, long hex ids and
/// numbers replaced): the same failure on different orders has the same fingerprint, another
/// type another one.
/// 12 hex digits of SHA-256, stable across machines and releases.
#[must_use]
pub fn fingerprint(error_type: &str, message: &str) -> String {
    let digest = Sha256::new()
        .chain_update(error_type.as_bytes())
        .chain_update([0])
        .chain_update(normalise(message).as_bytes())
        .finalize();
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

static UUID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
        .expect("valid pattern")
});
static WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[0-9A-Za-z]+").expect("valid pattern"));
static NUMBER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\d+").expect("valid pattern"));

/// An error message with what differs between orders replaced: UUIDs by `<uuid>`, hex ids of
/// 8 or more digits by `<hex>`, other numbers by `<n>`.
#[must_use]
pub(crate) fn normalise(message: &str) -> String {
    let text = UUID.replace_all(message, "<uuid>");
    let text = WORD.replace_all(&text, |found: &regex::Captures<'_>| {
        let word = &found[0];
        let digits = word.strip_prefix("0x").unwrap_or(word);
        // Hex letters alone ("deadline", "facade") make a word, not an id.
        let id = digits.len() >= 8
            && digits.bytes().all(|b| b.is_ascii_hexdigit())
            && digits.bytes().any(|b| b.is_ascii_digit());
        if id {
            "<hex>".to_owned()
        } else {
            word.to_owned()
        }
    });
    NUMBER.replace_all(&text, "<n>").into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_numbers_are_replaced_and_words_kept() {
        assert_eq!(
            normalise(
                "order 0af76519-16cd-43dd-8448-eb211c80319c: charge ch_9f8e7d6c5b4a failed after 3 tries (SKU-12, 4.5 s)"
            ),
            "order <uuid>: charge ch_<hex> failed after <n> tries (SKU-<n>, <n>.<n> s)"
        );
        assert_eq!(
            normalise("id 0xDEADBEEF01 at 7f3e2a1b"),
            "id <hex> at <hex>"
        );
        assert_eq!(
            normalise("deadline exceeded, facade"),
            "deadline exceeded, facade"
        );
    }

    #[test]
    fn the_same_failure_on_other_orders_has_one_fingerprint() {
        let one = fingerprint(
            "provider-timeout",
            "order 0af76519-16cd-43dd-8448-eb211c80319c timed out after 30 s (attempt 2)",
        );
        let other = fingerprint(
            "provider-timeout",
            "order 5b1e7c39-0d2a-4f7e-9a6b-3c8d2e1f4a5b timed out after 31 s (attempt 4)",
        );
        assert_eq!(one, other);
        assert_eq!(one.len(), 12);
        assert!(one.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn another_type_or_message_is_another_fingerprint() {
        let message = "order 0af76519-16cd-43dd-8448-eb211c80319c timed out";
        let base = fingerprint("provider-timeout", message);
        assert_ne!(base, fingerprint("retry", message));
        assert_ne!(
            base,
            fingerprint(
                "provider-timeout",
                "order 0af76519-16cd-43dd-8448-eb211c80319c declined"
            )
        );
        // The separator keeps type and message apart.
        assert_ne!(fingerprint("ab", "c"), fingerprint("a", "bc"));
    }

    #[test]
    fn a_fingerprint_is_stable_across_releases() {
        // Dead letters written by an older build must group with new ones: never change this.
        assert_eq!(fingerprint("retry", "boom"), "9adcf7cd4be6");
    }

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    fn chain(texts: &[&'static str]) -> Layer {
        let mut layer: Option<Box<Layer>> = None;
        for text in texts.iter().rev() {
            layer = Some(Box::new(Layer(text, layer)));
        }
        *layer.unwrap()
    }

    #[test]
    fn a_handler_error_records_its_type_message_and_causes() {
        let error = HandlerError::retry(chain(&[
            "cannot charge",
            "provider unreachable",
            "connection refused\n(os error 111)",
        ]))
        .with_type("provider-down");
        let failure = Failure::of(&error);
        assert_eq!(failure.error_type, "provider-down");
        assert_eq!(failure.message, "cannot charge");
        assert_eq!(
            failure.causes,
            ["provider unreachable", "connection refused (os error 111)"]
        );
        assert_eq!(
            failure.fingerprint(),
            fingerprint("provider-down", "cannot charge")
        );
    }

    #[test]
    fn causes_are_bounded_in_number_and_size_and_repeats_left_out() {
        let texts: Vec<&'static str> = (0..9)
            .map(|n| &*Box::leak(format!("cause {n}").into_boxed_str()))
            .collect();
        let failure = Failure::of(&HandlerError::retry(chain(&texts)));
        assert_eq!(failure.causes.len(), 5);
        assert_eq!(failure.causes[0], "cause 1");

        let long = |c: &str| -> &'static str { Box::leak(c.repeat(1000).into_boxed_str()) };
        let (a, b) = (long("a"), long("b"));
        let failure = Failure::of(&HandlerError::retry(chain(&["top", a, b, long("c"), "d"])));
        assert_eq!(failure.causes, [a, b], "2 KiB reached: the rest is cut");

        let repeated = Failure::of(&HandlerError::retry(chain(&[
            "IO error: refused",
            "refused",
        ])));
        assert!(repeated.causes.is_empty(), "{:?}", repeated.causes);
    }

    #[test]
    fn an_error_type_is_one_short_line() {
        let failure = Failure::new("a\nb", "m");
        assert_eq!(failure.error_type, "a b");
        let long = Failure::new("t".repeat(100), "m");
        assert_eq!(long.error_type.len(), MAX_TYPE_LEN);
    }

    #[test]
    fn failed_by_names_the_app_and_its_version() {
        assert_eq!(
            FailedBy::new("h", "payment-worker", Some("0.1.0")).app,
            "payment-worker/0.1.0"
        );
        assert_eq!(FailedBy::new("h", "cli", None).app, "cli");
    }
}
