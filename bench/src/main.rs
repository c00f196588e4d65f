//! The load benchmark (`load`): drives orders through the running system (started by
//! `deploy/run.sh --release`) and, in the same run, measures two bare-lapin ceilings: the
//! saga ceiling does exactly an approved order's message operations (3 publishes, 6
//! deliveries; `ratio_saga`), the chain ceiling a 3-hop chain (`ratio`). Ends with one JSON
//! line.
//!
//! ```sh
//! cargo run --release -p orderflow-bench -- --orders 20000
//! cargo run --release -p orderflow-bench -- --fronts --api-key <key> --orders 5000
//! ```
//!
//! `--fronts` compares only the two front doors, straight at the order worker and through the
//! gateway (see [`fronts`]).
//!
//! Phases: idle RSS of the workers; the ceilings (best of three runs each); clean runs and retry runs,
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
//! per order and process (the workers and RabbitMQ's `beam.smp`) comes from `procfs`.

use anyhow::Context;
use clap::Parser;
use orderflow_bench::args::Args;
use orderflow_bench::chart::LoadPoint;
use orderflow_bench::orders::{FAILS_ONCE, drive, summary};
use orderflow_bench::run::{Run, report, round};
use orderflow_bench::{chain, chart, library_chain, procs, saga};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Runs of each bare ceiling; the best counts (a short run on a shared machine is noisy).
const CEILING_RUNS: usize = 3;

/// A ceiling's best throughput and its CPU ms per unit.
type Ceiling = (f64, BTreeMap<String, f64>);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    summary(&http, &args.api_url)
        .await
        .context("the order worker does not answer: start the system with deploy/run.sh")?;
    if args.fronts {
        println!("{}", fronts(&args, &http).await?);
        return Ok(());
    }
    if let Some(postmaster) = args.database_pid {
        procs::measure_database(postmaster);
    }
    let idle = procs::sample();
    eprintln!("idle RSS (MB): {}", show_rss(&idle));

    let (chain_ceiling, library_chain, saga_ceiling) = ceilings(&args).await?;
    let (clean, retry) = clean_and_retry(&args, &http).await?;
    let latency = latency_run(&args, &http, &clean).await?;
    let sweep = if args.sweep {
        Some(sweep(&args, &http, &clean, chain_ceiling.0).await?)
    } else {
        None
    };
    let peak = procs::sample();
    println!(
        "{}",
        line(
            &args,
            &clean,
            retry.as_ref(),
            &chain_ceiling,
            &library_chain,
            &saga_ceiling,
            latency.as_ref(),
            sweep.as_deref(),
            &idle,
            &peak
        )
    );
    Ok(())
}

/// The front doors side by side: throughput straight at the order worker and through the
/// gateway, in the order direct, gateway, gateway, direct (`--rounds` times) so that drift
/// weighs on both alike; then latency of each at half the lower throughput. One JSON line.
async fn fronts(args: &Args, http: &reqwest::Client) -> anyhow::Result<Value> {
    use orderflow_bench::args::Via;
    anyhow::ensure!(
        args.api_key.is_some(),
        "--fronts needs --api-key (deploy/run.sh prints one)"
    );
    let tokens = vec![Some("tok_visa".to_owned()); args.orders];
    let via = |via| Args {
        via,
        ..args.clone()
    };
    let (mut direct, mut gateway) = (Vec::new(), Vec::new());
    for _ in 0..args.rounds {
        for front in [Via::Api, Via::Gateway, Via::Gateway, Via::Api] {
            let run = drive(&via(front), http, &tokens, None).await?;
            report(&format!("{front:?}"), &run);
            if front == Via::Api {
                direct.push(run)
            } else {
                gateway.push(run)
            }
        }
    }
    let (direct, gateway) = (Run::combined(direct), Run::combined(gateway));
    let rate = 0.5 * direct.orders_per_s().min(gateway.orders_per_s());
    let at_rate = args.orders.min((rate * 20.0) as usize).max(100);
    let tokens = vec![Some("tok_visa".to_owned()); at_rate];
    let direct_latency = drive(&via(Via::Api), http, &tokens, Some(rate)).await?;
    let gateway_latency = drive(&via(Via::Gateway), http, &tokens, Some(rate)).await?;
    let side = |run: &Run, latency: &Run| {
        json!({"orders_per_s": round(run.orders_per_s()), "legs": run.legs.iter().map(|l| round(*l)).collect::<Vec<_>>(),
               "p50_ms": round(latency.percentile(50.0)), "p99_ms": round(latency.percentile(99.0)),
               "completed": run.completed + latency.completed,
               "cpu_ms_per_order": run.cpu_ms.iter().map(|(k, v)| (k.clone(), round(*v))).collect::<BTreeMap<_, _>>()})
    };
    Ok(json!({
        "fronts": {
            "orders": args.orders,
            "rounds": args.rounds,
            "offered_per_s": round(rate),
            "direct": side(&direct, &direct_latency),
            "gateway": side(&gateway, &gateway_latency),
        }
    }))
}

