//! The worker binary's HTTP server against a client that misbehaves: a slow client cannot hold a
//! SIGTERM open. (The body limits are tested in process: `service::http` and the order worker's
//! own tests.)

use e2e::{Options, System};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// The server's shutdown grace (10 s) plus room for the rest of the shutdown.
const EXIT_WITHIN: Duration = Duration::from_secs(25);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_stuck_slow_client_exits_promptly_and_cleanly() {
    let mut system = System::start(Options::default()).await;
    // A whole head, then a body of one byte a second: 1,000 s to finish.
    let mut stream = tokio::net::TcpStream::connect(system.orders[0].addr())
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
    let status = tokio::task::block_in_place(|| system.orders[0].terminate_within(EXIT_WITHIN));
    trickle.abort();
    let status = status.unwrap_or_else(|| {
        panic!(
            "the order worker did not exit within {EXIT_WITHIN:?} of SIGTERM; log: {}",
            system.orders[0].log_tail()
        )
    });
    assert!(status.success(), "exit status {status}");
}
