//! The fixture every CLI test shares: a vhost with the system's topology, the real `orderflow`
//! binary run on it, dead letters made the way the library makes them, and queue counts.
#![allow(dead_code, missing_docs)]

use broker::headers;
use broker::{RetryPolicy, topology::DEAD_LETTER_EXCHANGE};
use contracts::names::queues::PAYMENT_ORDER_CREATED;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation};
use std::process::{Output, Stdio};
use std::time::Duration;
use testkit::inspect::{Inspector, Taken};
use testkit::{Endpoint, TestVhost, eventually};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

pub const QUEUE: &str = PAYMENT_ORDER_CREATED;
pub const DLQ: &str = "payment.order-created.dlq";
pub const WAIT: Duration = Duration::from_secs(15);

/// A vhost with the whole system's topology and an inspector on it.
pub struct Fixture {
    pub vhost: TestVhost,
    pub inspector: Inspector,
}

impl Fixture {
    pub async fn new() -> Self {
        let vhost = TestVhost::new().await;
        let inspector = Inspector::connect(&vhost.url).await.unwrap();
        contracts::topology::system(&RetryPolicy::default())
            .declare(
                inspector.channel(),
                broker::detect_version(&vhost.url).await.unwrap(),
            )
            .await
            .unwrap();
        inspector
            .channel()
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        Self { vhost, inspector }
    }

    /// Runs `orderflow <args>` on this vhost.
    pub async fn orderflow(&self, args: &[&str]) -> Output {
        self.orderflow_with_stdin(args, b"").await
    }

    pub async fn orderflow_with_stdin(&self, args: &[&str], stdin: &[u8]) -> Output {
        self.orderflow_with(args, stdin, &[]).await
    }

    /// Runs `orderflow <args>` on this vhost with `stdin` and extra environment variables.
    pub async fn orderflow_with(
        &self,
        args: &[&str],
        stdin: &[u8],
        envs: &[(&str, &str)],
    ) -> Output {
        let endpoint = Endpoint::shared().await;
        let mut child = Command::new(env!("CARGO_BIN_EXE_orderflow"))
            .args(["--amqp-url", &self.vhost.url])
            .args(["--management-url", &endpoint.management_api])
            .args(args)
            .envs(envs.iter().copied())
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the orderflow binary runs");
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin).await.unwrap();
        drop(input);
        tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("orderflow finishes within 60 s")
            .unwrap()
    }

    /// Publishes (confirmed) `message` to `exchange` with `routing_key`.
    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
    ) {
        let confirmation = self
            .inspector
            .channel()
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                body,
                properties.with_delivery_mode(2),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(
            matches!(confirmation, Confirmation::Ack(None)),
            "test input to '{exchange}'/'{routing_key}' was stored: {confirmation:?}"
        );
    }

    /// Puts a dead letter of `source` into its DLQ the way the library does.
    pub async fn dead_letter(&self, source: &str, message_id: &str, body: &[u8]) {
        self.publish(
            DEAD_LETTER_EXCHANGE,
            source,
            body,
            dead_letter_properties(source, message_id),
        )
        .await;
    }

    /// Puts `letter` into the DLQ of its source queue.
    pub async fn put(&self, letter: &Letter) {
        self.publish(
            DEAD_LETTER_EXCHANGE,
            &letter.source,
            &letter.body,
            letter.properties(),
        )
        .await;
    }

    /// The sorted message ids of everything in `queue` (taken).
    pub async fn ids(&mut self, queue: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .take_all(queue)
            .await
            .iter()
            .map(|t| t.properties.message_id().clone().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    }

    pub async fn count(&mut self, queue: &str) -> u32 {
        self.inspector.count(queue).await.unwrap()
    }

    /// Waits until the existing `queue` holds exactly `n` messages.
    pub async fn expect_count(&mut self, queue: &str, n: u32) {
        let channel = self.inspector.channel().clone();
        let waited = eventually(&format!("{n} messages in {queue}"), WAIT, || {
            let channel = channel.clone();
            async move { (ready(&channel, queue).await == n).then_some(()) }
        })
        .await;
        if waited.is_err() {
            let now = self.count(queue).await;
            panic!("{queue} holds {now} messages, expected {n}");
        }
    }

    pub async fn take_all(&mut self, queue: &str) -> Vec<Taken> {
        self.inspector.take_all(queue).await.unwrap()
    }
}

/// Messages ready in the existing `queue`.
pub async fn ready(channel: &Channel, queue: &str) -> u32 {
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await
        .unwrap_or_else(|err| panic!("{queue} exists: {err}"))
        .message_count()
}

