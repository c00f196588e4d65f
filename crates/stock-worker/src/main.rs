//! `stock-worker`: parses its flags, reads the initial inventory and runs the worker until
//! SIGTERM or Ctrl-C.

use anyhow::Context;
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// The stock worker (every flag also reads the environment variable named in `--help`).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    common: service::args::CommonArgs,
    /// The catalogue and initial inventory, `{"SKU-1": {"name", "price_cents", "currency",
    /// "units"}, …}`: names and prices are rewritten on every start, units added only for SKUs
    /// the store does not know.
    #[arg(long, env = "STOCK_FILE", default_value = "deploy/stock.json")]
    stock_file: PathBuf,
    /// Address of the gRPC `api.StockService` (with health and reflection).
    #[arg(long, env = "GRPC_ADDR", default_value = "127.0.0.1:9082")]
    grpc_addr: SocketAddr,
}

fn main() -> ExitCode {
    let args = Args::parse();
    service::args::init_logging_or_exit::<Args>(&args.common, stock_worker::APP_ID);
    service::telemetry::exit(run(args))
}

fn run(args: Args) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.stock_file)
        .with_context(|| format!("reading STOCK_FILE {}", args.stock_file.display()))?;
    let inventory = stock_worker::catalogue::parse(&text)
        .map_err(|err| anyhow::anyhow!("STOCK_FILE {}: {err}", args.stock_file.display()))?;
    let settings = args
        .common
        .settings(stock_worker::APP_ID, ([127, 0, 0, 1], 8082).into())?;
    let addr = settings.http_addr;
    service::worker::block_on(
        settings.worker_threads,
        stock_worker::run(
            settings,
            inventory,
            addr,
            args.grpc_addr,
            service::shutdown::signal(),
        ),
    )
}
