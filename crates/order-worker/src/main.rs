//! `order-worker`: parses its flags and runs the worker until SIGTERM or Ctrl-C.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = service::args::parse(order_worker::APP_ID, 8080);
    order_worker::run(settings, service::shutdown::signal()).await
}
