//! What a worker prints as it starts and stops (the binary, as an operator runs it): no secret in
//! `--help` or in the error of a malformed URL; JSON lines when asked, however the flag is
//! spelled; no colour codes into a pipe; a log filter that does not parse is a usage error.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "s3cr3t-pw";

/// Runs the worker with `env`, killing it if it has not exited after 60 s.
fn run(args: &[&str], env: &[(&str, String)]) -> (Output, bool) {
    let dir = std::env::temp_dir().join(format!("secrets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_payment-worker"));
    command
        .args(args)
        .current_dir(&dir)
        .env("HTTP_ADDR", "127.0.0.1:0")
        .env("DATABASE_URL", "sqlite://secrets.db")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut exited = true;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            exited = false;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (child.wait_with_output().unwrap(), exited)
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn help_never_prints_the_broker_or_database_password() {
    let (output, _) = run(
        &["--help"],
        &[
            ("AMQP_URL", format!("amqp://u:{SECRET}@127.0.0.1:5672/%2f")),
            (
                "DATABASE_URL",
                format!("postgres://u:{SECRET}@127.0.0.1/db?password={SECRET}"),
            ),
        ],
    );
    let shown = text(&output);
    assert!(output.status.success(), "{shown}");
    assert!(
        shown.contains("AMQP_URL") && shown.contains("DATABASE_URL"),
        "{shown}"
    );
    assert!(
        !shown.contains(SECRET),
        "--help printed the password:\n{shown}"
    );
}

/// Runs the worker with `env`; it must stop with an error and never print [`SECRET`].
fn stops_without_the_secret(env: &[(&str, String)]) -> String {
    let (output, exited) = run(&[], env);
    let shown = text(&output);
    assert!(
        exited,
        "the worker kept running on a malformed URL:\n{shown}"
    );
    assert!(!output.status.success(), "{shown}");
    assert!(
        !shown.contains(SECRET),
        "the error echoed the password:\n{shown}"
    );
    shown
}

#[test]
fn a_malformed_broker_url_stops_the_worker_without_echoing_its_password() {
    let shown = stops_without_the_secret(&[("AMQP_URL", format!("amqp://u:{SECRET}@[broken/%2f"))]);
    assert!(
        shown.contains("amqp://u:***@"),
        "the error names the URL, redacted:\n{shown}"
    );
}

#[test]
fn a_malformed_database_url_stops_the_worker_without_echoing_its_password() {
    stops_without_the_secret(&[(
        "DATABASE_URL",
        format!("postgres://u:{SECRET}@[broken/db?password={SECRET}"),
    )]);
}

/// Every line the worker wrote, which must all be JSON objects.
fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    text(output)
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"))
        })
        .collect()
}

#[test]
fn log_json_1_and_true_both_give_json_lines_down_to_the_fatal_error() {
    for spelling in ["1", "true", "yes", "on"] {
        let (output, exited) = run(
            &[],
            &[
                ("LOG_JSON", spelling.to_owned()),
                ("AMQP_URL", "amqp://u:p@[broken/%2f".to_owned()),
            ],
        );
        assert!(
            exited && !output.status.success(),
            "LOG_JSON={spelling}: {}",
            text(&output)
        );
        let lines = json_lines(&output);
        let fatal = lines
            .iter()
            .find(|line| line["level"] == "ERROR")
            .unwrap_or_else(|| panic!("LOG_JSON={spelling}: no error line in {lines:?}"));
        assert!(
            fatal["fields"]["error"]
                .as_str()
                .is_some_and(|e| e.contains("amqp://")),
            "{fatal}"
        );
    }
}

#[test]
fn text_logs_into_a_pipe_carry_no_colour_codes() {
    let (output, _) = run(&[], &[("AMQP_URL", "amqp://u:p@[broken/%2f".to_owned())]);
    let shown = text(&output);
    assert!(shown.contains("stopped by a fatal error"), "{shown}");
    assert!(
        !shown.contains('\u{1b}'),
        "ANSI escape codes in piped logs:\n{shown}"
    );
}

#[test]
fn a_log_filter_that_does_not_parse_is_a_usage_error() {
    let (output, exited) = run(&[], &[("RUST_LOG", "info,broker=lodu".to_owned())]);
    let shown = text(&output);
    assert!(exited, "{shown}");
    assert_eq!(output.status.code(), Some(2), "{shown}");
    assert!(shown.contains("broker=lodu"), "{shown}");
}

#[test]
fn an_otlp_protocol_this_build_cannot_export_is_a_usage_error() {
    let (output, exited) = run(
        &[],
        &[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "http://127.0.0.1:4317".to_owned(),
            ),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".to_owned()),
        ],
    );
    let shown = text(&output);
    assert!(exited, "{shown}");
    assert_eq!(output.status.code(), Some(2), "{shown}");
    assert!(shown.contains("http/protobuf only"), "{shown}");
}
