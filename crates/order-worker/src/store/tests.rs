//! The orders store on SQLite and PostgreSQL: facts in any order and before their order, the
//! inbox keyed by order, idempotency keys, the outbox's quarantine.

use super::{Applied, Change, Created, OrderStore};
use crate::validation::{NewOrder, ValidOrder};
use contracts::fixtures::order_created;
use contracts::names::queues;
use service::db::Db;
use service::inbox::Claim;
use service::test_retention::{LONG_AGO, count, execute, prune_now};
use tracing::instrument::{Instrument, WithSubscriber};
use uuid::Uuid;

fn request(quantity: u32) -> ValidOrder {
    NewOrder::example(quantity)
        .price(&crate::validation::catalogue())
        .unwrap()
}

/// An order adopted from an `order.created`, as the worker stores one from outside.
async fn known(store: &OrderStore) -> Uuid {
    let order_id = Uuid::new_v4();
    assert!(
        store
            .adopt(&order_created(order_id, &[("SKU-1", 1)], None))
            .await
            .unwrap()
    );
    order_id
}

async fn status(store: &OrderStore, order_id: Uuid) -> String {
    store
        .get(&order_id.to_string())
        .await
        .unwrap()
        .unwrap()
        .status
}

/// The event types waiting in the outbox for `order_id`.
async fn queued(store: &OrderStore, order_id: Uuid) -> Vec<String> {
    let order = order_id.to_string();
    store
        .unsent(100)
        .await
        .unwrap()
        .into_iter()
        .filter(|row| row.order_id == order)
        .map(|row| row.event_type)
        .collect()
}

async fn stock_and_payment_complete_the_order_in_either_order(db: Db) {
    let store = OrderStore::new(db);
    for facts in [
        [Change::StockReserved, Change::Paid],
        [Change::Paid, Change::StockReserved],
    ] {
        let order_id = known(&store).await;
        for (n, change) in facts.iter().enumerate() {
            let id = format!("fact-{n}");
            let applied = store
                .apply(
                    order_id,
                    change,
                    Claim::for_order(Some(&id), "q", &order_id.to_string()),
                )
                .await
                .unwrap();
            assert_eq!(applied, Applied::Done);
        }
        assert_eq!(status(&store, order_id).await, "completed", "{facts:?}");
        assert!(queued(&store, order_id).await.is_empty());
    }
}

async fn a_fact_before_its_order_releases_its_claim(db: Db) {
    let store = OrderStore::new(db);
    let order_id = Uuid::new_v4();
    let queue = queues::ORDER_ORDER_PAID;
    let early = store
        .apply(
            order_id,
            &Change::Paid,
            Claim::for_order(Some("paid-1"), queue, &order_id.to_string()),
        )
        .await
        .unwrap();
    assert_eq!(
        early,
        Applied::UnknownOrder,
        "retryable: the order may be on its way"
    );
    store
        .adopt(&order_created(order_id, &[("SKU-1", 1)], None))
        .await
        .unwrap();
    // The retry of the same delivery is applied, not dropped as a duplicate.
    let retried = store
        .apply(
            order_id,
            &Change::Paid,
            Claim::for_order(Some("paid-1"), queue, &order_id.to_string()),
        )
        .await
        .unwrap();
    assert_eq!(retried, Applied::Done);
    assert!(
        store
            .get(&order_id.to_string())
            .await
            .unwrap()
            .unwrap()
            .paid
    );
}

