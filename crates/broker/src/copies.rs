//! The copies the library publishes in place of a delivery — a retry, a dead letter, a replay —
//! and every header each one carries (the wire contract of `docs/design.md` §2).

use crate::failure::{FailedBy, Failure};
use crate::headers::{self, DeadLetterReason};
use crate::message::Outgoing;
use crate::naming::Naming;
use crate::topology::QueueSpec;
use lapin::BasicProperties;
use lapin::message::Delivery;
use lapin::types::FieldTable;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// What failed and who failed it, as a retry or dead-letter copy records it.
pub type Failed<'a> = (&'a Failure, &'a FailedBy);

/// The copy that waits in `queue`'s retry tier `tier` and then returns to `queue`.
#[must_use]
pub fn retry(
    delivery: &Delivery,
    queue: &QueueSpec,
    tier: u32,
    failed: Option<Failed<'_>>,
) -> Outgoing {
    let mut table = forwarded_headers(delivery, queue, failed);
    table.set_integer(headers::RETRY_COUNT, tier);
    copy(delivery, "", &queue.retry_queue(tier), table.0)
}

/// The copy that goes to `queue`'s dead-letter queue through its dead-letter exchange, saying
/// why.
#[must_use]
pub fn dead_letter(
    delivery: &Delivery,
    queue: &QueueSpec,
    reason: DeadLetterReason,
    failed: Option<Failed<'_>>,
) -> Outgoing {
    let mut table = forwarded_headers(delivery, queue, failed);
    let naming = &queue.naming;
    table.set_integer(
        headers::RETRY_COUNT,
        headers::retry_count(&delivery.properties, naming),
    );
    table.set_text(headers::ERROR_KIND, reason.as_str());
    let now = OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default();
    table.set_text(headers::FAILED_AT, &now);
    copy(delivery, &queue.dead_letter_exchange, &queue.name, table.0)
}

fn copy(delivery: &Delivery, exchange: &str, routing_key: &str, table: FieldTable) -> Outgoing {
    Outgoing {
        exchange: exchange.to_owned(),
        routing_key: routing_key.to_owned(),
        body: delivery.data.clone(),
        properties: delivery.properties.clone().with_headers(table),
    }
}

/// The headers that describe one failure: a copy records its own failure in place of an earlier
/// one's, and a replayed copy has none.
const FAILURE_RECORD: [&str; 9] = [
    headers::ERROR,
    headers::ERROR_KIND,
    headers::ERROR_TYPE,
    headers::ERROR_CAUSES,
    headers::ERROR_FINGERPRINT,
    headers::FAILED_AT,
    headers::FAILED_HOST,
    headers::FAILED_BY,
    headers::ATTEMPTS,
];

/// A copy's header table, written under one naming.
struct Table<'n>(FieldTable, &'n Naming);

impl Table<'_> {
    fn set_text(&mut self, name: &'static str, value: &str) {
        headers::set_text(&mut self.0, &self.1.header(name), value);
    }

    fn set_integer(&mut self, name: &'static str, value: u32) {
        headers::set_integer(&mut self.0, &self.1.header(name), value);
    }

    fn set_texts(&mut self, name: &'static str, values: &[String]) {
        headers::set_texts(&mut self.0, &self.1.header(name), values);
    }
}

/// Reads the library header `name` of `original` under `naming`.
fn read(original: Option<&FieldTable>, naming: &Naming, name: &'static str) -> Option<String> {
    headers::text(original, &naming.header(name))
}

/// The headers a copy keeps from `original`: all but the broker's (`x-` prefix) and the
/// failure record.
fn kept_headers<'n>(original: Option<&FieldTable>, naming: &'n Naming) -> Table<'n> {
    let mut table = FieldTable::default();
    for (name, value) in original.into_iter().flat_map(FieldTable::inner) {
        let failure_record = naming
            .library_header(name.as_str())
            .is_some_and(|name| FAILURE_RECORD.contains(&name));
        if !name.as_str().starts_with("x-") && !failure_record {
            table.insert(name.clone(), value.clone());
        }
    }
    Table(table, naming)
}

