//! The chain ceiling's 3-hop chain through the broker library instead of bare lapin: the same
//! messages, queues and prefetch, with every guarantee the workers get — mandatory, confirmed
//! publishes with the wire contract's properties and a trace header, a consumer runtime that
//! acks only after the relay's publish is confirmed — so its client CPU per message is the
//! library's cost beside bare lapin's.

use crate::bare::{CpuMeter, Finish};
use anyhow::Context;
use broker::{
    BrokerConfig, ConsumerSpec, ExchangeType, HandlerError, Message, Outgoing, QueueSpec, Raw,
    RetryPolicy, Runtime, Topology,
};
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Publishes in flight at once from the first publisher (as the bare chain's confirm batch).
const IN_FLIGHT: usize = 256;

/// Handlers at once per consumer, as the workers run them.
const CONCURRENCY: usize = 64;

/// Messages per second through the chain for `n` messages of `body`, and the CPU ms per
/// message of the broker and of this process.
///
/// # Errors
/// When the runtime cannot start, a publish fails, or the chain does not finish in 10 minutes.
pub async fn ceiling(
    url: &str,
    n: usize,
    prefetch: u16,
    body: &[u8],
) -> anyhow::Result<(f64, BTreeMap<String, f64>)> {
    let tag = Uuid::new_v4().simple().to_string();
    let (exchange, fanout) = (format!("bench.{tag}.direct"), format!("bench.{tag}.fanout"));
    let input = format!("bench.{tag}.in");
    let outputs = [format!("bench.{tag}.out.1"), format!("bench.{tag}.out.2")];
    // One retry tier, as `saga` declares the workers' queues; nothing fails, so it stays empty.
    let retry = RetryPolicy::default().with_max_retries(1);
    let spec = |name: &str| {
        QueueSpec::new(name)
            .with_retry(retry.clone())
            .with_dead_letter_exchange(format!("bench.{tag}.dlx"))
    };
    let input_spec = spec(&input).bind(exchange.as_str(), "in");
    let output_specs = outputs
        .clone()
        .map(|queue| spec(&queue).bind(fanout.as_str(), ""));
    // Every queue the topology declares, for the cleanup: named as the specs name them.
    let declared: Vec<String> = std::iter::once(&input_spec)
        .chain(&output_specs)
        .flat_map(|spec| {
            [
                spec.retry_queue(1),
                spec.dead_letter_queue(),
                spec.name.clone(),
            ]
        })
        .collect();
    let mut topology = Topology::default()
        .exchange(exchange.as_str(), ExchangeType::Direct)
        .exchange(fanout.as_str(), ExchangeType::Fanout)
        .queue(input_spec.clone());
    for output in &output_specs {
        topology = topology.queue(output.clone());
    }

    let mut runtime =
        Runtime::new(BrokerConfig::new(url, "orderflow-bench"))?.with_topology(topology);
    let publisher = runtime.publisher();
    let relay_publisher = publisher.clone();
    let relay_fanout = fanout.clone();
    let relay = move |message: Message<Vec<u8>>| {
        let (publisher, fanout) = (relay_publisher.clone(), relay_fanout.clone());
        async move {
            let correlation = message.meta.correlation_id.clone().unwrap_or_default();
            let out = Outgoing::json(
                &fanout,
                "",
                "bench.relayed",
                message.event,
                &correlation,
                "orderflow-bench",
            );
            publisher.publish(&out).await.map_err(HandlerError::retry)
        }
    };
    runtime = runtime.with_consumer(
        ConsumerSpec::with_decoder(input_spec, Raw, relay)
            .with_prefetch(prefetch)
            .with_concurrency(CONCURRENCY),
    );
    let finish = Finish::new(2 * n);
    for output in output_specs {
        let finish = finish.clone();
        let sink = move |_: Message<Vec<u8>>| {
            finish.one();
            async { Ok::<(), HandlerError>(()) }
        };
        runtime = runtime.with_consumer(
            ConsumerSpec::with_decoder(output, Raw, sink)
                .with_prefetch(prefetch)
                .with_concurrency(CONCURRENCY),
        );
    }
    let readiness = runtime.readiness();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(runtime.run(async move {
        let _ = stopped.await;
    }));
    tokio::time::timeout(Duration::from_secs(60), readiness.ready())
        .await
        .context("the library chain's runtime was not ready in a minute")?;

    let meter = CpuMeter::start();
    let started = Instant::now();
    let message = Outgoing::json(
        &exchange,
        "in",
        "bench.sent",
        body.to_vec(),
        "chain",
        "orderflow-bench",
    );
    let published: Vec<_> = futures_util::stream::iter(0..n)
        .map(|_| {
            let (publisher, message) = (&publisher, message.clone());
            async move { publisher.publish(&message).await }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    if let Some(Err(err)) = published.into_iter().find(Result::is_err) {
        return Err(err.into());
    }
    tokio::time::timeout(Duration::from_secs(600), finish.all())
        .await
        .context("the library chain did not finish in 10 minutes")?;
    let measured = (n as f64 / started.elapsed().as_secs_f64(), meter.per(n));

    let _ = stop.send(());
    running.await??;
    crate::bare::delete(
        url,
        &[exchange, fanout, format!("bench.{tag}.dlx")],
        &declared,
    )
    .await;
    Ok(measured)
}
