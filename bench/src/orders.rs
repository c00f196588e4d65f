//! Driving orders through the running orderflow (its API or its exchange) and measuring them by
//! their own timestamps.

use crate::args::{Args, Via};
use crate::procs;
use crate::run::Run;
use anyhow::{Context, bail};
use broker::{BrokerConfig, Publisher};
use contracts::{LineItem, OrderCreated};
use futures_util::{StreamExt, stream};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use uuid::Uuid;

/// The payment token that fails once, transiently, then pays.
pub const FAILS_ONCE: &str = "tok_transient_1";

/// Submits one order per token (at most `rate` per second when given), waits until the system
/// is quiet, and measures.
pub async fn drive(
    args: &Args,
    http: &reqwest::Client,
    tokens: &[Option<String>],
    rate: Option<f64>,
) -> anyhow::Result<Run> {
    let before = summary(http, &args.api_url).await?;
    let cpu_before = procs::sample();
    let publisher = publisher(&args.amqp_url)?;
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
    publisher: &Publisher,
    token: Option<String>,
) -> anyhow::Result<Uuid> {
    let items = line();
    let request = match args.via {
        Via::Api => {
            let body = json!({"customer_id": "load", "items": items, "currency": "USD", "payment_token": token});
            http.post(format!("{}/orders", args.api_url)).json(&body)
        }
        Via::Gateway => {
            let key = args
                .api_key
                .as_deref()
                .context("--via gateway needs --api-key")?;
            let lines: Vec<Value> = items
                .iter()
                .map(|item| json!({"sku": item.sku, "quantity": item.quantity}))
                .collect();
            let body = json!({"customer_id": "load", "items": lines, "payment_token": token});
            http.post(format!("{}/v1/orders", args.gateway_url))
                .header("x-api-key", key)
                .json(&body)
        }
        Via::Exchange => {
            let order = OrderCreated::new("load", items, "USD", token)?;
            publisher
                .publish(&contracts::outgoing(&order, APP_ID)?)
                .await?;
            return Ok(order.order_id);
        }
    };
    let created: Value = request.send().await?.error_for_status()?.json().await?;
    Ok(created["order_id"].as_str().context("order_id")?.parse()?)
}

/// Order counts from `GET /orders/summary`.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// Orders not yet terminal.
    pub pending: i64,
    /// Completed plus cancelled.
    pub terminal: i64,
}

/// The order worker's counts (`GET /orders/summary`).
///
/// # Errors
/// When the order worker does not answer.
pub async fn summary(http: &reqwest::Client, api_url: &str) -> anyhow::Result<Summary> {
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

/// The `app_id` of what the benchmark publishes.
const APP_ID: &str = "orderflow-bench";

/// A confirmed publisher that gives up after 5 s without a broker.
fn publisher(url: &str) -> anyhow::Result<Publisher> {
    let config = BrokerConfig::new(url, APP_ID).with_publish_retry_for(Duration::from_secs(5));
    Publisher::new(&config).with_context(|| format!("broker URL {url}"))
}

/// The one line every benchmark order has (the ceilings' bodies carry it too).
#[must_use]
pub fn line() -> Vec<LineItem> {
    vec![LineItem {
        sku: "SKU-1".into(),
        quantity: 1,
        unit_price_cents: 1250,
    }]
}
