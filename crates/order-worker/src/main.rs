//! `order-worker`: parses its flags and runs the worker until SIGTERM or Ctrl-C.

fn main() -> std::process::ExitCode {
    let settings = service::args::parse(order_worker::APP_ID, 8080);
    let addr = settings.http_addr;
    service::telemetry::exit(service::worker::block_on(
        settings.worker_threads,
        order_worker::run(settings, addr, service::shutdown::signal()),
    ))
}
