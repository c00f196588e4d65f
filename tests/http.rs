//! The workers' HTTP server against clients that misbehave: a slow client cannot hold a SIGTERM
//! open, and a plain client posting an oversized body reads the 413.

use e2e::{Options, System};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// The server's shutdown grace (10 s) plus room for the rest of the shutdown.
const EXIT_WITHIN: Duration = Duration::from_secs(25);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_stuck_slow_client_exits_promptly_and_cleanly() {
    let mut system = System::start(Options::default()).await;
    // A whole head, then a body of one byte a second: 1,000 s to finish.
    let mut stream = tokio::net::TcpStream::connect(system.order.addr)
        .await
        .unwrap();
    stream
        .write_all(
            b"POST /orders HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{",
        )
        .await
        .unwrap();
    let trickle = tokio::spawn(async move {
        for _ in 0..1000 {
            if stream.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = tokio::task::block_in_place(|| system.order.terminate_within(EXIT_WITHIN));
    trickle.abort();
    let status = status.unwrap_or_else(|| {
        panic!(
            "the order worker did not exit within {EXIT_WITHIN:?} of SIGTERM; log: {}",
            system.order.log_tail()
        )
    });
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn a_10_mb_urllib_post_reads_the_413_as_json() {
    let system = System::start(Options::default()).await;
    let script = r#"
import json, sys, urllib.request, urllib.error
request = urllib.request.Request(sys.argv[1], data=b"x" * (10 * 1024 * 1024), method="POST",
                                 headers={"content-type": "application/json"})
try:
    urllib.request.urlopen(request, timeout=60)
    print("accepted")
except urllib.error.HTTPError as err:
    print(err.code, json.dumps(json.loads(err.read())))
"#;
    let out = tokio::process::Command::new("python3")
        .args(["-c", script, &system.order.url("/orders")])
        .output()
        .await
        .expect("python3 is installed");
    assert!(
        out.status.success(),
        "urllib failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let (code, body) = stdout.trim().split_once(' ').unwrap_or(("", ""));
    assert_eq!(code, "413", "{stdout}");
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("10485760")),
        "{body}"
    );
    // Nothing was stored, and the server still answers.
    assert_eq!(system.order_count().await, 0);
    system.create_order(Some("tok_visa"), "SKU-1", 1).await;
}
