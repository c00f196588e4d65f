//! Retries, dead letters and fan-out against a real broker, each test in its own vhost.

mod common;

use common::{Recorder, Running, TestEvent, all_succeeded, config, flaky_handler};
use lapin::BasicProperties;
use lapin::options::BasicPublishOptions;
use orderflow_broker::{
    ConsumerSpec, ExchangeType, QueueSpec, RetryPolicy, Runtime, Topology, headers,
};
use std::time::Duration;
use testkit::inspect::Inspector;
use testkit::{TestVhost, eventually};

fn topology() -> Topology {
    Topology::default().exchange(common::EXCHANGE, ExchangeType::Direct)
}

fn queue(name: &str, policy: RetryPolicy) -> QueueSpec {
    QueueSpec::new(name)
        .bind(common::EXCHANGE, common::ROUTING_KEY)
        .with_retry(policy)
}

/// A running runtime with one consumer of queue `name` whose handler fails each event
/// `fail_times` times, recording every call in `recorder`.
async fn start_flaky(url: &str, name: &str, policy: RetryPolicy, recorder: &Recorder) -> Running {
    let runtime = Runtime::new(config(url))
        .unwrap()
        .with_topology(topology())
        .with_consumer(ConsumerSpec::new(
            queue(name, policy),
            flaky_handler(recorder.clone(), Duration::ZERO),
        ));
    Running::start(runtime).await
}

