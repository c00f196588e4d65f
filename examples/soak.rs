//! The chaos soak: starts its own RabbitMQ node and the three workers (each with its own store),
//! creates orders through `POST /orders` while killing workers, restarting the broker and
//! force-closing connections at seeded random moments, waits until the system is quiet, replays
//! what ended in dead-letter queues with the `orderflow` CLI, and audits every store. Ends with
//! one JSON line; exits non-zero when anything was lost, stuck, charged twice or oversold.
//!
//! ```sh
//! cargo run -p orderflow-examples --example soak -- --orders 100000
//! ```
//!
//! Method and history of runs: `docs/soak.md`.

use anyhow::Context;
use clap::{Parser, ValueEnum};
use orderflow_examples::soak::audit::{self, Audit, CHECKS, Inputs};
use orderflow_examples::soak::chaos::{self, Fault};
use orderflow_examples::soak::client::{Submitted, Submitter};
use orderflow_examples::soak::plan;
use orderflow_examples::soak::queues::{Broker, Counts, DeadLetter};
use orderflow_examples::soak::rng::Rng;
use orderflow_examples::soak::stores::{Snapshot, Stores};
use orderflow_examples::soak::system::{RetrySettings, Settings, System};
use orderflow_examples::soak::workers::{self, Role};
use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Where the workers keep their data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StoreKind {
    /// One SQLite file per worker in the run's temp dir.
    Sqlite,
    /// One database per worker on a private PostgreSQL server (adds database outages).
    Postgres,
}

impl StoreKind {
    fn name(self) -> &'static str {
        match self {
            StoreKind::Sqlite => "sqlite",
            StoreKind::Postgres => "postgres",
        }
    }
}

/// Drive orderflow through faults, then audit every store.
#[derive(Debug, Parser)]
struct Args {
    /// Orders to create.
    #[arg(long, default_value_t = 100_000)]
    orders: usize,
    /// The workers' stores.
    #[arg(long, value_enum, default_value_t = StoreKind::Sqlite)]
    store: StoreKind,
    /// Seed of the order mix and the fault schedule [default: from the clock; printed].
    #[arg(long)]
    seed: Option<u64>,
    /// Rounds of faults: each round kills every worker once, restarts the broker once and
    /// force-closes the connections once.
    #[arg(long, default_value_t = 1)]
    fault_rounds: usize,
    /// POSTs in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Orders per second at most (0: as fast as the API takes them); a low rate spreads a small
    /// run over the faults.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// `RETRY_MAX` of every worker.
    #[arg(long, default_value_t = 3)]
    retry_max: u32,
    /// Seconds nothing may change (every queue empty) before the system counts as quiet.
    #[arg(long, default_value_t = 5)]
    quiet_s: u64,
    /// Seconds to wait for quiet after the last order and after each replay.
    #[arg(long, default_value_t = 900)]
    drain_timeout_s: u64,
    /// Rounds of replaying every dead letter with the CLI and waiting again.
    #[arg(long, default_value_t = 2)]
    replay_rounds: usize,
    /// Replicas of every worker (above 1 needs `--store postgres`): faults kill one of them.
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    /// A three-node RabbitMQ cluster instead of one node: a node is lost for seconds and every
    /// node is restarted in turn, instead of the one node's restart.
    #[arg(long)]
    cluster: bool,
    /// Only these kinds of fault (names as in the report, comma-separated) [default: every kind
    /// the run's store and broker allow].
    #[arg(long, value_delimiter = ',')]
    faults: Vec<String>,
    /// Do not build the worker binaries first (they must be up to date in target/<profile>).
    #[arg(long)]
    no_build: bool,
    /// The workers' `RUST_LOG`; `info,orderflow_broker=debug` also logs every delivery handled, so a
    /// finding's excerpt shows each hop of its order.
    #[arg(long, default_value = "info")]
    log: String,
    /// Keep the run's directory (stores, logs) even when the audit is clean.
    #[arg(long)]
    keep: bool,
}

/// What one quiet moment looked like.
struct Quiet {
    counts: Counts,
    snapshot: Snapshot,
    letters: Vec<DeadLetter>,
    reached: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Logs go to stderr (stdout is for the JSON line); testkit's own subscriber then stays out.
    // A PostgreSQL outage makes every pooled connection log a notice: expected, not news.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,sqlx::postgres::notice=error")
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64 % 1_000_000_007)
    });
    let code = match soak(&args, seed).await {
        Ok(failed) => i32::from(failed),
        Err(err) => {
            eprintln!("soak: error: {err:#}");
            2
        }
    };
    std::process::exit(code)
}