pub fn dead_letter_properties(source: &str, message_id: &str) -> BasicProperties {
    let mut table = broker::text_headers(&[
        (headers::ERROR, "card processor timed out"),
        (headers::ERROR_KIND, "retries-exhausted"),
        (headers::FAILED_AT, "2026-11-22T10:00:00Z"),
        (headers::SOURCE_QUEUE, source),
        (headers::ORIGINAL_EXCHANGE, "orders"),
        (headers::ORIGINAL_ROUTING_KEY, "order.created"),
        (
            headers::TRACEPARENT,
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ),
    ]);
    headers::set_integer(&mut table, headers::RETRY_COUNT, 5);
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_message_id(message_id.into())
        .with_correlation_id("order-42".into())
        .with_type("order.created".into())
        .with_app_id("order-worker".into())
        .with_headers(table)
}

pub fn body(order: &str) -> Vec<u8> {
    format!(r#"{{"order_id":"{order}","customer_id":"c-42","total_cents":2500}}"#).into_bytes()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "orderflow failed: {}\nstdout: {}",
        stderr(output),
        stdout(output)
    );
}

pub fn assert_failure(output: &Output) {
    assert!(
        !output.status.success(),
        "orderflow should have failed; stdout: {}",
        stdout(output)
    );
    let message = stderr(output);
    assert!(
        message.starts_with("error: ") && message.trim_end().lines().count() == 1,
        "one clear line on stderr, got {message:?}"
    );
}

/// The message count `orderflow dlq list` prints for `dlq`.
pub fn listed_count(list: &str, dlq: &str) -> Option<u32> {
    list.lines().find_map(|line| {
        let mut cells = line.split_whitespace();
        (cells.next() == Some(dlq)).then(|| cells.next()?.parse().ok())?
    })
}

/// A dead letter as the library writes one, with the failure record a test varies.
#[derive(Debug, Clone)]
pub struct Letter {
    pub source: String,
    pub message_id: String,
    pub order: String,
    pub event_type: String,
    pub error: String,
    pub error_kind: String,
    /// `None` for a dead letter from before `error-type` and `error-fingerprint`.
    pub error_type: Option<String>,
    /// How long ago it failed.
    pub age: Duration,
    pub body: Vec<u8>,
}

impl Letter {
    /// A `retries-exhausted` `order.created` of `QUEUE` that failed a minute ago with a
    /// `provider-unavailable` error naming its order.
    pub fn new(message_id: &str, order: &str) -> Self {
        Self {
            source: QUEUE.to_owned(),
            message_id: message_id.to_owned(),
            order: order.to_owned(),
            event_type: "order.created".to_owned(),
            error: format!("provider unavailable for order {order}"),
            error_kind: "retries-exhausted".to_owned(),
            error_type: Some("provider-unavailable".to_owned()),
            age: Duration::from_secs(60),
            body: body(order),
        }
    }

    /// The group the library gives it.
    pub fn fingerprint(&self) -> String {
        broker::fingerprint(
            self.error_type.as_deref().unwrap_or(&self.error_kind),
            &self.error,
        )
    }

    pub fn properties(&self) -> BasicProperties {
        let failed_at =
            humantime::format_rfc3339_seconds(std::time::SystemTime::now() - self.age).to_string();
        let mut table = broker::text_headers(&[
            (headers::ERROR, self.error.as_str()),
            (headers::ERROR_KIND, self.error_kind.as_str()),
            (headers::FAILED_AT, failed_at.as_str()),
            (headers::SOURCE_QUEUE, self.source.as_str()),
            (headers::ORIGINAL_EXCHANGE, "orders"),
            (headers::ORIGINAL_ROUTING_KEY, "order.created"),
        ]);
        if let Some(error_type) = &self.error_type {
            headers::set_text(&mut table, headers::ERROR_TYPE, error_type);
            headers::set_text(&mut table, headers::ERROR_FINGERPRINT, &self.fingerprint());
            headers::set_text(&mut table, headers::FAILED_BY, "payment-worker/0.1.0");
            headers::set_integer(&mut table, headers::ATTEMPTS, 6);
        }
        headers::set_integer(&mut table, headers::RETRY_COUNT, 5);
        BasicProperties::default()
            .with_content_type("application/json".into())
            .with_message_id(self.message_id.as_str().into())
            .with_correlation_id(self.order.as_str().into())
            .with_type(self.event_type.as_str().into())
            .with_app_id("order-worker".into())
            .with_headers(table)
    }
}

/// Asserts that `output` succeeded and said `text` on stdout.
pub fn assert_says(output: &Output, text: &str) {
    assert_success(output);
    let said = stdout(output);
    assert!(said.contains(text), "missing {text:?} in\n{said}");
}

/// The JSON objects `output` printed, one per line.
pub fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    stdout(output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: {line:?}")))
        .collect()
}

/// The exit code of `output`.
pub fn code(output: &Output) -> i32 {
    output.status.code().expect("exited, not killed")
}
