//! `payment-worker`: parses its flags and runs the worker until SIGTERM or Ctrl-C.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = service::args::parse(payment_worker::APP_ID, 8081);
    payment_worker::run(settings, service::shutdown::signal()).await
}
