//! `gateway`: parses its flags and serves the `/v1` API until SIGTERM or Ctrl-C;
//! `gateway hash-key <key>` prints the SHA-256 that `API_KEYS` stores for a key.

use anyhow::Context;
use clap::{Parser, Subcommand};
use gateway::auth::{Authenticator, JwtSettings, KeyEntry};
use gateway::breaker::BreakerSettings;
use gateway::limit::Limits;
use gateway::routes::Gateway;
use gateway::upstream::{Addresses, Upstreams};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// orderflow's API gateway (every flag also reads the environment variable named in `--help`).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Address of the `/v1` API, `/healthz`, `/readyz` and `/metrics`.
    #[arg(long, env = "HTTP_ADDR", default_value = "127.0.0.1:8000")]
    http_addr: SocketAddr,
    /// The order workers' gRPC, comma-separated (calls spread across them).
    #[arg(
        long,
        env = "ORDER_GRPC_URL",
        default_value = "http://127.0.0.1:9080",
        value_delimiter = ','
    )]
    order_grpc_url: Vec<String>,
    /// The stock workers' gRPC, comma-separated.
    #[arg(
        long,
        env = "STOCK_GRPC_URL",
        default_value = "http://127.0.0.1:9082",
        value_delimiter = ','
    )]
    stock_grpc_url: Vec<String>,
    /// The payment worker's HTTP API (for `GET /v1/orders/{id}`).
    #[arg(
        long,
        env = "PAYMENT_HTTP_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    payment_http_url: String,
    /// The stock worker's HTTP API (for the reservation in `GET /v1/orders/{id}`).
    #[arg(long, env = "STOCK_HTTP_URL", default_value = "http://127.0.0.1:8082")]
    stock_http_url: String,
    /// API keys as JSON, `[{"name","sha256","scopes":[…],"customer_id"?}]` (see `hash-key`).
    #[arg(long, env = "API_KEYS", hide_env_values = true)]
    api_keys: Option<String>,
    /// A file of API keys in the same JSON.
    #[arg(long, env = "API_KEYS_FILE")]
    api_keys_file: Option<PathBuf>,
    /// The issuer every JWT must name; enables bearer tokens.
    #[arg(long, env = "JWT_ISSUER", requires = "jwt_audience")]
    jwt_issuer: Option<String>,
    /// The audience every JWT must name.
    #[arg(long, env = "JWT_AUDIENCE")]
    jwt_audience: Option<String>,
    /// Shared secret of HS256 tokens (32 bytes or more).
    #[arg(long, env = "JWT_HS256_SECRET", hide_env_values = true)]
    jwt_hs256_secret: Option<String>,
    /// PEM public key of RS256 tokens.
    #[arg(long, env = "JWT_RS256_PUBLIC_KEY_FILE")]
    jwt_rs256_public_key_file: Option<PathBuf>,
    /// Requests a minute per caller (a tenth of it as a burst).
    #[arg(long, env = "RATE_LIMIT_PER_MINUTE", default_value = "600")]
    rate_limit_per_minute: NonZeroU32,
    /// Requests a minute per client address without a valid credential.
    #[arg(long, env = "RATE_LIMIT_ANONYMOUS_PER_MINUTE", default_value = "60")]
    rate_limit_anonymous_per_minute: NonZeroU32,
    /// Calls in the breaker's window before its failure rate counts.
    #[arg(long, env = "BREAKER_MIN_CALLS", default_value_t = 10)]
    breaker_min_calls: u32,
    /// The breaker's window, in seconds: more than half failed in it opens the breaker.
    #[arg(long, env = "BREAKER_WINDOW_SECS", default_value_t = 10)]
    breaker_window_secs: u64,
    /// Seconds an open breaker refuses calls before half-open probes.
    #[arg(long, env = "BREAKER_OPEN_SECS", default_value_t = 30)]
    breaker_open_secs: u64,
    /// Milliseconds an upstream call may take.
    #[arg(long, env = "UPSTREAM_TIMEOUT_MS", default_value_t = 5000)]
    upstream_timeout_ms: u64,
    /// Log filter, e.g. `info,gateway=debug`.
    #[arg(long = "log", env = "RUST_LOG", default_value = "info")]
    log_filter: String,
    /// Log one JSON object per line (`LOG_JSON=1`, `true`, `yes` or `on`).
    #[arg(
        long,
        env = "LOG_JSON",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    log_json: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the SHA-256 of an API key, as `API_KEYS` stores it.
    HashKey { key: String },
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Command::HashKey { key }) = &args.command {
        println!("{}", gateway::auth::hash_key(key));
        return ExitCode::SUCCESS;
    }
    if let Err(err) = service::telemetry::init("gateway", &args.log_filter, args.log_json) {
        eprintln!("gateway: {err}");
        return ExitCode::from(2);
    }
    service::telemetry::exit(run(args))
}

fn run(args: Args) -> anyhow::Result<()> {
    // reqwest is built without a default TLS provider (the workspace uses ring).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut keys: Vec<KeyEntry> = match &args.api_keys {
        Some(json) => serde_json::from_str(json).context("API_KEYS")?,
        None => Vec::new(),
    };
    if let Some(path) = &args.api_keys_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading API_KEYS_FILE {}", path.display()))?;
        let more: Vec<KeyEntry> = serde_json::from_str(&text)
            .with_context(|| format!("API_KEYS_FILE {}", path.display()))?;
        keys.extend(more);
    }
    let jwt = match (args.jwt_issuer, args.jwt_audience) {
        (Some(issuer), Some(audience)) => Some(JwtSettings {
            hs256_secret: args.jwt_hs256_secret,
            rs256_public_pem: args
                .jwt_rs256_public_key_file
                .map(|path| {
                    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
                })
                .transpose()?,
            issuer,
            audience,
        }),
        _ => None,
    };
    if keys.is_empty() && jwt.is_none() {
        tracing::warn!("no API keys and no JWT issuer: every /v1 request is refused with 401");
    }
    let auth = Arc::new(Authenticator::new(keys, jwt)?);
    let breakers = BreakerSettings {
        min_calls: args.breaker_min_calls,
        window: Duration::from_secs(args.breaker_window_secs.max(1)),
        open_for: Duration::from_secs(args.breaker_open_secs),
    };
    let addresses = Addresses {
        order_grpc: args.order_grpc_url,
        stock_grpc: args.stock_grpc_url,
        payment_http: args.payment_http_url.trim_end_matches('/').to_owned(),
        stock_http: args.stock_http_url.trim_end_matches('/').to_owned(),
    };
    let timeout = Duration::from_millis(args.upstream_timeout_ms);
    let http_addr = args.http_addr;
    let limits = Limits::per_minute(
        args.rate_limit_per_minute,
        args.rate_limit_anonymous_per_minute,
    );
    service::worker::block_on(1, async move {
        let upstreams = Upstreams::new(addresses, breakers, timeout)?;
        let gateway = Gateway {
            upstreams,
            auth,
            limits,
        };
        gateway::run(gateway, http_addr, service::shutdown::signal()).await
    })
}
