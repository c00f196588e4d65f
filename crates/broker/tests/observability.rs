//! What the runtime tells an operator, against a real broker: the trace context, with
//! OpenTelemetry's SDK recording the spans (one trace from the first publish through a retry to
//! the handler's own publish, each hop the child of the one before), and the metrics under the
//! configured prefix.

mod common;

use common::{Running, TestEvent, config};
use opentelemetry::trace::{TraceContextExt, TraceId, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use orderflow_broker::{
    ConsumerSpec, ExchangeType, HandlerError, QueueSpec, RetryPolicy, Runtime, Topology,
};
use std::sync::OnceLock;
use std::time::Duration;
use testkit::inspect::Inspector;
use testkit::{TestVhost, eventually};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The spans every test of this binary records (each test looks only at its own trace). Every
/// test calls it first: the test kit's log subscriber, installed by whichever test gets there
/// first, would otherwise take the global slot.
fn exporter() -> &'static InMemorySpanExporter {
    static INSTALLED: OnceLock<(InMemorySpanExporter, SdkTracerProvider)> = OnceLock::new();
    &INSTALLED
        .get_or_init(|| {
            let exporter = InMemorySpanExporter::default();
            let provider = SdkTracerProvider::builder()
                .with_simple_exporter(exporter.clone())
                .build();
            opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
            tracing_subscriber::registry()
                .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
                .init();
            (exporter, provider)
        })
        .0
}

fn spans_of(trace: TraceId) -> Vec<SpanData> {
    let mut spans = exporter().get_finished_spans().unwrap();
    spans.retain(|span| span.span_context.trace_id() == trace);
    spans
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

#[tokio::test]
async fn a_retry_and_the_handlers_publish_continue_the_trace_of_the_first_publish() {
    exporter();
    let vhost = TestVhost::new().await;
    let inspector = Inspector::connect(&vhost.url).await.unwrap();
    inspector
        .channel()
        .queue_declare(
            "traced".into(),
            lapin::options::QueueDeclareOptions::default(),
            lapin::types::FieldTable::default(),
        )
        .await
        .unwrap();
    let runtime = Runtime::new(config(&vhost.url)).unwrap();
    let publisher = runtime.publisher();
    // Fails the first delivery (a retry), forwards the second.
    let forward = move |msg: orderflow_broker::Message<TestEvent>| {
        let publisher = publisher.clone();
        async move {
            if msg.meta.retry_count == 0 {
                return Err(HandlerError::retry("not yet"));
            }
            let mut next = orderflow_broker::Outgoing::event(&msg.event, "test")?;
            next.exchange = String::new();
            next.routing_key = "traced".to_owned();
            publisher.publish(&next).await?;
            Ok(())
        }
    };
    let policy = RetryPolicy::default().with_initial_delay(Duration::from_millis(200));
    let queue = QueueSpec::new("svc.traced")
        .bind(common::EXCHANGE, common::ROUTING_KEY)
        .with_retry(policy);
    let topology = Topology::default().exchange(common::EXCHANGE, ExchangeType::Direct);
    let running = Running::start(
        runtime
            .with_topology(topology)
            .with_consumer(ConsumerSpec::new(queue, forward)),
    )
    .await;

    let root = tracing::info_span!("test order");
    let trace = root.context().span().span_context().trace_id();
    let original = orderflow_broker::Outgoing::event(
        &TestEvent {
            id: 3,
            fail_times: 1,
        },
        "test",
    )
    .unwrap();
    running
        .publisher
        .publish(&original)
        .instrument(root.clone())
        .await
        .unwrap();
    drop(root);

    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let forwarded = loop {
        let taken = inspector.take_all("traced").await.unwrap();
        if !taken.is_empty() {
            break taken;
        }
        assert!(std::time::Instant::now() < deadline, "no forwarded message");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let traceparent = forwarded[0].header("traceparent").unwrap();
    assert!(
        traceparent.contains(&trace.to_string()),
        "the forwarded message carries the first publish's trace: {traceparent}"
    );

    let spans = eventually("both deliveries' spans", Duration::from_secs(20), || {
        let spans = spans_of(trace);
        let deliveries = spans
            .iter()
            .filter(|s| s.name.starts_with("process "))
            .count();
        async move { (deliveries == 2).then_some(spans) }
    })
    .await
    .unwrap_or_else(|err| panic!("{err}: {:#?}", spans_of(trace)));
    let named = |name: &str, retry_count: &str| -> &SpanData {
        spans
            .iter()
            .find(|s| {
                s.name == name
                    && attribute(s, "retry_count").is_none_or(|count| count == retry_count)
            })
            .unwrap_or_else(|| panic!("a span {name:?} (retry_count {retry_count}): {spans:#?}"))
    };
    let publishes: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.name.starts_with("publish "))
        .collect();
    let first = named("process svc.traced", "0");
    let second = named("process svc.traced", "1");
    let first_publish = publishes
        .iter()
        .find(|s| s.span_context.span_id() == first.parent_span_id)
        .expect("the first delivery's parent is a publish span");
    assert_eq!(first_publish.name, "publish test.events");
    assert!(
        first.events.iter().any(|e| e.name.contains("retry")),
        "the first delivery records its retry as an event: {:?}",
        first.events
    );
    let retry_publish = publishes
        .iter()
        .find(|s| s.span_context.span_id() == second.parent_span_id)
        .expect("the second delivery's parent is a publish span");
    assert_eq!(
        retry_publish.parent_span_id,
        first.span_context.span_id(),
        "the retry copy is published as a child of the failed delivery"
    );
    let onward = publishes
        .iter()
        .find(|s| s.parent_span_id == second.span_context.span_id())
        .expect("the handler's publish is a child of the second delivery");
    assert!(
        traceparent.contains(&onward.span_context.span_id().to_string()),
        "the forwarded message's parent is the handler's publish span"
    );
    for span in [first, second, *first_publish, *retry_publish, *onward] {
        assert_eq!(
            attribute(span, "messaging.system").as_deref(),
            Some("rabbitmq"),
            "{}",
            span.name
        );
    }
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_metrics_are_recorded_under_the_configured_prefix() {
    // First, as in every test here: the spans' subscriber must be the global one before the test
    // kit installs its own.
    exporter();
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .unwrap();
    orderflow_broker::metrics::describe("acme");
    let vhost = TestVhost::new().await;
    let reject =
        |_: orderflow_broker::Message<TestEvent>| async { Err(HandlerError::reject("never")) };
    let queue = QueueSpec::new("svc.metered").bind(common::EXCHANGE, common::ROUTING_KEY);
    let topology = Topology::default()
        .exchange(common::EXCHANGE, ExchangeType::Direct)
        .queue(queue.clone());
    let runtime = Runtime::new(config(&vhost.url).with_metric_prefix("acme"))
        .unwrap()
        .with_topology(topology)
        .with_consumer(ConsumerSpec::new(queue, reject));
    let running = Running::start(runtime).await;
    running
        .publisher
        .publish_event(&TestEvent {
            id: 5,
            fail_times: 0,
        })
        .await
        .unwrap();
    let text = eventually("the dead letter counted", Duration::from_secs(20), || {
        let text = recorder.render();
        async move { text.contains("acme_dead_letters_total{").then_some(text) }
    })
    .await
    .unwrap();
    assert!(
        text.contains(r#"acme_dead_letters_total{queue="svc.metered",reason="rejected"} 1"#),
        "{text}"
    );
    assert!(text.contains("# HELP acme_deliveries_total"), "{text}");
    running.shutdown().await.unwrap();
}
