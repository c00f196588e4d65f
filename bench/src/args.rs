//! The benchmark's command line.

use clap::{Parser, ValueEnum};

/// How orders enter the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Via {
    /// `POST /orders` (validation, outbox, relay).
    Api,
    /// `order.created` published straight to the `orders` exchange.
    Exchange,
    /// `POST /v1/orders` at the gateway (authentication, rate limit, breaker, gRPC, then as `api`).
    Gateway,
}

/// Drive orders through orderflow and compare with the broker's ceiling.
#[derive(Debug, Clone, Parser)]
pub struct Args {
    /// Broker URL, including the vhost.
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f",
        hide_env_values = true
    )]
    pub amqp_url: String,
    /// The order worker's API.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub api_url: String,
    /// The gateway (with `--via gateway` or `--fronts`).
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub gateway_url: String,
    /// An API key of the gateway with the `orders:write` scope (`deploy/run.sh` prints one).
    #[arg(long, env = "API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Only compare the two front doors: the same orders straight at the order worker and
    /// through the gateway, alternated, then each at half the lower throughput for latency.
    #[arg(long)]
    pub fronts: bool,
    /// Orders per run.
    #[arg(long, default_value_t = 20000)]
    pub orders: usize,
    /// How orders enter the system.
    #[arg(long, value_enum, default_value_t = Via::Api)]
    pub via: Via,
    /// Share of orders that fail once transiently in the retry runs (0 skips them).
    #[arg(long, default_value_t = 0.1)]
    pub retry_share: f64,
    /// Rounds of four runs, two clean and two retry: more rounds, less of the machine's noise in
    /// the retry comparison.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    pub rounds: u16,
    /// Orders submitted at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Prefetch of the ceiling chain's consumers (the workers' default).
    #[arg(long, default_value_t = 128)]
    pub prefetch: u16,
    /// Skip the fixed-rate latency run.
    #[arg(long)]
    pub no_latency_run: bool,
    /// Also sweep the offered load (25 % to 125 % of the clean throughput) and draw the chart.
    #[arg(long)]
    pub sweep: bool,
    /// Where the sweep's chart goes.
    #[arg(long, default_value = "docs/load.png")]
    pub chart: std::path::PathBuf,
    /// The PostgreSQL postmaster the workers' stores are on (the first line of its
    /// `postmaster.pid`): its processes' CPU per order is reported as `postgres`.
    #[arg(long)]
    pub database_pid: Option<i32>,
}
