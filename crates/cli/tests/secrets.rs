//! The CLI's `--help` never prints the broker's or the management API's password.

use std::process::Command;

#[test]
fn help_never_prints_a_password_from_the_environment() {
    let secret = "s3cr3t-pw";
    let output = Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .arg("--help")
        .env("AMQP_URL", format!("amqp://u:{secret}@127.0.0.1:5672/%2f"))
        .env(
            "RABBITMQ_MANAGEMENT_URL",
            format!("http://u:{secret}@127.0.0.1:15672"),
        )
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{shown}");
    assert!(shown.contains("AMQP_URL"), "{shown}");
    assert!(
        !shown.contains(secret),
        "--help printed the password:\n{shown}"
    );
}
