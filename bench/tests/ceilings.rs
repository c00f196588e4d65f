//! Both bare ceilings on a real broker: every order's (every message's) deliveries arrive, so a
//! run ends with a rate; a lost or misrouted delivery would leave it waiting.

use orderflow_bench::{chain, library_chain, saga};
use std::time::Duration;
use testkit::TestVhost;

/// Far above what a few hundred orders take; a hung ceiling fails instead of blocking CI.
const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn the_saga_ceiling_sees_every_order_reserved_and_paid() {
    let vhost = TestVhost::new().await;
    let bodies = saga::Bodies::new().unwrap();
    let (orders_per_s, cpu) =
        tokio::time::timeout(WAIT, saga::ceiling(&vhost.url, 300, 128, &bodies))
            .await
            .expect("300 orders within a minute")
            .unwrap();
    assert!(orders_per_s > 0.0, "{orders_per_s}");
    assert!(cpu.get("client").is_some_and(|ms| *ms > 0.0), "{cpu:?}");
}

#[tokio::test]
async fn the_chain_ceiling_delivers_every_message_to_both_sinks() {
    let vhost = TestVhost::new().await;
    let body = saga::Bodies::new().unwrap().created;
    let (messages_per_s, _) =
        tokio::time::timeout(WAIT, chain::ceiling(&vhost.url, 300, 128, &body))
            .await
            .expect("300 messages within a minute")
            .unwrap();
    assert!(messages_per_s > 0.0, "{messages_per_s}");
}

#[tokio::test]
async fn the_chain_through_the_library_delivers_every_message_to_both_sinks() {
    let vhost = TestVhost::new().await;
    let body = saga::Bodies::new().unwrap().created;
    let (messages_per_s, cpu) =
        tokio::time::timeout(WAIT, library_chain::ceiling(&vhost.url, 300, 128, &body))
            .await
            .expect("300 messages within a minute")
            .unwrap();
    assert!(messages_per_s > 0.0, "{messages_per_s}");
    assert!(cpu.get("client").is_some_and(|ms| *ms > 0.0), "{cpu:?}");
}
