//! Load benchmark: drives orders through the running system (started by
//! `deploy/run.sh --release`) and, in the same run, measures the broker's own ceiling with a bare
//! lapin chain of the same shape (persistent messages, pipelined confirms, manual acks, quorum
//! queues, the workers' prefetch): publish → consume and republish to a fanout → two consumers.
//! Ends with one JSON line.
//!
//! ```sh
//! cargo run --release -p orderflow-examples --example load -- --orders 20000
//! ```
//!
//! Phases: idle RSS of the workers; the ceiling (best of three runs); clean runs and retry runs,
//! where `--retry-share` of the orders use `tok_transient_1` (one retry each), in the
//! Thue–Morse order (clean, retry, retry, clean, then retry, clean, clean, retry; `--rounds` of
//! four, default 2) so that a steady or an accelerating drift of the shared machine weighs on
//! both sides alike (with `--retry-share 0`, one clean run); a latency run at half the clean
//! throughput; peak RSS; with `--sweep`, runs at 25 % to 125 % of the clean throughput and a
//! chart (`--chart`, default `docs/load.png`) of throughput and p99 against offered load.
//!
//! Latency per order is the order's server-side `updated_at` (when it turned terminal) minus its
//! submit time, both on this machine's clock. Each retry run also says when the last order that
//! never failed was terminal, so the retried orders' tail is seen apart from the rest. CPU time
//! per order and process (the workers and RabbitMQ's `beam.smp`) comes from `/proc`.

use anyhow::{Context, bail};
use broker::lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use broker::lapin::types::{AMQPValue, FieldTable};
use broker::lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
use clap::{Parser, ValueEnum};
use contracts::LineItem;
use futures_util::{StreamExt, stream};
use orderflow_examples::chart::{self, LoadPoint};
use orderflow_examples::procs;
use orderflow_examples::{BrokerArgs, new_order, order_message};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use uuid::Uuid;

/// Runs of the bare chain; the best is the ceiling (a short run on a shared machine is noisy).
const CEILING_RUNS: usize = 3;

/// How orders enter the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Via {
    /// `POST /orders` (validation, outbox, relay).
    Api,
    /// `order.created` published straight to the `orders` exchange.
    Exchange,
}

/// The payment token that fails once, transiently, then pays.
const FAILS_ONCE: &str = "tok_transient_1";

/// Drive orders through orderflow and compare with the broker's ceiling.
#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    broker: BrokerArgs,
    /// The order worker's API.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    api_url: String,
    /// Orders per run.
    #[arg(long, default_value_t = 20000)]
    orders: usize,
    /// How orders enter the system.
    #[arg(long, value_enum, default_value_t = Via::Api)]
    via: Via,
    /// Share of orders that fail once transiently in the retry runs (0 skips them).
    #[arg(long, default_value_t = 0.1)]
    retry_share: f64,
    /// Rounds of four runs, two clean and two retry: more rounds, less of the machine's noise in
    /// the retry comparison.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    rounds: u16,
    /// Orders submitted at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Prefetch of the ceiling chain's consumers (the workers' default).
    #[arg(long, default_value_t = 128)]
    prefetch: u16,
    /// Skip the fixed-rate latency run.
    #[arg(long)]
    no_latency_run: bool,
    /// Also sweep the offered load (25 % to 125 % of the clean throughput) and draw the chart.
    #[arg(long)]
    sweep: bool,
    /// Where the sweep's chart goes.
    #[arg(long, default_value = "docs/load.png")]
    chart: std::path::PathBuf,
}

/// One run's outcome.
#[derive(Debug, Clone)]
struct Run {
    /// Orders and seconds from the first submit to the last order terminal.
    orders: usize,
    span_s: f64,
    /// Seconds from the first submit until the last order that never failed was terminal.
    untried_span_s: f64,
    /// Throughput of each run this one combines (none for a single run).
    legs: Vec<f64>,
    /// End-to-end latency of every order, sorted.
    latencies_ms: Vec<f64>,
    completed: usize,
    cancelled: usize,
    /// CPU ms per order of each process, over the run.
    cpu_ms: BTreeMap<String, f64>,
}

