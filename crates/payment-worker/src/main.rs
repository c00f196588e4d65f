//! `payment-worker`: parses its flags and runs the worker until SIGTERM or Ctrl-C.

fn main() -> std::process::ExitCode {
    let settings = service::args::parse(payment_worker::APP_ID, 8081);
    let addr = settings.http_addr;
    service::telemetry::exit(service::worker::block_on(
        settings.worker_threads,
        payment_worker::run(settings, addr, service::shutdown::signal()),
    ))
}