/// The kept headers plus where the message came from, how often it was delivered, and what
/// went wrong where.
fn forwarded_headers<'q>(
    delivery: &Delivery,
    queue: &'q QueueSpec,
    failed: Option<Failed<'_>>,
) -> Table<'q> {
    let naming = &queue.naming;
    let original = delivery.properties.headers().as_ref();
    let mut table = kept_headers(original, naming);
    let exchange = read(original, naming, headers::ORIGINAL_EXCHANGE)
        .unwrap_or_else(|| delivery.exchange.to_string());
    let routing_key = read(original, naming, headers::ORIGINAL_ROUTING_KEY)
        .unwrap_or_else(|| delivery.routing_key.to_string());
    table.set_text(headers::ORIGINAL_EXCHANGE, &exchange);
    table.set_text(headers::ORIGINAL_ROUTING_KEY, &routing_key);
    // The copy's own `user_id` is its publisher's login: the first publisher stays named here.
    let first_user = read(original, naming, headers::ORIGINAL_USER_ID).or_else(|| {
        delivery
            .properties
            .user_id()
            .as_ref()
            .map(ToString::to_string)
    });
    if let Some(user) = first_user {
        table.set_text(headers::ORIGINAL_USER_ID, &user);
    }
    table.set_text(headers::SOURCE_QUEUE, &queue.name);
    table.set_integer(
        headers::ATTEMPTS,
        headers::attempts(&delivery.properties, naming),
    );
    if let Some((failure, by)) = failed {
        table.set_text(headers::ERROR, &failure.message);
        table.set_text(headers::ERROR_TYPE, &failure.error_type);
        table.set_text(headers::ERROR_FINGERPRINT, &failure.fingerprint());
        if !failure.causes.is_empty() {
            table.set_texts(headers::ERROR_CAUSES, &failure.causes);
        }
        table.set_text(headers::FAILED_HOST, &by.host);
        table.set_text(headers::FAILED_BY, &by.app);
    }
    table
}