/// The two bare ceilings and the chain through the library (alternated with the bare chain, so
/// both see the same machine), each the best of [`CEILING_RUNS`].
async fn ceilings(args: &Args) -> anyhow::Result<(Ceiling, Ceiling, Ceiling)> {
    let bodies = saga::Bodies::new()?;
    eprintln!(
        "chain ceiling: {} messages through a bare 3-hop chain, best of {CEILING_RUNS}…",
        args.orders
    );
    let mut chain_best: Option<Ceiling> = None;
    let mut library_best: Option<Ceiling> = None;
    for _ in 0..CEILING_RUNS {
        let run =
            chain::ceiling(&args.amqp_url, args.orders, args.prefetch, &bodies.created).await?;
        eprintln!("chain ceiling: {:.0} msg/s", run.0);
        if chain_best.as_ref().is_none_or(|(rate, _)| run.0 > *rate) {
            chain_best = Some(run);
        }
        let run =
            library_chain::ceiling(&args.amqp_url, args.orders, args.prefetch, &bodies.created)
                .await?;
        eprintln!("the same chain through the library: {:.0} msg/s", run.0);
        if library_best.as_ref().is_none_or(|(rate, _)| run.0 > *rate) {
            library_best = Some(run);
        }
    }
    eprintln!(
        "saga ceiling: {} orders' messages (3 publishes, 6 deliveries each), best of {CEILING_RUNS}…",
        args.orders
    );
    let mut saga_best: Option<Ceiling> = None;
    for _ in 0..CEILING_RUNS {
        let run = saga::ceiling(&args.amqp_url, args.orders, args.prefetch, &bodies).await?;
        eprintln!("saga ceiling: {:.0} orders/s", run.0);
        if saga_best.as_ref().is_none_or(|(rate, _)| run.0 > *rate) {
            saga_best = Some(run);
        }
    }
    let chain_best = chain_best.context("no chain ceiling run")?;
    let library_best = library_best.context("no library chain run")?;
    let saga_best = saga_best.context("no saga ceiling run")?;
    eprintln!(
        "chain ceiling: {:.0} msg/s, CPU ms per message: {:?}",
        chain_best.0, chain_best.1
    );
    eprintln!(
        "library chain: {:.0} msg/s, CPU ms per message: {:?}",
        library_best.0, library_best.1
    );
    eprintln!(
        "saga ceiling: {:.0} orders/s, CPU ms per order: {:?}",
        saga_best.0, saga_best.1
    );
    Ok((chain_best, library_best, saga_best))
}

/// Clean runs and, with `--retry-share`, retry runs interleaved with them.
async fn clean_and_retry(
    args: &Args,
    http: &reqwest::Client,
) -> anyhow::Result<(Run, Option<Run>)> {
    let clean_tokens = vec![Some("tok_visa".to_owned()); args.orders];
    if args.retry_share <= 0.0 {
        eprintln!("clean run: {} orders via {:?}…", args.orders, args.via);
        let run = drive(args, http, &clean_tokens, None).await?;
        report("clean", &run);
        return Ok((Run::combined(vec![run]), None));
    }
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
        let run = drive(args, http, tokens, None).await?;
        report(label, &run);
        side.push(run);
    }
    let (clean, retry) = (Run::combined(clean), Run::combined(retry));
    eprintln!(
        "retry runs: {:+.1} % throughput against the clean runs",
        (retry.orders_per_s() / clean.orders_per_s() - 1.0) * 100.0
    );
    Ok((clean, Some(retry)))
}

/// A run at half the clean throughput, for latency without queueing (skipped with
/// `--no-latency-run`).
async fn latency_run(
    args: &Args,
    http: &reqwest::Client,
    clean: &Run,
) -> anyhow::Result<Option<(f64, Run)>> {
    if args.no_latency_run {
        return Ok(None);
    }
    let rate = clean.orders_per_s() / 2.0;
    let n = (args.orders / 2).max(1);
    eprintln!("latency run: {n} orders at {rate:.0} orders/s…");
    let tokens = vec![Some("tok_visa".to_owned()); n];
    let run = drive(args, http, &tokens, Some(rate)).await?;
    eprintln!(
        "latency run: p50 {:.0} ms, p99 {:.0} ms",
        run.percentile(50.0),
        run.percentile(99.0)
    );
    Ok(Some((rate, run)))
}