#[tokio::test]
async fn transient_failures_come_back_after_each_tier_delay() {
    let vhost = TestVhost::new().await;
    let recorder = Recorder::default();
    let policy = RetryPolicy::default()
        .with_max_retries(3)
        .with_initial_delay(Duration::from_millis(500))
        .with_multiplier(2.0);
    let running = start_flaky(&vhost.url, "svc.flaky", policy.clone(), &recorder).await;
    running
        .publisher
        .publish_event(&TestEvent {
            id: 1,
            fail_times: 2,
        })
        .await
        .unwrap();
    all_succeeded(&recorder, 1..=1, Duration::from_secs(20)).await;

    let calls = recorder.calls_for(1);
    let seen: Vec<u32> = calls.iter().map(|c| c.retry_count).collect();
    assert_eq!(seen, [0, 1, 2], "the handler sees retry-count 0, 1, 2");
    assert_eq!(calls.iter().filter(|c| c.succeeded).count(), 1);
    // Each retry waited at least its tier's TTL, and not much longer.
    let tolerance = Duration::from_millis(1500);
    for (n, pair) in calls.windows(2).enumerate() {
        let waited = pair[1].at - pair[0].at;
        let tier_delay = policy.delay(u32::try_from(n).unwrap() + 1);
        println!(
            "retry {}: tier delay {tier_delay:?}, observed {waited:?}",
            n + 1
        );
        assert!(
            waited >= tier_delay,
            "retry {} came back after {waited:?} < {tier_delay:?}",
            n + 1
        );
        assert!(
            waited <= tier_delay + tolerance,
            "retry {} took {waited:?}",
            n + 1
        );
    }
    let mut inspector = Inspector::connect(&vhost.url).await.unwrap();
    assert_eq!(inspector.count("svc.flaky.dlq").await.unwrap(), 0);
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_waiting_retry_never_blocks_the_queue() {
    let vhost = TestVhost::new().await;
    let recorder = Recorder::default();
    let policy = RetryPolicy::default()
        .with_max_retries(1)
        .with_initial_delay(Duration::from_secs(15));
    let runtime = Runtime::new(config(&vhost.url))
        .unwrap()
        .with_topology(topology())
        .with_consumer(
            ConsumerSpec::new(
                queue("svc.busy", policy),
                flaky_handler(recorder.clone(), Duration::ZERO),
            )
            .with_prefetch(100)
            .with_concurrency(16),
        );
    let running = Running::start(runtime).await;
    running
        .publisher
        .publish_event(&TestEvent {
            id: 0,
            fail_times: 1,
        })
        .await
        .unwrap();
    let watcher = recorder.clone();
    eventually("first attempt failed", Duration::from_secs(10), || {
        let n = watcher.calls_for(0).len();
        async move { (n == 1).then_some(()) }
    })
    .await
    .unwrap();

    let publishes = (1..=1000).map(|id| {
        let publisher = running.publisher.clone();
        async move {
            publisher
                .publish_event(&TestEvent { id, fail_times: 0 })
                .await
        }
    });
    for result in futures_util::future::join_all(publishes).await {
        result.unwrap();
    }
    all_succeeded(&recorder, 1..=1000, Duration::from_secs(60)).await;

    let retried = recorder.calls_for(0);
    assert_eq!(
        retried.len(),
        1,
        "1,000 messages were handled while the failed one still waited in its retry tier"
    );
    let mut inspector = Inspector::connect(&vhost.url).await.unwrap();
    assert_eq!(inspector.count("svc.busy.retry.1").await.unwrap(), 1);
    all_succeeded(&recorder, 0..=0, Duration::from_secs(30)).await;
    assert_eq!(recorder.calls_for(0).last().unwrap().retry_count, 1);
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn always_failing_ends_in_the_dlq_with_every_header_and_the_original_body() {
    let vhost = TestVhost::new().await;
    let recorder = Recorder::default();
    let policy = RetryPolicy::default()
        .with_max_retries(3)
        .with_initial_delay(Duration::from_millis(100))
        .with_multiplier(2.0);
    let running = start_flaky(&vhost.url, "svc.doomed", policy, &recorder).await;
    // Odd spacing proves the dead letter is the original bytes, not a re-serialization.
    let body = br#"{ "id": 9,   "fail_times": 1000 }"#.to_vec();
    let mut message = orderflow_broker::Outgoing::event(
        &TestEvent {
            id: 9,
            fail_times: 1000,
        },
        "test",
    )
    .unwrap();
    message.body = body.clone();
    let message_id = message.message_id().unwrap().to_owned();
    running.publisher.publish(&message).await.unwrap();

    let mut inspector = Inspector::connect(&vhost.url).await.unwrap();
    eventually("dead letter", Duration::from_secs(20), || {
        let calls = recorder.calls_for(9).len();
        async move { (calls == 4).then_some(()) }
    })
    .await
    .unwrap();
    let dead = eventually_take(&mut inspector, "svc.doomed.dlq", 1).await;
    let dead = &dead[0];
    assert_eq!(dead.body, body, "body is byte-identical");
    assert_eq!(dead.header_int(headers::RETRY_COUNT), Some(3));
    assert_eq!(
        dead.header(headers::ERROR_KIND).as_deref(),
        Some("retries-exhausted")
    );
    assert_eq!(
        dead.header(headers::ERROR).as_deref(),
        Some("transient failure 4 of 1000")
    );
    // The failure record: what failed, where, after how many deliveries, and its group.
    assert_eq!(dead.header(headers::ERROR_TYPE).as_deref(), Some("retry"));
    assert_eq!(
        dead.header(headers::ERROR_FINGERPRINT),
        Some(orderflow_broker::fingerprint(
            "retry",
            "transient failure 1 of 1000"
        )),
        "the same failure as the first attempt's, whatever its numbers"
    );
    assert_eq!(dead.header_int(headers::ATTEMPTS), Some(4));
    assert_eq!(
        dead.header(headers::FAILED_BY),
        Some(format!("broker-tests/{}", env!("CARGO_PKG_VERSION")))
    );
    let host = config(&vhost.url).host;
    assert!(!host.is_empty() && host != "unknown", "{host}");
    assert_eq!(dead.header(headers::FAILED_HOST), Some(host));
    assert_eq!(dead.header(headers::ERROR_CAUSES), None, "no causes");
    assert_eq!(
        dead.header(headers::SOURCE_QUEUE).as_deref(),
        Some("svc.doomed")
    );
    assert_eq!(
        dead.header(headers::ORIGINAL_EXCHANGE).as_deref(),
        Some(common::EXCHANGE)
    );
    assert_eq!(
        dead.header(headers::ORIGINAL_ROUTING_KEY).as_deref(),
        Some(common::ROUTING_KEY)
    );
    let failed_at = dead.header(headers::FAILED_AT).unwrap();
    assert!(
        time::OffsetDateTime::parse(&failed_at, &time::format_description::well_known::Rfc3339)
            .is_ok()
    );
    assert_eq!(
        dead.properties.message_id().as_ref().unwrap().as_str(),
        message_id
    );
    assert_eq!(
        dead.properties.correlation_id().as_ref().unwrap().as_str(),
        "order-9"
    );
    assert_eq!(
        dead.properties.kind().as_ref().unwrap().as_str(),
        "test.event"
    );
    assert_eq!(*dead.properties.delivery_mode(), Some(2));
    assert_eq!(
        dead.header(headers::TRACEPARENT),
        headers::text(message.properties.headers().as_ref(), headers::TRACEPARENT),
        "the dead letter keeps the trace"
    );
    let retry_counts: Vec<u32> = recorder
        .calls_for(9)
        .iter()
        .map(|c| c.retry_count)
        .collect();
    assert_eq!(retry_counts, [0, 1, 2, 3]);
    for tier in 1..=3 {
        assert_eq!(
            inspector
                .count(&format!("svc.doomed.retry.{tier}"))
                .await
                .unwrap(),
            0
        );
    }
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_body_larger_than_a_frame_is_retried_and_dead_lettered_intact() {
    let vhost = TestVhost::new().await;
    let recorder = Recorder::default();
    let policy = RetryPolicy::default()
        .with_max_retries(1)
        .with_initial_delay(Duration::from_millis(100));
    let running = start_flaky(&vhost.url, "svc.big", policy, &recorder).await;
    // Four frames' worth: the publish, the retry copy and the dead letter are each split.
    let padding = "x".repeat(4 * orderflow_broker::DEFAULT_FRAME_MAX as usize);
    let body = format!(r#"{{"id": 5, "fail_times": 1000, "padding": "{padding}"}}"#).into_bytes();
    let mut message = orderflow_broker::Outgoing::event(
        &TestEvent {
            id: 5,
            fail_times: 1000,
        },
        "test",
    )
    .unwrap();
    message.body = body.clone();
    running.publisher.publish(&message).await.unwrap();

    let mut inspector = Inspector::connect(&vhost.url).await.unwrap();
    let dead = eventually_take(&mut inspector, "svc.big.dlq", 1).await;
    assert!(dead[0].body == body, "the dead letter is the original body");
    assert_eq!(dead[0].header_int(headers::RETRY_COUNT), Some(1));
    let retry_counts: Vec<u32> = recorder
        .calls_for(5)
        .iter()
        .map(|c| c.retry_count)
        .collect();
    assert_eq!(
        retry_counts,
        [0, 1],
        "handled once, then once more from the retry tier"
    );
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn rejection_and_malformed_input_go_straight_to_the_dlq_and_the_consumer_goes_on() {
    let vhost = TestVhost::new().await;
    let recorder = Recorder::default();
    let calls = recorder.clone();
    let handler = move |msg: orderflow_broker::Message<TestEvent>| {
        let calls = calls.clone();
        async move {
            calls.record(common::Call {
                id: msg.event.id,
                retry_count: msg.meta.retry_count,
                at: std::time::Instant::now(),
                succeeded: msg.event.id != 13,
            });
            if msg.event.id == 13 {
                let cause = std::io::Error::other("card 4242 expired");
                let error = orderflow_broker::BoxError::from(Expired(cause));
                return Err(orderflow_broker::HandlerError::reject(error).with_type("card-expired"));
            }
            Ok(())
        }
    };
    let runtime = Runtime::new(config(&vhost.url))
        .unwrap()
        .with_topology(topology())
        .with_consumer(ConsumerSpec::new(
            queue("svc.strict", RetryPolicy::default()),
            handler,
        ));
    let running = Running::start(runtime).await;
    let mut inspector = Inspector::connect(&vhost.url).await.unwrap();

    running
        .publisher
        .publish_event(&TestEvent {
            id: 13,
            fail_times: 0,
        })
        .await
        .unwrap();
    let rejected = eventually_take(&mut inspector, "svc.strict.dlq", 1).await;
    assert_eq!(rejected[0].header_int(headers::RETRY_COUNT), Some(0));
    assert_eq!(
        rejected[0].header(headers::ERROR_KIND).as_deref(),
        Some("rejected")
    );
    assert_eq!(
        rejected[0].header(headers::ERROR).as_deref(),
        Some("order 13 can never be paid")
    );
    assert_eq!(
        rejected[0].header(headers::ERROR_TYPE).as_deref(),
        Some("card-expired")
    );
    assert_eq!(
        orderflow_broker::headers::texts(
            rejected[0].properties.headers().as_ref(),
            headers::ERROR_CAUSES
        ),
        ["card 4242 expired"]
    );
    assert_eq!(rejected[0].header_int(headers::ATTEMPTS), Some(1));
    assert_eq!(
        recorder.calls_for(13).len(),
        1,
        "a rejection is never retried"
    );

    let garbage = b"{\"id\": 1, \"fail_times\": \"not a number\"".to_vec();
    inspector
        .channel()
        .basic_publish(
            common::EXCHANGE.into(),
            common::ROUTING_KEY.into(),
            BasicPublishOptions::default(),
            &garbage,
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    running
        .publisher
        .publish_event(&TestEvent {
            id: 2,
            fail_times: 0,
        })
        .await
        .unwrap();
    all_succeeded(&recorder, 2..=2, Duration::from_secs(10)).await;
    let malformed = eventually_take(&mut inspector, "svc.strict.dlq", 1).await;
    assert_eq!(
        malformed[0].body, garbage,
        "malformed body kept byte for byte"
    );
    assert_eq!(
        malformed[0].header(headers::ERROR_KIND).as_deref(),
        Some("malformed")
    );
    assert!(
        malformed[0]
            .header(headers::ERROR)
            .unwrap()
            .starts_with("cannot decode body")
    );
    assert_eq!(
        malformed[0].header(headers::ERROR_TYPE).as_deref(),
        Some("malformed")
    );
    assert_eq!(malformed[0].header_int(headers::RETRY_COUNT), Some(0));
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_retry_on_one_fanout_subscriber_is_never_seen_by_the_other() {
    let vhost = TestVhost::new().await;
    let fanout = "test.fanout";
    let left = Recorder::default();
    let right = Recorder::default();
    let policy = RetryPolicy::default()
        .with_max_retries(2)
        .with_initial_delay(Duration::from_millis(200));
    let failing_once = {
        let left = left.clone();
        move |msg: orderflow_broker::Message<TestEvent>| {
            let left = left.clone();
            async move {
                let succeeded = msg.meta.retry_count >= 1;
                left.record(common::Call {
                    id: msg.event.id,
                    retry_count: msg.meta.retry_count,
                    at: std::time::Instant::now(),
                    succeeded,
                });
                if succeeded {
                    Ok(())
                } else {
                    Err(orderflow_broker::HandlerError::retry("left fails once"))
                }
            }
        }
    };
    let runtime = Runtime::new(config(&vhost.url))
        .unwrap()
        .with_topology(Topology::default().exchange(fanout, ExchangeType::Fanout))
        .with_consumer(ConsumerSpec::new(
            QueueSpec::new("left.paid")
                .bind(fanout, "")
                .with_retry(policy.clone()),
            failing_once,
        ))
        .with_consumer(ConsumerSpec::new(
            QueueSpec::new("right.paid")
                .bind(fanout, "")
                .with_retry(policy),
            flaky_handler(right.clone(), Duration::ZERO),
        ));
    let running = Running::start(runtime).await;
    let mut message = orderflow_broker::Outgoing::event(
        &TestEvent {
            id: 5,
            fail_times: 0,
        },
        "test",
    )
    .unwrap();
    message.exchange = fanout.to_owned();
    message.routing_key = String::new();
    running.publisher.publish(&message).await.unwrap();

    all_succeeded(&left, 5..=5, Duration::from_secs(10)).await;
    all_succeeded(&right, 5..=5, Duration::from_secs(10)).await;
    // The left queue's retry has come back and been handled; only then count the right side.
    assert_eq!(left.calls_for(5).len(), 2);
    assert_eq!(
        right.calls_for(5).len(),
        1,
        "the other subscriber saw the message exactly once"
    );
    let mut inspector = Inspector::connect(&vhost.url).await.unwrap();
    assert_eq!(inspector.count("right.paid").await.unwrap(), 0);
    running.shutdown().await.unwrap();
}

/// A rejection with a cause, as a handler's own error type would carry one.
#[derive(Debug)]
struct Expired(std::io::Error);

impl std::fmt::Display for Expired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("order 13 can never be paid")
    }
}

impl std::error::Error for Expired {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Takes `n` messages from `queue`, waiting for them to arrive.
async fn eventually_take(
    inspector: &mut Inspector,
    queue: &str,
    n: usize,
) -> Vec<testkit::inspect::Taken> {
    let mut taken = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while taken.len() < n {
        taken.extend(inspector.take_all(queue).await.unwrap());
        assert!(
            std::time::Instant::now() < deadline,
            "only {} of {n} messages arrived in {queue}",
            taken.len()
        );
        if taken.len() < n {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert_eq!(taken.len(), n, "exactly {n} in {queue}");
    taken
}

/// The original of a copy that cannot be stored goes back after a pause that grows with each
/// return, through the primitive that counts towards the delivery limit (`basic.reject`), so the
/// limit dead-letters it in seconds: never in milliseconds, and never never.
#[tokio::test]
async fn a_retry_copy_that_cannot_be_stored_requeues_the_original_and_loses_nothing() {
    let vhost = TestVhost::new().await;
    let recorder = Recorder::default();
    let runtime = Runtime::new(config(&vhost.url))
        .unwrap()
        .with_topology(topology())
        .with_consumer(ConsumerSpec::new(
            queue("svc.unstorable", RetryPolicy::default()).with_delivery_limit(Some(3)),
            flaky_handler(recorder.clone(), Duration::ZERO),
        ));
    let running = Running::start(runtime).await;
    let inspector = Inspector::connect(&vhost.url).await.unwrap();
    // Without its tier a retry copy is unroutable: the original must go back, not be acked.
    inspector
        .channel()
        .queue_delete(
            "svc.unstorable.retry.1".into(),
            lapin::options::QueueDeleteOptions::default(),
        )
        .await
        .unwrap();
    // Id 0 fails; the others succeed around it, their acks coalesced past its open tag.
    for id in 0..50 {
        let fail_times = u32::from(id == 0);
        running
            .publisher
            .publish_event(&TestEvent { id, fail_times })
            .await
            .unwrap();
    }
    all_succeeded(&recorder, 1..50, Duration::from_secs(30)).await;
    // Requeued on every failed copy, id 0 returns until the queue's delivery limit makes the
    // broker dead-letter it.
    let dead = eventually(
        "dead-lettered by the broker",
        Duration::from_secs(30),
        || {
            let inspector = &inspector;
            async move {
                let taken = inspector.take_all("svc.unstorable.dlq").await.ok()?;
                (!taken.is_empty()).then_some(taken)
            }
        },
    )
    .await
    .unwrap();
    running.shutdown().await.unwrap();

    assert_eq!(dead.len(), 1);
    assert_eq!(
        orderflow_broker::headers::death_reason(dead[0].properties.headers().as_ref()).as_deref(),
        Some("delivery_limit")
    );
    let failing = recorder.calls_for(0);
    assert!(failing.len() >= 3, "requeued, not acked: {failing:?}");
    // The pauses before the first returns: at least 250 ms, then 500 ms.
    for (gap, least) in failing.windows(2).zip([250, 500]) {
        let waited = gap[1].at - gap[0].at;
        assert!(
            waited >= Duration::from_millis(least),
            "returned after {waited:?}, expected at least {least} ms"
        );
    }
    assert!(
        failing
            .iter()
            .all(|call| call.retry_count == 0 && !call.succeeded)
    );
    for id in 1..50 {
        assert_eq!(recorder.calls_for(id).len(), 1, "id {id} handled once");
    }
    let mut inspector = inspector;
    assert_eq!(inspector.count("svc.unstorable").await.unwrap(), 0);
}

/// A consumer with its own decoder (here four big-endian bytes) takes bodies that are not JSON;
/// one its decoder refuses is dead-lettered as malformed with the decoder's reason, byte for byte.
#[tokio::test]
async fn a_consumer_decodes_bodies_with_its_own_decoder_and_dead_letters_what_it_refuses() {
    let vhost = TestVhost::new().await;
    let (seen, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let decoder = |body: &[u8]| -> Result<u32, orderflow_broker::BoxError> {
        Ok(u32::from_be_bytes(
            body.try_into()
                .map_err(|_| format!("{} bytes, not 4", body.len()))?,
        ))
    };
    let handler = move |msg: orderflow_broker::Message<u32>| {
        let seen = seen.clone();
        async move {
            let _ = seen.send(msg.event);
            Ok(())
        }
    };
    let runtime = Runtime::new(config(&vhost.url))
        .unwrap()
        .with_topology(topology())
        .with_consumer(ConsumerSpec::with_decoder(
            queue("svc.binary", RetryPolicy::default()),
            decoder,
            handler,
        ));
    let running = Running::start(runtime).await;
    let message = |body: Vec<u8>| {
        orderflow_broker::Outgoing::event(
            &TestEvent {
                id: 1,
                fail_times: 0,
            },
            "test",
        )
        .unwrap()
        .with_body("application/octet-stream", body)
    };
    running
        .publisher
        .publish(&message(7u32.to_be_bytes().to_vec()))
        .await
        .unwrap();
    running
        .publisher
        .publish(&message(vec![1, 2, 3]))
        .await
        .unwrap();
    let decoded = tokio::time::timeout(Duration::from_secs(20), seen_rx.recv()).await;
    assert_eq!(decoded.unwrap(), Some(7));
    let mut inspector = Inspector::connect(&vhost.url).await.unwrap();
    let dead = eventually_take(&mut inspector, "svc.binary.dlq", 1).await;
    assert_eq!(dead[0].body, [1, 2, 3], "the body as it came");
    assert_eq!(dead[0].header("error-kind").as_deref(), Some("malformed"));
    let error = dead[0].header("error").unwrap_or_default();
    assert!(error.contains("3 bytes, not 4"), "{error}");
    assert!(
        seen_rx.try_recv().is_err(),
        "the refused body never reached the handler"
    );
    running.shutdown().await.unwrap();
}

/// A queue that names its own dead-letter exchange gets its dead letters through it; the
/// library's default one is not declared for it.
#[tokio::test]
async fn a_queue_with_its_own_dead_letter_exchange_dead_letters_through_it() {
    let vhost = TestVhost::new().await;
    let reject = |_: orderflow_broker::Message<TestEvent>| async {
        Err(orderflow_broker::HandlerError::reject("never"))
    };
    let spec = queue("svc.own-dlx", RetryPolicy::default()).with_dead_letter_exchange("acme.dead");
    let runtime = Runtime::new(config(&vhost.url))
        .unwrap()
        .with_topology(topology().queue(spec.clone()))
        .with_consumer(ConsumerSpec::new(spec, reject));
    let running = Running::start(runtime).await;
    running
        .publisher
        .publish_event(&TestEvent {
            id: 9,
            fail_times: 0,
        })
        .await
        .unwrap();
    let mut inspector = Inspector::connect(&vhost.url).await.unwrap();
    // Through `acme.dead` (the default exchange is not declared: it would be unroutable).
    let dead = eventually_take(&mut inspector, "svc.own-dlx.dlq", 1).await;
    assert_eq!(dead[0].header("error-kind").as_deref(), Some("rejected"));
    let exists = |exchange: &'static str| {
        let url = vhost.url.clone();
        async move {
            let connection =
                lapin::Connection::connect(&url, lapin::ConnectionProperties::default())
                    .await
                    .unwrap();
            let channel = connection.create_channel().await.unwrap();
            let passive = lapin::options::ExchangeDeclareOptions {
                passive: true,
                ..Default::default()
            };
            let found = channel
                .exchange_declare(
                    exchange.into(),
                    lapin::ExchangeKind::Direct,
                    passive,
                    lapin::types::FieldTable::default(),
                )
                .await
                .is_ok();
            let _ = connection.close(200, "checked".into()).await;
            found
        }
    };
    assert!(exists("acme.dead").await);
    assert!(
        !exists(orderflow_broker::topology::DEAD_LETTER_EXCHANGE).await,
        "the default dead-letter exchange is not declared for it"
    );
    running.shutdown().await.unwrap();
}

/// Another system's conventions: its own retry-tier and DLQ names and a header prefix. A message
/// that fails once and is then rejected goes through `billing_wait_1` and ends in
/// `billing_error` with prefixed headers only.
#[tokio::test]
async fn a_queue_with_its_own_naming_retries_and_dead_letters_under_its_names() {
    let vhost = TestVhost::new().await;
    let naming = orderflow_broker::Naming::default()
        .with_header_prefix("acme-")
        .with_retry_infix("_wait_")
        .with_dead_letter_suffix("_error");
    let (seen, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let handler = move |msg: orderflow_broker::Message<TestEvent>| {
        let seen = seen.clone();
        async move {
            let _ = seen.send((msg.meta.retry_count, msg.meta.headers.clone()));
            match msg.meta.retry_count {
                0 => Err(orderflow_broker::HandlerError::retry("once")),
                _ => Err(orderflow_broker::HandlerError::reject("then never")),
            }
        }
    };
    let retry = RetryPolicy::default()
        .with_max_retries(1)
        .with_initial_delay(Duration::from_millis(100));
    let spec = queue("billing", retry).with_naming(naming.clone());
    let runtime = Runtime::new(config(&vhost.url))
        .unwrap()
        .with_topology(topology().queue(spec.clone()))
        .with_consumer(ConsumerSpec::new(spec, handler));
    let running = Running::start(runtime).await;
    let mut inspector = Inspector::connect(&vhost.url).await.unwrap();
    for declared in ["billing", "billing_wait_1", "billing_error"] {
        inspector.count(declared).await.expect(declared);
    }
    running
        .publisher
        .publish_event(&TestEvent {
            id: 5,
            fail_times: 0,
        })
        .await
        .unwrap();
    let mut runs = Vec::new();
    for _ in 0..2 {
        let run = tokio::time::timeout(Duration::from_secs(20), seen_rx.recv()).await;
        runs.push(run.unwrap().unwrap());
    }
    assert_eq!(
        runs[1].0, 1,
        "the retry came back counted under acme-retry-count"
    );
    assert!(runs[1].1.contains_key("acme-error") && !runs[1].1.contains_key("error"));

    let dead = eventually_take(&mut inspector, "billing_error", 1).await;
    assert_eq!(
        dead[0].header("acme-error-kind").as_deref(),
        Some("rejected")
    );
    assert_eq!(dead[0].header("acme-error").as_deref(), Some("then never"));
    assert_eq!(
        dead[0].header("acme-source-queue").as_deref(),
        Some("billing")
    );
    for unprefixed in ["error-kind", "retry-count", "source-queue"] {
        assert_eq!(dead[0].header(unprefixed), None, "{unprefixed}");
    }
    running.shutdown().await.unwrap();
}