/// The copy of a dead letter that goes back to its source queue: same body and properties,
/// published to the default exchange with the `source-queue` header (else `fallback_queue`, the
/// queue its DLQ belongs to) as routing key, so a fanout event is not re-broadcast to
/// subscribers that handled it already. `naming` is the source queue's.
///
/// Headers: every `x-` header and the failure record (`error`, `error-kind`, `error-type`,
/// `error-causes`, `error-fingerprint`, `failed-at`, `failed-host`, `failed-by`, `attempts`)
/// are dropped, `retry-count` starts again at 0 and `replay-count` goes up by one; everything
/// else is kept.
#[must_use]
pub fn replay(
    body: &[u8],
    properties: &BasicProperties,
    naming: &Naming,
    fallback_queue: &str,
) -> Outgoing {
    let original = properties.headers().as_ref();
    let target = read(original, naming, headers::SOURCE_QUEUE)
        .filter(|queue| !queue.is_empty())
        .unwrap_or_else(|| fallback_queue.to_owned());
    let replays = headers::integer(original, &naming.header(headers::REPLAY_COUNT)).unwrap_or(0);
    let mut table = kept_headers(original, naming);
    table.set_integer(headers::RETRY_COUNT, 0);
    table.set_integer(
        headers::REPLAY_COUNT,
        u32::try_from(replays.saturating_add(1)).unwrap_or(u32::MAX),
    );
    Outgoing {
        exchange: String::new(),
        routing_key: target,
        body: body.to_vec(),
        properties: properties.clone().with_headers(table.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::DEAD_LETTER_EXCHANGE;

    fn spec(name: &str) -> QueueSpec {
        QueueSpec::new(name)
    }
    use lapin::types::{AMQPValue, LongString};

    fn delivery(exchange: &str, routing_key: &str, headers: FieldTable) -> Delivery {
        let mut delivery = Delivery::mock(
            1,
            exchange.into(),
            routing_key.into(),
            false,
            b"{\"a\":1}".to_vec(),
        );
        delivery.properties = BasicProperties::default()
            .with_message_id("m-1".into())
            .with_headers(headers);
        delivery
    }

    #[test]
    fn every_copy_names_the_first_publisher_whoever_publishes_it() {
        let mut first = delivery("orders", "order.paid", FieldTable::default());
        first.properties = first.properties.with_user_id("payment".into());
        let retried = retry(&first, &spec("order.order-paid"), 1, None);
        let named = |out: &Outgoing| {
            headers::text(out.properties.headers().as_ref(), headers::ORIGINAL_USER_ID)
        };
        assert_eq!(named(&retried).as_deref(), Some("payment"));

        // The retry comes back stamped by the consumer's own login; its dead letter and the
        // replay of that still name the payment worker.
        let mut back = delivery(
            "",
            "order.order-paid",
            retried.properties.headers().clone().unwrap(),
        );
        back.properties = back.properties.with_user_id("order".into());
        let dead = dead_letter(
            &back,
            &spec("order.order-paid"),
            DeadLetterReason::RetriesExhausted,
            None,
        );
        assert_eq!(named(&dead).as_deref(), Some("payment"));
        let replayed = replay(
            &dead.body,
            &dead.properties,
            &Naming::default(),
            "order.order-paid",
        );
        assert_eq!(named(&replayed).as_deref(), Some("payment"));
    }

    fn by() -> FailedBy {
        FailedBy::new("host-1", "payment-worker", Some("0.1.0"))
    }

    fn failure(message: &str, causes: &[&str]) -> Failure {
        let mut failure = Failure::new("provider-timeout", message);
        failure.causes = causes.iter().map(|c| (*c).to_owned()).collect();
        failure
    }

    #[test]
    fn first_retry_records_the_origin_and_drops_broker_headers() {
        let mut original = FieldTable::default();
        original.insert("x-death".into(), AMQPValue::Boolean(true));
        original.insert("traceparent".into(), AMQPValue::LongString("00-abc".into()));
        let d = delivery("orders", "order.created", original);
        let failed = failure("boom\nagain", &["socket closed"]);
        let copy = retry(
            &d,
            &spec("payment.order-created"),
            1,
            Some((&failed, &by())),
        );
        assert_eq!(copy.exchange, "");
        assert_eq!(copy.routing_key, "payment.order-created.retry.1");
        assert_eq!(copy.body, d.data);
        let h = copy.properties.headers().clone().unwrap();
        assert!(!h.contains_key("x-death"));
        assert_eq!(
            headers::text(Some(&h), "traceparent").as_deref(),
            Some("00-abc")
        );
        assert_eq!(headers::integer(Some(&h), headers::RETRY_COUNT), Some(1));
        assert_eq!(
            headers::text(Some(&h), headers::ERROR).as_deref(),
            Some("boom again")
        );
        assert_eq!(
            headers::text(Some(&h), headers::ORIGINAL_EXCHANGE).as_deref(),
            Some("orders")
        );
        assert_eq!(
            headers::text(Some(&h), headers::ORIGINAL_ROUTING_KEY).as_deref(),
            Some("order.created")
        );
        assert_eq!(
            headers::text(Some(&h), headers::SOURCE_QUEUE).as_deref(),
            Some("payment.order-created")
        );
        assert_eq!(copy.message_id(), Some("m-1"));
        let text = |name| headers::text(Some(&h), name);
        assert_eq!(
            text(headers::ERROR_TYPE).as_deref(),
            Some("provider-timeout")
        );
        assert_eq!(
            text(headers::ERROR_FINGERPRINT),
            Some(crate::failure::fingerprint(
                "provider-timeout",
                "boom again"
            ))
        );
        assert_eq!(
            headers::texts(Some(&h), headers::ERROR_CAUSES),
            ["socket closed"]
        );
        assert_eq!(text(headers::FAILED_HOST).as_deref(), Some("host-1"));
        assert_eq!(
            text(headers::FAILED_BY).as_deref(),
            Some("payment-worker/0.1.0")
        );
        assert_eq!(headers::integer(Some(&h), headers::ATTEMPTS), Some(1));
    }

    #[test]
    fn a_later_failure_replaces_the_earlier_record_and_counts_every_delivery() {
        let d = delivery("orders", "order.created", FieldTable::default());
        let first = retry(
            &d,
            &spec("q"),
            1,
            Some((&failure("first", &["old cause"]), &by())),
        );
        // The tier returns it; the broker had delivered this copy twice before (a crash).
        let mut again = first.properties.headers().clone().unwrap();
        again.insert(headers::DELIVERY_COUNT.into(), AMQPValue::LongLongInt(2));
        let mut d = delivery("", "q", again);
        d.properties = d.properties.with_message_id("m-1".into());
        let second = dead_letter(
            &d,
            &spec("q"),
            DeadLetterReason::RetriesExhausted,
            Some((&Failure::new(crate::failure::TIMEOUT, "second"), &by())),
        );
        let h = second.properties.headers().clone().unwrap();
        assert_eq!(
            headers::text(Some(&h), headers::ERROR).as_deref(),
            Some("second")
        );
        assert_eq!(
            headers::text(Some(&h), headers::ERROR_TYPE).as_deref(),
            Some("timeout")
        );
        assert!(
            !h.contains_key(headers::ERROR_CAUSES),
            "no stale causes from the first failure"
        );
        assert_eq!(
            headers::integer(Some(&h), headers::ATTEMPTS),
            Some(4),
            "1 before the retry, 2 crashed deliveries, this one"
        );
    }

    #[test]
    fn a_returning_retry_keeps_the_first_origin() {
        let mut original = FieldTable::default();
        headers::set_text(&mut original, headers::ORIGINAL_EXCHANGE, "order.paid");
        headers::set_text(&mut original, headers::ORIGINAL_ROUTING_KEY, "");
        headers::set_integer(&mut original, headers::RETRY_COUNT, 2);
        // After a tier expires, the broker delivers through the default exchange with key = queue.
        let d = delivery("", "stock.order-paid", original);
        let dead = dead_letter(
            &d,
            &spec("stock.order-paid"),
            DeadLetterReason::RetriesExhausted,
            Some((&failure("x", &[]), &by())),
        );
        assert_eq!(dead.exchange, DEAD_LETTER_EXCHANGE);
        assert_eq!(dead.routing_key, "stock.order-paid");
        let h = dead.properties.headers().clone().unwrap();
        assert_eq!(
            headers::text(Some(&h), headers::ORIGINAL_EXCHANGE).as_deref(),
            Some("order.paid")
        );
        assert_eq!(
            headers::text(Some(&h), headers::ORIGINAL_ROUTING_KEY).as_deref(),
            Some("")
        );
        assert_eq!(headers::integer(Some(&h), headers::RETRY_COUNT), Some(2));
        assert_eq!(
            headers::text(Some(&h), headers::ERROR_KIND).as_deref(),
            Some("retries-exhausted")
        );
        let failed_at = headers::text(Some(&h), headers::FAILED_AT).unwrap();
        assert!(
            OffsetDateTime::parse(&failed_at, &Rfc3339).is_ok(),
            "{failed_at}"
        );
    }

    fn dead_letter_properties(extra: &[(&str, AMQPValue)]) -> BasicProperties {
        let mut table = crate::message::text_headers(&[
            (headers::ERROR, "boom"),
            (headers::ERROR_KIND, "retries-exhausted"),
            (headers::FAILED_AT, "2026-11-22T10:00:00Z"),
            (headers::ORIGINAL_EXCHANGE, "order.paid"),
            (headers::ORIGINAL_ROUTING_KEY, ""),
            (headers::TRACEPARENT, "00-abc-def-01"),
            (headers::ERROR_TYPE, "provider-timeout"),
            (headers::ERROR_FINGERPRINT, "0123456789ab"),
            (headers::FAILED_HOST, "host-1"),
            (headers::FAILED_BY, "stock-worker/0.1.0"),
        ]);
        headers::set_integer(&mut table, headers::RETRY_COUNT, 5);
        headers::set_integer(&mut table, headers::ATTEMPTS, 6);
        headers::set_texts(&mut table, headers::ERROR_CAUSES, &["cause".to_owned()]);
        for (name, value) in extra {
            table.insert((*name).into(), value.clone());
        }
        BasicProperties::default()
            .with_message_id("m-1".into())
            .with_correlation_id("order-1".into())
            .with_type("order.paid".into())
            .with_headers(table)
    }

    #[test]
    fn the_copy_goes_to_the_source_queue_with_a_clean_failure_record() {
        let props = dead_letter_properties(&[
            (
                headers::SOURCE_QUEUE,
                AMQPValue::LongString(LongString::from("stock.order-paid")),
            ),
            ("x-death", AMQPValue::Boolean(true)),
            ("x-first-death-reason", AMQPValue::Boolean(true)),
        ]);
        let copy = replay(b"{\"a\":1}", &props, &Naming::default(), "stock.order-paid");
        assert_eq!(
            copy.exchange, "",
            "never through the original (fanout) exchange"
        );
        assert_eq!(copy.routing_key, "stock.order-paid");
        assert_eq!(copy.body, b"{\"a\":1}");
        assert_eq!(copy.message_id(), Some("m-1"));
        assert_eq!(
            copy.properties
                .correlation_id()
                .as_ref()
                .map(|c| c.as_str()),
            Some("order-1")
        );
        let h = copy.properties.headers().clone().unwrap();
        for gone in [
            "x-death",
            "x-first-death-reason",
            "error",
            "error-kind",
            "failed-at",
            "error-type",
            "error-causes",
            "error-fingerprint",
            "failed-host",
            "failed-by",
            "attempts",
        ] {
            assert!(!h.contains_key(gone), "{gone} must be dropped");
        }
        assert_eq!(headers::integer(Some(&h), headers::RETRY_COUNT), Some(0));
        assert_eq!(headers::integer(Some(&h), headers::REPLAY_COUNT), Some(1));
        for kept in [
            headers::ORIGINAL_EXCHANGE,
            headers::ORIGINAL_ROUTING_KEY,
            headers::SOURCE_QUEUE,
            headers::TRACEPARENT,
        ] {
            assert!(h.contains_key(kept), "{kept} must be kept");
        }
    }

    #[test]
    fn replay_count_goes_up_and_the_fallback_queue_is_the_target_without_source_queue() {
        let props = dead_letter_properties(&[(headers::REPLAY_COUNT, AMQPValue::LongLongInt(2))]);
        let copy = replay(b"x", &props, &Naming::default(), "stock.order-paid");
        assert_eq!(copy.routing_key, "stock.order-paid");
        let h = copy.properties.headers().clone().unwrap();
        assert_eq!(headers::integer(Some(&h), headers::REPLAY_COUNT), Some(3));
    }

    #[test]
    fn another_naming_writes_reads_and_clears_its_own_headers_and_queues() {
        let acme = Naming::default()
            .with_header_prefix("acme-")
            .with_retry_infix("_wait_")
            .with_dead_letter_suffix("_error");
        let queue = QueueSpec::new("billing")
            .with_naming(acme.clone())
            .with_dead_letter_exchange("acme.dlx");
        let d = delivery("acme", "invoice.due", FieldTable::default());
        let retried = retry(&d, &queue, 1, Some((&failure("first", &[]), &by())));
        assert_eq!(retried.routing_key, "billing_wait_1");
        let h = retried.properties.headers().clone().unwrap();
        assert_eq!(headers::integer(Some(&h), "acme-retry-count"), Some(1));
        assert_eq!(
            headers::text(Some(&h), "acme-error").as_deref(),
            Some("first")
        );
        assert!(!h.contains_key(headers::RETRY_COUNT) && !h.contains_key(headers::ERROR));

        let back = delivery("", "billing", h);
        let dead = dead_letter(
            &back,
            &queue,
            DeadLetterReason::RetriesExhausted,
            Some((&failure("second", &[]), &by())),
        );
        assert_eq!(dead.exchange, "acme.dlx");
        let h = dead.properties.headers().clone().unwrap();
        assert_eq!(headers::integer(Some(&h), "acme-retry-count"), Some(1));
        assert_eq!(headers::integer(Some(&h), "acme-attempts"), Some(2));
        assert_eq!(
            headers::text(Some(&h), "acme-original-exchange").as_deref(),
            Some("acme")
        );

        let replayed = replay(&dead.body, &dead.properties, &acme, "unused");
        assert_eq!(replayed.routing_key, "billing", "from acme-source-queue");
        let h = replayed.properties.headers().clone().unwrap();
        assert_eq!(headers::integer(Some(&h), "acme-replay-count"), Some(1));
        assert_eq!(headers::integer(Some(&h), "acme-retry-count"), Some(0));
        for dropped in [
            "acme-error",
            "acme-error-kind",
            "acme-failed-at",
            "acme-attempts",
        ] {
            assert!(!h.contains_key(dropped), "{dropped} is dropped on replay");
        }
    }
}