async fn a_cancel_before_its_order_releases_its_claim(db: Db) {
    let store = OrderStore::new(db);
    let order_id = Uuid::new_v4();
    let cancel = Change::Cancel("out_of_stock".into());
    let queue = queues::ORDER_STOCK_REJECTED;
    let early = store
        .apply(
            order_id,
            &cancel,
            Claim::for_order(Some("rejected-1"), queue, &order_id.to_string()),
        )
        .await
        .unwrap();
    assert_eq!(early, Applied::UnknownOrder);
    store
        .adopt(&order_created(order_id, &[("SKU-1", 1)], None))
        .await
        .unwrap();
    let retried = store
        .apply(
            order_id,
            &cancel,
            Claim::for_order(Some("rejected-1"), queue, &order_id.to_string()),
        )
        .await
        .unwrap();
    assert_eq!(retried, Applied::DoneWithEvent);
    assert_eq!(status(&store, order_id).await, "cancelled");
    assert_eq!(queued(&store, order_id).await, ["order.cancelled"]);
}

async fn the_first_cancel_wins_and_is_announced_once(db: Db) {
    let store = OrderStore::new(db);
    let order_id = known(&store).await;
    let first = Change::Cancel("out_of_stock".into());
    let second = Change::Cancel("payment_declined".into());
    let applied = store
        .apply(
            order_id,
            &first,
            Claim::for_order(Some("a"), "q-a", &order_id.to_string()),
        )
        .await
        .unwrap();
    assert_eq!(applied, Applied::DoneWithEvent);
    let applied = store
        .apply(
            order_id,
            &second,
            Claim::for_order(Some("b"), "q-b", &order_id.to_string()),
        )
        .await
        .unwrap();
    assert_eq!(applied, Applied::Done);
    // A payment that lands afterwards is recorded (so it is refunded), the order stays cancelled.
    let applied = store
        .apply(
            order_id,
            &Change::Paid,
            Claim::for_order(Some("c"), "q-c", &order_id.to_string()),
        )
        .await
        .unwrap();
    assert_eq!(applied, Applied::Done);
    let order = store.get(&order_id.to_string()).await.unwrap().unwrap();
    assert_eq!(
        (order.status.as_str(), order.reason.as_deref(), order.paid),
        ("cancelled", Some("out_of_stock"), true)
    );
    assert_eq!(queued(&store, order_id).await, ["order.cancelled"]);
}

/// A cancellation's `order.cancelled` continues the trace of what caused it (a delivery, or the
/// customer's request), instead of starting a trace of its own when relayed.
async fn a_cancellation_continues_the_trace_that_caused_it(db: Db) {
    let store = OrderStore::new(db);
    let by_fact = known(&store).await;
    let by_customer = known(&store).await;
    let traced = async {
        let span = tracing::info_span!("request");
        let trace_id = broker::trace::trace_id(&span).unwrap();
        async {
            let claim = Claim::for_order(Some("r-1"), "q", &by_fact.to_string());
            let change = Change::Cancel("out_of_stock".into());
            store.apply(by_fact, &change, claim).await.unwrap();
            store.cancel_for_customer(by_customer).await.unwrap();
        }
        .instrument(span)
        .await;
        trace_id
    };
    let trace_id = traced
        .with_subscriber(service::telemetry::spans_only())
        .await;
    let rows = store.unsent(10).await.unwrap();
    assert_eq!(rows.len(), 2);
    for row in rows {
        let stored = row.traceparent.unwrap_or_default();
        assert_eq!(
            stored.split('-').nth(1),
            Some(trace_id.as_str()),
            "{}: {stored}",
            row.order_id
        );
    }
}

async fn a_reused_message_id_on_another_orders_fact_moves_that_order(db: Db) {
    let store = OrderStore::new(db);
    let (a, b) = (known(&store).await, known(&store).await);
    let reused = Some("the-same-message-id");
    for id in [a, b] {
        let applied = store
            .apply(
                id,
                &Change::Paid,
                Claim::for_order(reused, queues::ORDER_ORDER_PAID, &id.to_string()),
            )
            .await
            .unwrap();
        assert_eq!(applied, Applied::Done);
        assert!(
            store.get(&id.to_string()).await.unwrap().unwrap().paid,
            "{id} is paid"
        );
    }
}

