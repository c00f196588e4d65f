//! `order-worker`: parses its flags and runs the worker until SIGTERM or Ctrl-C.

use clap::Parser;
use std::net::SocketAddr;
use std::process::ExitCode;

/// The order worker (every flag also reads the environment variable named in `--help`).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    common: service::args::CommonArgs,
    /// Address of the gRPC `api.OrderService` (with health and reflection).
    #[arg(long, env = "GRPC_ADDR", default_value = "127.0.0.1:9080")]
    grpc_addr: SocketAddr,
    /// The stock service(s) that price orders, `http://host:port`; several, comma-separated,
    /// share the calls.
    #[arg(
        long,
        env = "STOCK_GRPC_URL",
        default_value = "http://127.0.0.1:9082",
        value_delimiter = ','
    )]
    stock_grpc_url: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    service::args::init_logging_or_exit::<Args>(&args.common, order_worker::APP_ID);
    service::telemetry::exit(run(args))
}

fn run(args: Args) -> anyhow::Result<()> {
    let settings = args
        .common
        .settings(order_worker::APP_ID, ([127, 0, 0, 1], 8080).into())?;
    let addr = settings.http_addr;
    service::worker::block_on(settings.worker_threads, async move {
        let catalogue = order_worker::catalogue::Catalogue::connect(&args.stock_grpc_url)?;
        order_worker::run(
            settings,
            catalogue,
            addr,
            args.grpc_addr,
            service::shutdown::signal(),
        )
        .await
    })
}
