//! The relay's batches with a recording publisher: what goes out, and what a refusing broker
//! does to a row.

use super::{QUARANTINE_AFTER, backoff, relay_batch};
use crate::store::{Created, OrderStore};
use crate::validation::NewOrder;
use broker::RecordingPublisher;
use contracts::OrderCreated;
use contracts::fixtures::published;
use service::test_store::TestStore;
use std::time::Duration;
use uuid::Uuid;

async fn placed(store: &OrderStore) -> Uuid {
    let request = NewOrder::example(1).validate().unwrap();
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
