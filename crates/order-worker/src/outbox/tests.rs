//! The relay's batches with a recording publisher: what goes out, what a refusing broker does to
//! a row, and replicas taking turns through the relay's lease.

use super::{QUARANTINE_AFTER, RELAY_LEASE, backoff, relay, relay_batch};
use crate::store::{Created, OrderStore};
use crate::validation::NewOrder;
use broker::RecordingPublisher;
use contracts::OrderCreated;
use contracts::fixtures::published;
use service::lease::Lease;
use service::test_store::TestStore;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

async fn placed(store: &OrderStore) -> Uuid {
    let request = NewOrder::example(1)
        .price(&crate::validation::catalogue())
        .unwrap();
    match store.create(&request, None).await.unwrap() {
        Created::New(order_id) => order_id,
        other => panic!("a new order, not {other:?}"),
    }
}

#[tokio::test]
async fn a_batch_goes_out_with_the_rows_ids_and_is_marked_sent() {
    let scratch = TestStore::sqlite(&crate::MIGRATOR).await;
    let store = OrderStore::new(scratch.db());
    let order_id = placed(&store).await;
    let publisher = RecordingPublisher::new(crate::APP_ID);
    let batch = store.unsent(10).await.unwrap();
    assert!(relay_batch(&store, &publisher, &batch).await);
    let sent = publisher.published();
    assert_eq!(sent.len(), 1);
    let event: OrderCreated = published(&sent[0]);
    assert_eq!(event.order_id, order_id);
    assert!(store.unsent(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_row_the_broker_keeps_refusing_is_quarantined_not_dropped() {
    let scratch = TestStore::sqlite(&crate::MIGRATOR).await;
    let store = OrderStore::new(scratch.db());
    placed(&store).await;
    let publisher = RecordingPublisher::new(crate::APP_ID);
    for round in 1..=QUARANTINE_AFTER {
        let batch = store.unsent(10).await.unwrap();
        assert_eq!(batch.len(), 1, "round {round}: the row is still relayed");
        // Refused in the batch, and again alone.
        publisher.fail_next(2);
        assert!(!relay_batch(&store, &publisher, &batch).await);
    }
    assert!(
        store.unsent(10).await.unwrap().is_empty(),
        "skipped from now on"
    );
    let held = store.quarantined().await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].attempts, QUARANTINE_AFTER);
    assert!(publisher.published().is_empty());
}

#[test]
fn backoff_doubles_from_the_first_pause_up_to_the_cap() {
    let pauses: Vec<_> = (1..=8).map(backoff).collect();
    assert_eq!(pauses[0], Duration::from_millis(200));
    assert_eq!(pauses[1], Duration::from_millis(400));
    assert_eq!(pauses[4], Duration::from_millis(3200));
    assert_eq!(pauses[7], super::MAX_BACKOFF);
    assert_eq!(backoff(u32::MAX), super::MAX_BACKOFF);
}

/// Waits until `done` holds, polling; panics after 30 s naming `what`.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let waited = tokio::time::timeout(Duration::from_secs(30), async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "timed out waiting for {what}");
}

#[tokio::test]
async fn replicas_relay_one_at_a_time_and_a_standby_takes_over_from_a_crashed_one() {
    let scratch = TestStore::postgres(&crate::MIGRATOR).await;
    let store = OrderStore::new(scratch.db());
    let wake = Arc::new(Notify::new());
    let publishers = [
        RecordingPublisher::new(crate::APP_ID),
        RecordingPublisher::new(crate::APP_ID),
    ];
    let stops = [CancellationToken::new(), CancellationToken::new()];
    let relays: Vec<_> = publishers
        .iter()
        .zip(&stops)
        .map(|(publisher, stop)| {
            let lease = Lease::new(&scratch.db(), RELAY_LEASE);
            tokio::spawn(relay(
                store.clone(),
                lease,
                publisher.clone(),
                Arc::clone(&wake),
                stop.clone(),
            ))
        })
        .collect();
    let sent = |i: usize| publishers[i].published();

    let first = placed(&store).await;
    until("the first order relayed", || {
        sent(0).len() + sent(1).len() == 1
    })
    .await;
    let leader = usize::from(sent(0).is_empty());
    let standby = 1 - leader;
    assert_eq!(published::<OrderCreated>(&sent(leader)[0]).order_id, first);

    // The leader dies; its lease's connection goes with it.
    stops[leader].cancel();
    let [a, b]: [_; 2] = relays.try_into().unwrap();
    let (crashed, running) = if leader == 0 { (a, b) } else { (b, a) };
    crashed.await.unwrap();
    let second = placed(&store).await;
    until("the standby relaying", || !sent(standby).is_empty()).await;
    let taken_over = sent(standby);
    assert_eq!(
        taken_over.len(),
        1,
        "only the new row: the first stays sent"
    );
    assert_eq!(published::<OrderCreated>(&taken_over[0]).order_id, second);
    assert_eq!(sent(leader).len(), 1);
    stops[standby].cancel();
    running.await.unwrap();
}

/// The lease itself: one holder per key; when the holder's connection is cut, as by a crash or
/// a network failure, the standby takes it and the old holder learns it lost it.
async fn a_lease_has_one_holder_until_its_connection_ends(db: service::db::Db) {
    let mut first = Lease::new(&db, RELAY_LEASE);
    let mut second = Lease::new(&db, RELAY_LEASE);
    let mut other_job = Lease::new(&db, "another-job");
    assert!(first.held().await.unwrap());
    assert!(first.held().await.unwrap(), "still held");
    let sqlite = db.pool().connect_options().database_url.scheme() == "sqlite";
    if sqlite {
        assert!(
            second.held().await.unwrap(),
            "one replica by nature: always held"
        );
        return;
    }
    assert!(!second.held().await.unwrap(), "taken by the first");
    assert!(
        other_job.held().await.unwrap(),
        "another key is another lease"
    );
    // The holder in this test's database only (other tests hold the same key in theirs).
    let holders: Vec<i64> = sqlx::query_scalar(
        "SELECT pid::bigint FROM pg_locks \
         WHERE locktype = 'advisory' AND objid::bigint = $1 AND granted \
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .bind(service::lease::lock_key(RELAY_LEASE) & 0xffff_ffff)
    .fetch_all(db.pool())
    .await
    .unwrap();
    assert_eq!(holders.len(), 1, "one holder: {holders:?}");
    sqlx::query("SELECT pg_terminate_backend($1::int)")
        .bind(holders[0])
        .execute(db.pool())
        .await
        .unwrap();
    // `pg_terminate_backend` only signals: the lock is free once the backend has exited.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let alive: Option<i64> =
            sqlx::query_scalar("SELECT pid::bigint FROM pg_stat_activity WHERE pid = $1::int")
                .bind(holders[0])
                .fetch_optional(db.pool())
                .await
                .unwrap();
        if alive.is_none() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the holder did not exit in 10 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(second.held().await.unwrap(), "the standby takes over");
    assert!(!first.held().await.unwrap(), "the first has lost it");
}

service::store_tests!(crate::MIGRATOR; a_lease_has_one_holder_until_its_connection_ends);
