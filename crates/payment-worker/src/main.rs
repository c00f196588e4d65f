//! `payment-worker`: parses its flags and runs the worker until SIGTERM or Ctrl-C.

use clap::Parser;

/// The payment worker (every flag also reads the environment variable named in `--help`).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    common: service::args::CommonArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.common.init_logging();
    let settings = args
        .common
        .settings(payment_worker::APP_ID, ([127, 0, 0, 1], 8081).into());
    payment_worker::run(settings, service::shutdown::signal()).await
}
