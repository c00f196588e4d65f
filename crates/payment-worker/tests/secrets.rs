//! Secrets stay out of what a worker prints: its `--help`, and the error it stops with when a
//! URL is malformed (the binary, as an operator runs it).

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

#[test]
fn a_malformed_broker_url_stops_the_worker_without_echoing_its_password() {
    let (output, exited) = run(
        &[],
        &[("AMQP_URL", format!("amqp://u:{SECRET}@[broken/%2f"))],
    );
    let shown = text(&output);
    assert!(
        exited,
        "the worker kept running on a malformed URL:\n{shown}"
    );
    assert!(!output.status.success(), "{shown}");
    assert!(
        shown.contains("amqp://u:***@"),
        "the error names the URL, redacted:\n{shown}"
    );
    assert!(
        !shown.contains(SECRET),
        "the error echoed the password:\n{shown}"
    );
}

#[test]
fn a_malformed_database_url_stops_the_worker_without_echoing_its_password() {
    let (output, exited) = run(
        &[],
        &[(
            "DATABASE_URL",
            format!("postgres://u:{SECRET}@[broken/db?password={SECRET}"),
        )],
    );
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
}