async fn an_idempotency_key_returns_its_order_and_refuses_another_request(db: Db) {
    let store = OrderStore::new(db);
    let Created::New(order_id) = store.create(&request(2), Some("key-1")).await.unwrap() else {
        panic!("a new key creates an order");
    };
    assert_eq!(
        store.create(&request(2), Some("key-1")).await.unwrap(),
        Created::Replayed(order_id)
    );
    assert_eq!(
        store.create(&request(3), Some("key-1")).await.unwrap(),
        Created::KeyConflict
    );
    let counts = store.summary().await.unwrap();
    assert_eq!(counts["pending"], 1, "one order for the key");
    assert_eq!(queued(&store, order_id).await, ["order.created"]);
}

async fn a_refused_row_is_quarantined_until_released(db: Db) {
    let store = OrderStore::new(db);
    let Created::New(order_id) = store.create(&request(1), None).await.unwrap() else {
        panic!("a new order");
    };
    let row = store.unsent(10).await.unwrap().remove(0);
    for attempt in 1..=3 {
        let quarantined = store
            .record_publish_failure(&row.message_id, "nacked", 3)
            .await
            .unwrap();
        assert_eq!(quarantined, attempt == 3, "attempt {attempt}");
    }
    assert!(store.unsent(10).await.unwrap().is_empty(), "skipped");
    let held = store.quarantined().await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(
        (
            held[0].order_id.as_str(),
            held[0].attempts,
            held[0].last_error.as_deref()
        ),
        (order_id.to_string().as_str(), 3, Some("nacked"))
    );
    assert!(store.release(&row.message_id).await.unwrap());
    assert!(
        !store.release(&row.message_id).await.unwrap(),
        "released once"
    );
    assert_eq!(store.unsent(10).await.unwrap().len(), 1, "sent again");
    store.mark_sent(&[row.message_id.as_str()]).await.unwrap();
    assert!(store.unsent(10).await.unwrap().is_empty());
    assert!(store.quarantined().await.unwrap().is_empty());
}

async fn an_old_inbox_claim_is_pruned_and_a_young_one_still_a_duplicate(db: Db) {
    let order_id = Uuid::new_v4().to_string();
    service::test_retention::an_old_claim_goes_and_a_young_one_stays(db, &super::PRUNED, |id| {
        Claim::for_order(Some(id), queues::ORDER_ORDER_PAID, &order_id)
    })
    .await;
}

/// Writes an outbox row sent at `sent_at` and quarantined at `quarantined_at`, created long ago.
async fn outbox_row(
    db: &Db,
    message_id: &str,
    sent_at: Option<&str>,
    quarantined_at: Option<&str>,
) {
    let binds = [Some(message_id), Some(LONG_AGO), sent_at, quarantined_at];
    execute(
        db,
        "INSERT INTO outbox (message_id, order_id, event_type, exchange, routing_key, body, \
         created_at, sent_at, quarantined_at) VALUES ($1, 'o', 'order.created', 'x', 'k', '{}', $2, $3, $4)",
        binds.iter().map(|b| b.map(str::to_owned)).collect(),
    )
    .await;
}

async fn only_outbox_rows_sent_long_ago_are_pruned(db: Db) {
    let now = service::clock::now();
    outbox_row(&db, "sent-long-ago", Some(LONG_AGO), None).await;
    outbox_row(&db, "sent-just-now", Some(&now), None).await;
    outbox_row(&db, "never-sent", None, None).await;
    outbox_row(&db, "quarantined", None, Some(LONG_AGO)).await;
    outbox_row(&db, "sent-then-quarantined", Some(LONG_AGO), Some(LONG_AGO)).await;
    let pruned = prune_now(&db, &super::PRUNED).await;
    assert!(pruned.contains(&("outbox", 1)), "{pruned:?}");
    let mut left: Vec<String> = sqlx::query_scalar("SELECT message_id FROM outbox")
        .fetch_all(db.pool())
        .await
        .unwrap();
    left.sort();
    assert_eq!(
        left,
        [
            "never-sent",
            "quarantined",
            "sent-just-now",
            "sent-then-quarantined"
        ]
    );
}

