//! The dead-letter page in a real browser (Debian's chromium driven by Playwright): dead-lettered
//! orders are found on the page; one replayed with clicks completes, one edited and retried
//! completes with its edited body, one deleted is gone; a forged POST changes nothing.

use e2e::{Options, System, process};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use testkit::eventually;
use tokio::io::{AsyncBufReadExt, BufReader};

const WAIT: Duration = Duration::from_secs(120);
const BROWSER_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/browser");

/// `orderflow ui` on a free port of `system`'s vhost; the child and the page's URL.
async fn serve_page(system: &System) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(process::bin_dir().join("orderflow"))
        .args([
            "--amqp-url",
            &system.vhost.url,
            "ui",
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("running orderflow ui");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines
        .next_line()
        .await
        .unwrap()
        .expect("orderflow ui prints where it listens");
    let url = first
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {first:?}"))
        .to_owned();
    (child, url)
}

async fn dead_letters(system: &System, queue: &str) -> Vec<serde_json::Value> {
    let (ok, out) = system.cli(&["dlq", "show", queue, "--json"]).await;
    assert!(ok, "dlq show {queue}");
    out.lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lettered_order_is_found_on_the_page_replayed_with_a_click_and_completes() {
    assert!(
        Path::new("/usr/bin/chromium").exists()
            && Path::new(BROWSER_DIR).join("node_modules").exists(),
        "the browser test needs Debian's chromium and playwright-core: run deploy/ensure-browser.sh"
    );
    let system = System::start(Options::default()).await;
    let mut orders = Vec::new();
    for _ in 0..3 {
        orders.push(system.create_order(Some("tok_outage"), "SKU-1", 1).await);
    }
    let (replay, edit, delete) = (orders[0], orders[1], orders[2]);
    let queue = "payment.order-created";
    let letters = eventually("three dead letters", WAIT, || async {
        let letters = dead_letters(&system, queue).await;
        (letters.len() == 3).then_some(letters)
    })
    .await
    .unwrap();
    let message_id = letters[0]["message_id"].as_str().unwrap().to_owned();
    let (_page, url) = serve_page(&system).await;

    // A form posted without the page's token (as another site would) is refused and changes
    // nothing.
    let forged = reqwest::Client::new()
        .post(format!("{url}act"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "action=delete&queue=payment.order-created.dlq&id={message_id}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(
        dead_letters(&system, queue).await.len(),
        3,
        "nothing deleted"
    );

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let browser = tokio::process::Command::new("node")
        .arg(Path::new(BROWSER_DIR).join("dead_letter_page.mjs"))
        .env("UI_URL", &url)
        .env("REPLAY", replay.to_string())
        .env("EDIT", edit.to_string())
        .env("DELETE", delete.to_string())
        .env("SHOTS", shots)
        .output()
        .await
        .expect("running node");
    let seen = String::from_utf8_lossy(&browser.stdout);
    assert!(
        browser.status.success(),
        "{seen}{}",
        String::from_utf8_lossy(&browser.stderr)
    );
    println!("{seen}screenshots in {}", shots.display());

    let done = system.wait_terminal(&[replay, edit], WAIT).await;
    assert_eq!(
        done[&replay]["status"], "completed",
        "the replayed payment went through"
    );
    assert_eq!(
        done[&edit]["status"], "completed",
        "the edited payment went through"
    );
    let charged = system.payment(edit).await.unwrap();
    assert_eq!(charged["status"], "charged", "{charged}");
    assert!(
        dead_letters(&system, queue).await.is_empty(),
        "none left, none copied"
    );
    let deleted = system
        .get(&system.orders[0], &format!("/orders/{delete}"))
        .await
        .unwrap();
    assert_ne!(
        deleted["status"], "completed",
        "the deleted dead letter was not replayed"
    );
}