impl Run {
    fn orders_per_s(&self) -> f64 {
        self.orders as f64 / self.span_s
    }

    fn percentile(&self, p: f64) -> f64 {
        let sorted = &self.latencies_ms;
        if sorted.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
        sorted[rank.min(sorted.len() - 1)]
    }

    /// Runs taken together: all their orders over all their time, every latency, the mean CPU.
    fn combined(runs: Vec<Run>) -> Run {
        let orders: usize = runs.iter().map(|r| r.orders).sum();
        let span_s: f64 = runs.iter().map(|r| r.span_s).sum();
        let untried_span_s: f64 = runs.iter().map(|r| r.untried_span_s).sum();
        let mut cpu_ms = BTreeMap::new();
        for run in &runs {
            for (name, ms) in &run.cpu_ms {
                *cpu_ms.entry(name.clone()).or_insert(0.0) += ms / runs.len() as f64;
            }
        }
        let legs = runs.iter().map(Run::orders_per_s).collect();
        let completed = runs.iter().map(|r| r.completed).sum();
        let cancelled = runs.iter().map(|r| r.cancelled).sum();
        let mut latencies_ms: Vec<f64> = runs.into_iter().flat_map(|r| r.latencies_ms).collect();
        latencies_ms.sort_by(f64::total_cmp);
        Run {
            orders,
            span_s,
            untried_span_s,
            legs,
            latencies_ms,
            completed,
            cancelled,
            cpu_ms,
        }
    }
}