async fn an_old_idempotency_key_is_pruned_and_a_young_one_replays(db: Db) {
    let store = OrderStore::new(db.clone());
    let Created::New(young) = store.create(&request(1), Some("young")).await.unwrap() else {
        panic!("a new key makes a new order");
    };
    execute(
        &db,
        "INSERT INTO idempotency_keys (idempotency_key, order_id, fingerprint, created_at) \
         VALUES ('old', 'o', '{}', $1)",
        vec![Some(LONG_AGO.to_owned())],
    )
    .await;
    assert_eq!(count(&db, "idempotency_keys").await, 2);
    let pruned = prune_now(&db, &super::PRUNED).await;
    assert!(pruned.contains(&("idempotency_keys", 1)), "{pruned:?}");
    assert_eq!(count(&db, "idempotency_keys").await, 1);
    assert_eq!(
        store.create(&request(1), Some("young")).await.unwrap(),
        Created::Replayed(young)
    );
    assert!(matches!(
        store.create(&request(1), Some("old")).await.unwrap(),
        Created::New(_)
    ));
    assert_eq!(count(&db, "orders").await, 2, "the orders themselves stay");
}

async fn the_backlog_counts_unsent_rows_and_dates_the_oldest(db: Db) {
    let store = OrderStore::new(db);
    assert_eq!(store.backlog().await.unwrap(), (0, None));
    store.create(&request(1), None).await.unwrap();
    store.create(&request(2), None).await.unwrap();
    let rows = store.unsent(10).await.unwrap();
    let (waiting, oldest) = store.backlog().await.unwrap();
    assert_eq!(waiting, 2);
    let oldest = service::clock::parse(&oldest.expect("a date"));
    let age = time::OffsetDateTime::now_utc() - oldest;
    assert!(age.whole_seconds() >= 0 && age.whole_minutes() < 5, "{age}");
    store
        .mark_sent(&[rows[0].message_id.as_str()])
        .await
        .unwrap();
    store
        .record_publish_failure(&rows[1].message_id, "nacked", 1)
        .await
        .unwrap();
    assert_eq!(
        store.backlog().await.unwrap(),
        (0, None),
        "sent and quarantined rows do not wait"
    );
}

/// Order ids are time-ordered (UUID v7): a later order's id sorts after an earlier one's, as
/// text and as stored, so each insert appends to the orders' primary-key index instead of
/// landing on a random page of it.
async fn a_later_order_has_a_later_id(db: Db) {
    let store = OrderStore::new(db);
    let mut ids = Vec::new();
    // Ten, so that random ids would come out sorted once in 3.6 million runs.
    for _ in 0..10 {
        let Created::New(order_id) = store.create(&request(1), None).await.unwrap() else {
            panic!("a new order");
        };
        ids.push(order_id.to_string());
    }
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "ids in creation order");
}

service::store_tests!(crate::MIGRATOR;
    a_later_order_has_a_later_id,
    the_backlog_counts_unsent_rows_and_dates_the_oldest,
    an_old_inbox_claim_is_pruned_and_a_young_one_still_a_duplicate,
    only_outbox_rows_sent_long_ago_are_pruned,
    an_old_idempotency_key_is_pruned_and_a_young_one_replays,
    stock_and_payment_complete_the_order_in_either_order,
    a_fact_before_its_order_releases_its_claim,
    a_cancel_before_its_order_releases_its_claim,
    the_first_cancel_wins_and_is_announced_once,
    a_cancellation_continues_the_trace_that_caused_it,
    a_reused_message_id_on_another_orders_fact_moves_that_order,
    an_idempotency_key_returns_its_order_and_refuses_another_request,
    a_refused_row_is_quarantined_until_released,
);