/// Runs at 25 % to 125 % of the clean throughput, and the chart of them.
async fn sweep(
    args: &Args,
    http: &reqwest::Client,
    clean: &Run,
    chain_ceiling: f64,
) -> anyhow::Result<Vec<(f64, Run)>> {
    let mut runs = Vec::new();
    for share in [0.25, 0.5, 0.75, 1.0, 1.25] {
        let rate = clean.orders_per_s() * share;
        let n = (args.orders / 2).max(1);
        let tokens = vec![Some("tok_visa".to_owned()); n];
        let run = drive(args, http, &tokens, Some(rate)).await?;
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
        "orderflow: {} orders per point via {:?}, chain ceiling {chain_ceiling:.0} msg/s",
        args.orders / 2,
        args.via
    );
    chart::draw(&args.chart, &points, &title)?;
    eprintln!("chart written to {}", args.chart.display());
    Ok(runs)
}

/// The run's one JSON line.
#[allow(clippy::too_many_arguments)]
fn line(
    args: &Args,
    clean: &Run,
    retry: Option<&Run>,
    chain: &Ceiling,
    library: &Ceiling,
    saga: &Ceiling,
    latency: Option<&(f64, Run)>,
    sweep: Option<&[(f64, Run)]>,
    idle: &BTreeMap<String, procs::Sample>,
    peak: &BTreeMap<String, procs::Sample>,
) -> Value {
    let rss_mb: BTreeMap<String, Value> = idle
        .iter()
        .filter(|(name, _)| ![procs::BROKER, procs::DATABASE].contains(&name.as_str()))
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
    let ratio = |ceiling: f64| (clean.orders_per_s() / ceiling * 1000.0).round() / 1000.0;
    let retry_gap_pct = retry.map(|r| (r.orders_per_s() / clean.orders_per_s() - 1.0) * 100.0);
    json!({
        "orders": args.orders,
        "via": format!("{:?}", args.via).to_lowercase(),
        "orders_per_s": round(clean.orders_per_s()),
        "p50_ms": round(clean.percentile(50.0)),
        "p95_ms": round(clean.percentile(95.0)),
        "p99_ms": round(clean.percentile(99.0)),
        "completed": clean.completed,
        "cancelled": clean.cancelled,
        "ceiling_orders_per_s": round(chain.0),
        "saga_ceiling_orders_per_s": round(saga.0),
        "cpu_ms_per_order": rounded(&clean.cpu_ms),
        "ceiling_cpu_ms_per_msg": rounded(&chain.1),
        "library_chain_per_s": round(library.0),
        "library_chain_cpu_ms_per_msg": rounded(&library.1),
        "saga_ceiling_cpu_ms_per_order": rounded(&saga.1),
        "ratio": ratio(chain.0),
        "ratio_saga": ratio(saga.0),
        "retry_share": args.retry_share,
        "clean_runs_orders_per_s": clean.legs.iter().copied().map(round).collect::<Vec<_>>(),
        "retry_orders_per_s": retry.map(|r| round(r.orders_per_s())),
        "retry_runs_orders_per_s": retry.map(|r| r.legs.iter().copied().map(round).collect::<Vec<_>>()),
        "retry_gap_pct": retry_gap_pct.map(round),
        "retry_tail_s": retry.map(|r| round(r.span_s - r.untried_span_s)),
        "retry_cpu_ms_per_order": retry.map(|r| rounded(&r.cpu_ms)),
        "retry_p99_ms": retry.map(|r| round(r.percentile(99.0))),
        "latency_run": latency.map(|(rate, run)| json!({
            "offered_per_s": round(*rate),
            "p50_ms": round(run.percentile(50.0)),
            "p99_ms": round(run.percentile(99.0)),
        })),
        "rss_mb": rss_mb,
        "sweep": sweep.map(|runs| runs.iter().map(|(rate, run)| json!({
            "offered_per_s": round(*rate),
            "orders_per_s": round(run.orders_per_s()),
            "p50_ms": round(run.percentile(50.0)),
            "p99_ms": round(run.percentile(99.0)),
        })).collect::<Vec<_>>()),
    })
}

fn show_rss(rss: &BTreeMap<String, procs::Sample>) -> String {
    rss.iter()
        .filter(|(name, _)| name.as_str() != procs::DATABASE)
        .map(|(name, sample)| format!("{name} {:.1}", sample.rss_mb))
        .collect::<Vec<_>>()
        .join(", ")
}