/// Prints one run's figures.
fn report(label: &str, run: &Run) {
    eprintln!(
        "{label} run: {:.0} orders/s, p50 {:.0} ms, p95 {:.0} ms, p99 {:.0} ms, CPU ms per order: {:?}",
        run.orders_per_s(),
        run.percentile(50.0),
        run.percentile(95.0),
        run.percentile(99.0),
        run.cpu_ms
    );
    if run.untried_span_s < run.span_s {
        eprintln!(
            "{label} run: orders that never failed were all terminal at {:.1} s; the last retried one at {:.1} s",
            run.untried_span_s, run.span_s
        );
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    summary(&http, &args.api_url)
        .await
        .context("the order worker does not answer: start the system with deploy/run.sh")?;
    let idle = procs::sample();
    eprintln!("idle RSS (MB): {}", show_rss(&idle));

    eprintln!(
        "ceiling: {} messages through a bare lapin chain, best of {CEILING_RUNS}…",
        args.orders
    );
    let mut best: Option<(f64, BTreeMap<String, f64>)> = None;
    for _ in 0..CEILING_RUNS {
        let run = ceiling(&args.broker.amqp_url, args.orders, args.prefetch).await?;
        eprintln!("ceiling: {:.0} msg/s", run.0);
        if best.as_ref().is_none_or(|(rate, _)| run.0 > *rate) {
            best = Some(run);
        }
    }
    let (ceiling, ceiling_cpu) = best.context("no ceiling run")?;
    eprintln!("ceiling: {ceiling:.0} msg/s, CPU ms per message: {ceiling_cpu:?}");

    let clean_tokens = vec![Some("tok_visa".to_owned()); args.orders];
    let (clean, retry) = if args.retry_share > 0.0 {
        // The Thue–Morse sequence (clean, retry, retry, clean, retry, clean, clean, retry, …):
        // over eight runs both sides get the same sum of run positions and of their squares, so
        // a linear or quadratic drift of the shared machine weighs on both alike; ABBA alone
        // only balances a linear one.
        let every = (1.0 / args.retry_share).round().max(1.0) as usize;
        let retry_tokens: Vec<_> = (0..args.orders)
            .map(|i| {
                let token = if i % every == 0 {
                    FAILS_ONCE
                } else {
                    "tok_visa"
                };
                Some(token.to_owned())
            })
            .collect();
        eprintln!(
            "clean and retry runs, interleaved in Thue–Morse order ({} runs): {} orders each via {:?}, 1 in {every} failing once in the retry runs…",
            4 * args.rounds,
            args.orders,
            args.via
        );
        let mut clean = Vec::new();
        let mut retry = Vec::new();
        let order = (0..4 * u32::from(args.rounds)).map(|n| n.count_ones() % 2 == 1);
        for retrying in order {
            let (label, tokens, side) = if retrying {
                ("retry", &retry_tokens, &mut retry)
            } else {
                ("clean", &clean_tokens, &mut clean)
            };
            let run = drive(&args, &http, tokens, None).await?;
            report(label, &run);
            side.push(run);
        }
        (Run::combined(clean), Some(Run::combined(retry)))
    } else {
        eprintln!("clean run: {} orders via {:?}…", args.orders, args.via);
        let run = drive(&args, &http, &clean_tokens, None).await?;
        report("clean", &run);
        (Run::combined(vec![run]), None)
    };
    let retry_gap_pct = retry
        .as_ref()
        .map(|r| (r.orders_per_s() / clean.orders_per_s() - 1.0) * 100.0);
    if let Some(gap) = retry_gap_pct {
        eprintln!("retry runs: {gap:+.1} % throughput against the clean runs");
    }

    let latency = if args.no_latency_run {
        None
    } else {
        let rate = clean.orders_per_s() / 2.0;
        let n = (args.orders / 2).max(1);
        eprintln!("latency run: {n} orders at {rate:.0} orders/s…");
        let tokens = vec![Some("tok_visa".to_owned()); n];
        let run = drive(&args, &http, &tokens, Some(rate)).await?;
        eprintln!(
            "latency run: p50 {:.0} ms, p99 {:.0} ms",
            run.percentile(50.0),
            run.percentile(99.0)
        );
        Some((rate, run))
    };

    let sweep = if args.sweep {
        let mut runs = Vec::new();
        for share in [0.25, 0.5, 0.75, 1.0, 1.25] {
            let rate = clean.orders_per_s() * share;
            let n = (args.orders / 2).max(1);
            let tokens = vec![Some("tok_visa".to_owned()); n];
            let run = drive(&args, &http, &tokens, Some(rate)).await?;
            eprintln!(
                "sweep: offered {rate:.0}/s → achieved {:.0}/s, p50 {:.0} ms, p99 {:.0} ms",
                run.orders_per_s(),
                run.percentile(50.0),
                run.percentile(99.0)
            );
            runs.push((rate, run));
        }
        let points: Vec<LoadPoint> = runs
            .iter()
            .map(|(rate, run)| LoadPoint {
                offered: *rate,
                achieved: run.orders_per_s(),
                p99_ms: run.percentile(99.0),
            })
            .collect();
        let title = format!(
            "orderflow: {} orders per point via {:?}, ceiling {ceiling:.0} msg/s",
            args.orders / 2,
            args.via
        );
        chart::draw(&args.chart, &points, &title)?;
        eprintln!("chart written to {}", args.chart.display());
        Some(runs)
    } else {
        None
    };

    let peak = procs::sample();
    let rss_mb: BTreeMap<String, Value> = idle
        .iter()
        .filter(|(name, _)| name.as_str() != procs::BROKER)
        .map(|(name, at_idle)| {
            let peak_mb = peak.get(name).map_or(0.0, |p| p.peak_rss_mb);
            (
                name.clone(),
                json!({"idle": round(at_idle.rss_mb), "peak": round(peak_mb)}),
            )
        })
        .collect();
    let rounded = |cpu: &BTreeMap<String, f64>| -> BTreeMap<String, f64> {
        cpu.iter()
            .map(|(name, ms)| (name.clone(), (ms * 1000.0).round() / 1000.0))
            .collect()
    };
    let line = json!({
        "orders": args.orders,
        "via": format!("{:?}", args.via).to_lowercase(),
        "orders_per_s": round(clean.orders_per_s()),
        "p50_ms": round(clean.percentile(50.0)),
        "p95_ms": round(clean.percentile(95.0)),
        "p99_ms": round(clean.percentile(99.0)),
        "completed": clean.completed,
        "cancelled": clean.cancelled,
        "ceiling_orders_per_s": round(ceiling),
        "cpu_ms_per_order": rounded(&clean.cpu_ms),
        "ceiling_cpu_ms_per_msg": rounded(&ceiling_cpu),
        "ratio": (clean.orders_per_s() / ceiling * 1000.0).round() / 1000.0,
        "retry_share": args.retry_share,
        "clean_runs_orders_per_s": clean.legs.iter().copied().map(round).collect::<Vec<_>>(),
        "retry_orders_per_s": retry.as_ref().map(|r| round(r.orders_per_s())),
        "retry_runs_orders_per_s": retry.as_ref().map(|r| r.legs.iter().copied().map(round).collect::<Vec<_>>()),
        "retry_gap_pct": retry_gap_pct.map(round),
        "retry_tail_s": retry.as_ref().map(|r| round(r.span_s - r.untried_span_s)),
        "retry_cpu_ms_per_order": retry.as_ref().map(|r| rounded(&r.cpu_ms)),
        "retry_p99_ms": retry.as_ref().map(|r| round(r.percentile(99.0))),
        "latency_run": latency.as_ref().map(|(rate, run)| json!({
            "offered_per_s": round(*rate),
            "p50_ms": round(run.percentile(50.0)),
            "p99_ms": round(run.percentile(99.0)),
        })),
        "rss_mb": rss_mb,
        "sweep": sweep.as_ref().map(|runs| runs.iter().map(|(rate, run)| json!({
            "offered_per_s": round(*rate),
            "orders_per_s": round(run.orders_per_s()),
            "p50_ms": round(run.percentile(50.0)),
            "p99_ms": round(run.percentile(99.0)),
        })).collect::<Vec<_>>()),
    });
    println!("{line}");
    Ok(())
}

fn round(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// Submits one order per token (at most `rate` per second when given), waits until the system
/// is quiet, and measures.
async fn drive(
    args: &Args,
    http: &reqwest::Client,
    tokens: &[Option<String>],
    rate: Option<f64>,
) -> anyhow::Result<Run> {
    let before = summary(http, &args.api_url).await?;
    let cpu_before = procs::sample();
    let publisher = args.broker.publisher()?;
    let started = Instant::now();
    let submissions = stream::iter(tokens.iter().enumerate()).map(|(i, token)| {
        let (http, publisher) = (http.clone(), publisher.clone());
        async move {
            if let Some(rate) = rate {
                let due = started + Duration::from_secs_f64(i as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
            }
            let submitted = OffsetDateTime::now_utc();
            let id = submit(args, &http, &publisher, token.clone()).await?;
            anyhow::Ok((id, submitted, token.as_deref() == Some(FAILS_ONCE)))
        }
    });
    let submitted: Vec<(Uuid, OffsetDateTime, bool)> = submissions
        .buffer_unordered(args.concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    publisher.close().await;

    // Quiet: nothing pending and every order of this run terminal. The figures come from the
    // orders' own timestamps: polling every half second loses no precision.
    let target = before.terminal + tokens.len() as i64;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let now = summary(http, &args.api_url).await?;
        if now.pending == 0 && now.terminal >= target {
            break;
        }
        if Instant::now() > deadline {
            bail!("orders still pending after 10 minutes: {now:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let cpu_ms = procs::cpu_between(&cpu_before, &procs::sample(), tokens.len() as f64);

    let orders: Vec<Value> = stream::iter(submitted.iter())
        .map(|(id, _, _)| {
            let http = http.clone();
            let url = format!("{}/orders/{id}", args.api_url);
            async move {
                http.get(url)
                    .send()
                    .await?
                    .error_for_status()?
                    .json::<Value>()
                    .await
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let by_id: BTreeMap<String, &Value> = orders
        .iter()
        .map(|o| (o["order_id"].as_str().unwrap_or_default().to_owned(), o))
        .collect();
    let mut latencies_ms = Vec::with_capacity(submitted.len());
    let (mut first, mut last) = (None::<OffsetDateTime>, None::<OffsetDateTime>);
    let mut last_untried = None::<OffsetDateTime>;
    let (mut completed, mut cancelled) = (0, 0);
    for (id, at, fails) in &submitted {
        let order = by_id.get(&id.to_string()).context("order missing")?;
        let done = OffsetDateTime::parse(
            order["updated_at"].as_str().unwrap_or_default(),
            &time::format_description::well_known::Rfc3339,
        )?;
        match order["status"].as_str() {
            Some("completed") => completed += 1,
            Some("cancelled") => cancelled += 1,
            _ => {}
        }
        latencies_ms.push((done - *at).as_seconds_f64() * 1000.0);
        first = Some(first.map_or(*at, |f: OffsetDateTime| f.min(*at)));
        last = Some(last.map_or(done, |l: OffsetDateTime| l.max(done)));
        if !fails {
            last_untried = Some(last_untried.map_or(done, |l: OffsetDateTime| l.max(done)));
        }
    }
    let span = match (first, last) {
        (Some(first), Some(last)) => (last - first).as_seconds_f64(),
        _ => 1.0,
    };
    let span_s = span.max(1e-3);
    latencies_ms.sort_by(f64::total_cmp);
    let untried_span_s = match (first, last_untried) {
        (Some(first), Some(last)) => (last - first).as_seconds_f64(),
        _ => span_s,
    };
    Ok(Run {
        orders: tokens.len(),
        span_s,
        untried_span_s,
        legs: Vec::new(),
        latencies_ms,
        completed,
        cancelled,
        cpu_ms,
    })
}

async fn submit(
    args: &Args,
    http: &reqwest::Client,
    publisher: &broker::Publisher,
    token: Option<String>,
) -> anyhow::Result<Uuid> {
    let items = vec![LineItem {
        sku: "SKU-1".into(),
        quantity: 1,
        unit_price_cents: 1250,
    }];
    match args.via {
        Via::Api => {
            let body = json!({"customer_id": "load", "items": items, "currency": "USD", "payment_token": token});
            let response = http
                .post(format!("{}/orders", args.api_url))
                .json(&body)
                .send()
                .await?
                .error_for_status()?;
            let created: Value = response.json().await?;
            Ok(created["order_id"].as_str().context("order_id")?.parse()?)
        }
        Via::Exchange => {
            let order = new_order("load", items, "USD", token)?;
            publisher.publish(&order_message(&order)?).await?;
            Ok(order.order_id)
        }
    }
}

/// Order counts from `GET /orders/summary`.
#[derive(Debug, Clone, Copy)]
struct Summary {
    pending: i64,
    terminal: i64,
}

async fn summary(http: &reqwest::Client, api_url: &str) -> anyhow::Result<Summary> {
    let counts: BTreeMap<String, i64> = http
        .get(format!("{api_url}/orders/summary"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let get = |k: &str| counts.get(k).copied().unwrap_or_default();
    Ok(Summary {
        pending: get("pending"),
        terminal: get("completed") + get("cancelled"),
    })
}

/// The bare chain's throughput in messages per second: publish `n` (pipelined confirms) →
/// consume, republish to a fanout with a confirm, ack → two consumers ack. Also the CPU ms per
/// message of the broker and of this process (the chain's client).
async fn ceiling(
    url: &str,
    n: usize,
    prefetch: u16,
) -> anyhow::Result<(f64, BTreeMap<String, f64>)> {
    let tag = Uuid::new_v4().simple().to_string();
    let (input, fanout) = (format!("bench.{tag}.in"), format!("bench.{tag}.fanout"));
    let outputs = [format!("bench.{tag}.out.1"), format!("bench.{tag}.out.2")];
    let conn = Connection::connect(
        &broker::connection::with_frame_max(url),
        ConnectionProperties::default(),
    )
    .await?;
    let setup = conn.create_channel().await?;
    let mut quorum = FieldTable::default();
    quorum.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    setup
        .exchange_declare(
            fanout.as_str().into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await?;
    for queue in std::iter::once(&input).chain(&outputs) {
        setup
            .queue_declare(queue.as_str().into(), durable, quorum.clone())
            .await?;
    }
    for queue in &outputs {
        setup
            .queue_bind(
                queue.as_str().into(),
                fanout.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    let body = serde_json::to_vec(&new_order(
        "load",
        vec![LineItem {
            sku: "SKU-1".into(),
            quantity: 1,
            unit_price_cents: 1250,
        }],
        "USD",
        Some("tok_visa".into()),
    )?)?;
    let props = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into());

    // The two sinks.
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<()>(2);
    for queue in &outputs {
        let channel = conn.create_channel().await?;
        channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await?;
        let mut consumer = channel
            .basic_consume(
                queue.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let done = done_tx.clone();
        tokio::spawn(async move {
            let mut seen = 0;
            while let Some(Ok(delivery)) = consumer.next().await {
                let _ = delivery.acker.ack(BasicAckOptions::default()).await;
                seen += 1;
                if seen == n {
                    let _ = done.send(()).await;
                    break;
                }
            }
            drop(channel);
        });
    }
    // The relay: consume, republish with a confirm, then ack.
    let relay_in = conn.create_channel().await?;
    relay_in
        .basic_qos(prefetch, BasicQosOptions::default())
        .await?;
    let relay_out = conn.create_channel().await?;
    relay_out
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let mut relay = relay_in
        .basic_consume(
            input.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let relay_fanout = fanout.clone();
    let relay_props = props.clone();
    tokio::spawn(async move {
        while let Some(Ok(delivery)) = relay.next().await {
            let out = relay_out.clone();
            let (exchange, props) = (relay_fanout.clone(), relay_props.clone());
            tokio::spawn(async move {
                let confirm = out
                    .basic_publish(
                        exchange.as_str().into(),
                        "".into(),
                        BasicPublishOptions::default(),
                        &delivery.data,
                        props,
                    )
                    .await;
                if let Ok(confirm) = confirm
                    && confirm.await.is_ok()
                {
                    let _ = delivery.acker.ack(BasicAckOptions::default()).await;
                }
            });
        }
        drop(relay_in);
    });

    let publish = conn.create_channel().await?;
    publish
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let cpu_before = procs::sample();
    let client_before = procs::own_cpu_ms();
    let started = Instant::now();
    let mut pending = Vec::with_capacity(256);
    for _ in 0..n {
        pending.push(
            publish
                .basic_publish(
                    "".into(),
                    input.as_str().into(),
                    BasicPublishOptions::default(),
                    &body,
                    props.clone(),
                )
                .await?,
        );
        if pending.len() == 256 {
            for confirm in pending.drain(..) {
                confirm.await?;
            }
        }
    }
    for confirm in pending {
        confirm.await?;
    }
    for _ in 0..2 {
        tokio::time::timeout(Duration::from_secs(600), done_rx.recv())
            .await
            .context("the ceiling chain did not finish")?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut cpu = procs::cpu_between(&cpu_before, &procs::sample(), n as f64);
    cpu.retain(|name, _| name == procs::BROKER);
    cpu.insert(
        "client".to_owned(),
        (procs::own_cpu_ms() - client_before) / n as f64,
    );
    for queue in std::iter::once(&input).chain(&outputs) {
        let _ = setup
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    let _ = setup
        .exchange_delete(fanout.as_str().into(), Default::default())
        .await;
    let _ = conn.close(200, "done".into()).await;
    Ok((n as f64 / elapsed, cpu))
}

fn show_rss(rss: &BTreeMap<String, procs::Sample>) -> String {
    rss.iter()
        .map(|(name, sample)| format!("{name} {:.1}", sample.rss_mb))
        .collect::<Vec<_>>()
        .join(", ")
}
