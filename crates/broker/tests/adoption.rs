//! The library as another project sees it: a Cargo project outside this workspace that depends on
//! `orderflow-broker` by path with its default features only, whose `main` is the crate's
//! `worker` example, builds and runs against the real broker.

use std::path::Path;
use std::process::Command;
use testkit::TestVhost;
use testkit::inspect::Inspector;

const MANIFEST: &str = r#"[package]
name = "adopter"
version = "0.1.0"
edition = "2024"
publish = false

[dependencies]
orderflow-broker = { path = "BROKER" }
serde = { version = "1", features = ["derive"] }
tokio = { version = "1", features = ["macros", "rt-multi-thread", "sync", "time"] }

# Not a member of any workspace above it.
[workspace]
"#;

#[tokio::test]
async fn a_project_outside_the_workspace_runs_the_worker_example_with_the_default_features() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    // Kept between runs (under the target directory), so a re-run builds incrementally.
    let project = Path::new(env!("CARGO_TARGET_TMPDIR")).join("adopter");
    std::fs::create_dir_all(project.join("src")).unwrap();
    let manifest = MANIFEST.replace("BROKER", &crate_dir.display().to_string());
    std::fs::write(project.join("Cargo.toml"), manifest).unwrap();
    std::fs::copy(
        crate_dir.join("examples/worker.rs"),
        project.join("src/main.rs"),
    )
    .unwrap();
    // The workspace's lock pins the versions it was tested with.
    std::fs::copy(
        crate_dir.join("../../Cargo.lock"),
        project.join("Cargo.lock"),
    )
    .unwrap();

    let vhost = TestVhost::new().await;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let url = vhost.url.clone();
    let project_dir = project.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(cargo)
            .args(["run", "--quiet", "--offline"])
            .current_dir(&project_dir)
            .env("CARGO_TARGET_DIR", project_dir.join("target"))
            .env("AMQP_URL", url)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("job 2 done after 1 retries"), "{stdout}");
    assert!(stdout.contains("all jobs settled"), "{stdout}");

    let inspector = Inspector::connect(&vhost.url).await.unwrap();
    let letters = inspector.take_all("demo.jobs.dlq").await.unwrap();
    assert_eq!(letters.len(), 1, "job 3 and only it was dead-lettered");
    assert_eq!(
        letters[0].header("error").as_deref(),
        Some("job 3 cannot be printed")
    );
    assert_eq!(
        letters[0].header("error-type").as_deref(),
        Some("unprintable")
    );
}