/// One run; returns whether the audit found anything.
async fn soak(args: &Args, seed: u64) -> anyhow::Result<bool> {
    let started = Instant::now();
    let workspace = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    if !args.no_build {
        workers::build(&workspace)?;
        eprintln!(
            "soak: workers built in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    let dir = std::env::temp_dir().join(format!(
        "orderflow-soak-{seed}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ));
    std::fs::create_dir_all(&dir)?;
    eprintln!(
        "soak: seed {seed}, {} orders, run dir {}",
        args.orders,
        dir.display()
    );

    let mut rng = Rng::new(seed);
    let planned = Arc::new(plan::orders(args.orders, &mut rng));
    let inventory = plan::inventory(args.orders);
    let postgres = args.store == StoreKind::Postgres;
    let mut kinds = chaos::kinds(postgres, args.cluster);
    if !args.faults.is_empty() {
        let known: Vec<&str> = kinds.iter().map(|fault| fault.name()).collect();
        if let Some(unknown) = args.faults.iter().find(|f| !known.contains(&f.as_str())) {
            anyhow::bail!(
                "--faults: no fault {unknown:?} in this run; it has {}",
                known.join(", ")
            );
        }
        kinds.retain(|fault| args.faults.iter().any(|f| f == fault.name()));
    }
    let schedule = chaos::schedule(args.fault_rounds, &kinds, &mut rng);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let settings = Settings {
        bin_dir: workers::profile_dir()?,
        dir: dir.clone(),
        inventory: inventory.clone(),
        retry: RetrySettings {
            max: args.retry_max,
            initial_ms: 200,
            multiplier: 2,
        },
        postgres,
        replicas: args.replicas,
        cluster: args.cluster,
        log: args.log.clone(),
    };
    let mut system = System::start(settings, http.clone()).await?;
    let setup_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let stores = Stores::open(
        &system.databases[&Role::Order],
        &system.databases[&Role::Payment],
        &system.databases[&Role::Stock],
    )
    .await?;

    // Orders go in on their own task, so a fault that blocks (rabbitmqctl) never holds them.
    let progress = Arc::new(AtomicUsize::new(0));
    let submitter = Arc::new(Submitter {
        http: http.clone(),
        urls: system
            .replicas(Role::Order)
            .map(|worker| worker.url("/orders"))
            .collect(),
        seed,
        concurrency: args.concurrency,
        rate: args.rate,
        give_up_after: Duration::from_secs(180),
    });
    let submission = {
        let (planned, progress) = (planned.clone(), progress.clone());
        tokio::spawn(submitter.submit_all(planned, progress))
    };
    let faults = inject_faults(
        &mut system,
        &schedule,
        &kinds,
        &progress,
        args.orders,
        &mut rng,
    )
    .await;
    let submitted = submission.await.context("the submitting task panicked")?;
    let faults = faults?;
    let submit_s = started.elapsed().as_secs_f64();
    eprintln!("soak: every order submitted {submit_s:.1} s after the first; waiting for quiet");

    let drain = Duration::from_secs(args.drain_timeout_s);
    let quiet_for = Duration::from_secs(args.quiet_s);
    let first = wait_quiet(&mut system, &stores, args.retry_max, drain, quiet_for).await?;
    // From the first order until every queue was empty and stayed so.
    let settled_s = (started.elapsed().saturating_sub(quiet_for)).as_secs_f64();
    let first_letters = first.counts.dead_letter_total();
    let first_by_queue = first.counts.dead_letters.clone();
    // Dead letters of `tok_outage` orders are planned; any other one a fault caused.
    let outage_ids: HashSet<String> = planned
        .iter()
        .zip(&submitted)
        .filter(|(order, _)| order.kind == plan::Kind::Outage)
        .filter_map(|(_, submitted)| match submitted {
            Submitted::Created { order_id, .. } => Some(order_id.to_string()),
            Submitted::Failed { .. } => None,
        })
        .collect();
    let planned_letters = first
        .letters
        .iter()
        .filter(|l| {
            l.correlation_id
                .as_ref()
                .is_some_and(|id| outage_ids.contains(id))
        })
        .count();
    let fault_letters = first.letters.len() - planned_letters;
    let explained: HashSet<&str> = first
        .letters
        .iter()
        .filter_map(|l| l.correlation_id.as_deref())
        .collect();
    let unexplained_pending: HashSet<String> = if first.reached {
        first
            .snapshot
            .orders
            .values()
            .filter(|o| o.status == "pending" && !explained.contains(o.order_id.as_str()))
            .map(|o| o.order_id.clone())
            .collect()
    } else {
        HashSet::new()
    };
    for letter in &first.letters {
        eprintln!(
            "soak: dead letter in {}.dlq: {} for order {} ({}: {})",
            letter.queue,
            letter.kind.as_deref().unwrap_or("?"),
            letter.correlation_id.as_deref().unwrap_or("?"),
            letter.why,
            letter.error.as_deref().unwrap_or("")
        );
    }

    let mut last = first;
    let mut replayed = 0;
    for _ in 0..args.replay_rounds {
        if last.counts.dead_letters.is_empty() {
            break;
        }
        for dlq in last.counts.dead_letters.keys() {
            replayed += system.replay(dlq)?;
        }
        last = wait_quiet(&mut system, &stores, args.retry_max, drain, quiet_for).await?;
    }

    let audit = audit::audit(&Inputs {
        planned: &planned,
        submitted: &submitted,
        last: &last.snapshot,
        unexplained_pending: &unexplained_pending,
        dead_letters: &last.letters,
        inventory: &inventory,
    });
    report_findings(&audit, &system)?;
    let failed = !audit.clean() || !last.reached;

    let mut summary = json!({
        "orders": args.orders,
        "store": args.store.name(),
        "replicas": args.replicas,
        "broker_nodes": system.brokers.nodes().len(),
        "orders_per_s": round1(args.orders as f64 / settled_s.max(0.001)),
        "faults": faults,
        "lost": audit.count("lost"),
        "stuck": audit.count("stuck"),
        "double_charges": audit.count("double_charges"),
        "oversold": audit.count("oversold"),
        "dead_letters": first_letters,
        "replayed": replayed,
        "duration_s": round1(started.elapsed().as_secs_f64()),
        "seed": seed,
    });
    let extra = json!({
        "quiet": last.reached,
        "statuses": audit.statuses,
        "dead_letters_by_queue": first_by_queue,
        "dead_letters_planned": planned_letters,
        "dead_letters_from_faults": fault_letters,
        "dead_letters_left": last.counts.dead_letter_total(),
        "post_attempts": submitted.iter().map(attempts).sum::<u32>(),
        "idempotent_replays": submitted.iter().filter(|s| matches!(s, Submitted::Created { replayed: true, .. })).count(),
        "worker_exits": system.unexpected_exits(),
        "provider_audit": if last.snapshot.provider.is_some() {
            "provider_charges: at most one approved charge per order, charged - refunded balanced"
        } else {
            "charged_cents <= total (no provider_charges table)"
        },
        "submit_s": round1(submit_s),
        "settled_s": round1(settled_s),
        "setup_s": round1(setup_s),
    });
    for check in CHECKS {
        summary[check] = json!(audit.count(check));
    }
    if let (Some(summary), Some(extra)) = (summary.as_object_mut(), extra.as_object()) {
        summary.extend(extra.clone());
    }

    stores.close().await;
    drop(system);
    if failed || args.keep {
        eprintln!("soak: stores and logs kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    println!("{summary}");
    Ok(failed)
}

/// Runs the schedule while the orders go in: each fault once its share of the orders has been
/// submitted (or at once when all have been), then a pause of 0.5 to 2 s; meanwhile restarts any
/// worker that exited on its own. Returns the faults injected, by kind.
async fn inject_faults(
    system: &mut System,
    schedule: &[chaos::Scheduled],
    kinds: &[Fault],
    progress: &AtomicUsize,
    total: usize,
    rng: &mut Rng,
) -> anyhow::Result<BTreeMap<&'static str, usize>> {
    let mut counts: BTreeMap<&'static str, usize> =
        kinds.iter().map(|fault| (fault.name(), 0)).collect();
    let mut next = schedule.iter().peekable();
    loop {
        system.revive()?;
        let done = progress.load(Ordering::Relaxed);
        match next.peek() {
            Some(due) if done >= total || done as f64 >= due.at * total as f64 => {
                system.inject(due).await?;
                *counts.entry(due.fault.name()).or_default() += 1;
                next.next();
                tokio::time::sleep(Duration::from_secs_f64(rng.between(0.5, 2.0))).await;
            }
            None if done >= total => return Ok(counts),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Waits until every consumer queue and retry tier is empty (nothing ready, nothing delivered and
/// unacked, nothing dead-lettered and not yet moved), the outbox is sent and nothing (pending
/// orders, dead letters) has changed for `quiet_for`; gives up after `timeout`.
async fn wait_quiet(
    system: &mut System,
    stores: &Stores,
    tiers: u32,
    timeout: Duration,
    quiet_for: Duration,
) -> anyhow::Result<Quiet> {
    let deadline = Instant::now() + timeout;
    let mut broker: Option<Broker> = None;
    let mut stable_since: Option<(Instant, (i64, i64, u32, u32))> = None;
    let mut last_print = Instant::now();
    loop {
        system.revive()?;
        if broker.is_none() {
            broker = Broker::connect(&system.brokers.first_url(), tiers)
                .await
                .ok();
        }
        let counts = match broker.as_mut() {
            Some(b) => b.counts().await.ok(),
            None => None,
        };
        let progress = stores.progress().await.ok();
        if let (Some(counts), Some((pending, unsent))) = (counts, progress) {
            // Asked only when nothing is ready or unsent: each `rabbitmqctl` starts a VM.
            let unsettled = if unsent == 0 && counts.in_flight_total() == 0 {
                system.brokers.unsettled(&counts.in_flight).ok()
            } else {
                None
            };
            let state = (
                pending,
                unsent,
                counts.in_flight_total(),
                counts.dead_letter_total(),
            );
            let idle = state.1 == 0 && state.2 == 0 && unsettled == Some(0);
            match stable_since {
                Some((since, seen)) if seen == state && idle => {
                    if since.elapsed() >= quiet_for {
                        let mut broker = broker.take().context("connected above")?;
                        let letters = broker.dead_letters().await?;
                        drop(broker);
                        let snapshot = stores.snapshot().await?;
                        return Ok(Quiet {
                            counts,
                            snapshot,
                            letters,
                            reached: true,
                        });
                    }
                }
                _ => stable_since = Some((Instant::now(), state)),
            }
            if last_print.elapsed() > Duration::from_secs(10) {
                eprintln!(
                    "soak: waiting: {pending} pending, {unsent} unsent, {} in queues ({} unacked \
                     or not yet dead-lettered), {} dead letters",
                    state.2,
                    unsettled.map_or_else(|| "?".to_owned(), |n| n.to_string()),
                    state.3
                );
                last_print = Instant::now();
            }
            if Instant::now() > deadline {
                eprintln!("soak: not quiet after {timeout:?}; auditing as it is");
                let letters = match broker.as_mut() {
                    Some(b) => b.dead_letters().await.unwrap_or_default(),
                    None => Vec::new(),
                };
                return Ok(Quiet {
                    counts,
                    snapshot: stores.snapshot().await?,
                    letters,
                    reached: false,
                });
            }
        } else {
            broker = None;
            anyhow::ensure!(
                Instant::now() < deadline,
                "the broker or the order store could not be read for {timeout:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Writes every finding to `findings.jsonl` in the run dir and the first 20 of each check to
/// stderr.
fn report_findings(audit: &Audit, system: &System) -> anyhow::Result<()> {
    if audit.clean() {
        return Ok(());
    }
    let path = system.dir().join("findings.jsonl");
    let mut file = std::fs::File::create(&path)?;
    let mut shown: HashMap<&str, usize> = HashMap::new();
    for finding in &audit.findings {
        let line = serde_json::to_string(finding)?;
        writeln!(file, "{line}")?;
        let n = shown.entry(finding.check).or_default();
        *n += 1;
        if *n <= 20 {
            eprintln!("soak: FINDING {line}");
        }
    }
    eprintln!(
        "soak: {} findings, all in {}",
        audit.findings.len(),
        path.display()
    );
    // CI keeps only this output: what each worker logged about the first lost orders.
    let lost: Vec<&str> = audit
        .findings
        .iter()
        .filter(|f| f.check == "lost")
        .filter_map(|f| f.subject.split_whitespace().next())
        .take(3)
        .collect();
    if !lost.is_empty() {
        let logs: Vec<(String, String)> = system
            .workers
            .iter()
            .map(|w| {
                (
                    w.name(),
                    std::fs::read_to_string(w.log()).unwrap_or_default(),
                )
            })
            .collect();
        for order_id in lost {
            for (name, log) in &logs {
                for line in log.lines().filter(|l| l.contains(order_id)).take(30) {
                    eprintln!("soak: {name} | {line}");
                }
            }
        }
    }
    Ok(())
}

fn attempts(submitted: &Submitted) -> u32 {
    match submitted {
        Submitted::Created { attempts, .. } | Submitted::Failed { attempts, .. } => *attempts,
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}
