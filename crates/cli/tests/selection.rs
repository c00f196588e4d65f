//! The real `orderflow` binary choosing dead letters, each test in its own vhost: filters select
//! exactly the matching ones, failure groups count and replay exactly their members, delete
//! removes one, edit replays a checked body, dry runs change nothing, JSON parses, exit codes.

mod common;

use broker::headers;
use common::*;
use contracts::names::queues::STOCK_ORDER_CREATED;
use std::time::Duration;

const HOUR: Duration = Duration::from_secs(3600);

/// Five dead letters of `QUEUE`, each singled out by another criterion.
fn five() -> Vec<Letter> {
    let mut a = Letter::new("m-a", "o-1");
    a.age = 3 * HOUR;
    let mut b = Letter::new("m-b", "o-2");
    b.age = Duration::from_secs(300);
    let mut c = Letter::new("m-c", "o-3");
    c.error_kind = "rejected".into();
    c.error_type = Some("invalid-order".into());
    c.error = "invalid order.created: currency: XXX is not supported".into();
    let mut d = Letter::new("m-d", "o-4");
    d.event_type = "order.paid".into();
    d.error_type = Some("unknown-order".into());
    d.error = "order o-4 is not known (yet)".into();
    d.age = 48 * HOUR;
    let mut e = Letter::new("m-e", "o-5");
    e.error_kind = "malformed".into();
    e.error_type = None;
    e.error = "cannot decode body: EOF while parsing".into();
    e.age = Duration::from_secs(30);
    vec![a, b, c, d, e]
}

/// The message ids `dlq show QUEUE <filter>` selects, sorted.
async fn shown(fx: &Fixture, filter: &[&str]) -> Vec<String> {
    let mut args = vec!["--output", "json", "dlq", "show", QUEUE, "--limit", "100"];
    args.extend_from_slice(filter);
    let output = fx.orderflow(&args).await;
    assert_success(&output);
    let mut ids: Vec<String> = json_lines(&output)
        .iter()
        .map(|l| l["message_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn filters_select_exactly_the_matching_dead_letters() {
    let mut fx = Fixture::new().await;
    let letters = five();
    for letter in &letters {
        fx.put(letter).await;
    }
    fx.expect_count(DLQ, 5).await;

    let group = letters[0].fingerprint();
    assert_eq!(group, letters[1].fingerprint(), "same failure, other order");
    let cases: [(&[&str], &[&str]); 10] = [
        (&["--error-type", "provider-unavailable"], &["m-a", "m-b"]),
        (&["--error-kind", "rejected"], &["m-c"]),
        (&["--event-type", "order.paid"], &["m-d"]),
        (&["--order-id", "o-2"], &["m-b"]),
        (&["--correlation-id", "o-5"], &["m-e"]),
        (&["--older-than", "1h"], &["m-a", "m-d"]),
        (&["--newer-than", "10m"], &["m-b", "m-c", "m-e"]),
        (&["--error-contains", "NOT KNOWN"], &["m-d"]),
        (&["--fingerprint", &group], &["m-a", "m-b"]),
        (
            &["--error-type", "provider-unavailable", "--newer-than", "1h"],
            &["m-b"],
        ),
    ];
    for (filter, expected) in cases {
        assert_eq!(shown(&fx, filter).await, expected, "{filter:?}");
    }
    // The legacy dead letter (no error-type) is found by its kind and error.
    let legacy = letters[4].fingerprint();
    assert_eq!(shown(&fx, &["--group", &legacy]).await, ["m-e"]);
    let text = fx
        .orderflow(&["dlq", "show", QUEUE, "--error-kind", "malformed"])
        .await;
    assert_success(&text);
    let text = stdout(&text);
    assert!(
        text.contains("1 matching of 5 dead letters in 'payment.order-created.dlq' shown"),
        "{text}"
    );
    assert!(text.contains("ago)"), "a human time: {text}");
    fx.expect_count(DLQ, 5).await;

    // A filtered replay moves only its match, a filtered purge removes only its match.
    let replay = fx
        .orderflow(&[
            "dlq",
            "replay",
            QUEUE,
            "--error-type",
            "provider-unavailable",
            "--older-than",
            "1h",
        ])
        .await;
    assert_says(&replay, "replayed 1 of 5");
    let purge = fx
        .orderflow(&["dlq", "purge", QUEUE, "--error-kind", "rejected", "--yes"])
        .await;
    assert_says(&purge, "purged 1 dead letters");
    fx.expect_count(QUEUE, 1).await;
    assert_eq!(fx.ids(QUEUE).await, ["m-a"]);
    assert_eq!(fx.ids(DLQ).await, ["m-b", "m-d", "m-e"]);
}

#[tokio::test]
async fn dry_runs_list_what_would_change_and_change_nothing() {
    let mut fx = Fixture::new().await;
    for letter in five() {
        fx.put(&letter).await;
    }
    fx.expect_count(DLQ, 5).await;

    let replay = fx
        .orderflow(&[
            "dlq",
            "replay",
            QUEUE,
            "--error-type",
            "provider-unavailable",
            "--dry-run",
        ])
        .await;
    assert_success(&replay);
    let text = stdout(&replay);
    assert!(
        text.contains("would replay m-a (order.created, order o-1"),
        "{text}"
    );
    assert!(text.contains("would replay m-b"), "{text}");
    assert!(text.contains("would replay 2 of 5 dead letters"), "{text}");
    let purge = fx.orderflow(&["dlq", "purge", QUEUE, "--dry-run"]).await;
    assert_success(&purge);
    assert!(
        stdout(&purge).contains("would purge 5 of 5 dead letters"),
        "no --yes needed to look: {}",
        stdout(&purge)
    );
    let json = fx
        .orderflow(&[
            "--output",
            "json",
            "dlq",
            "purge",
            QUEUE,
            "--event-type",
            "order.paid",
            "--dry-run",
        ])
        .await;
    assert_success(&json);
    let line = &json_lines(&json)[0];
    assert_eq!(line["purged"], 1);
    assert_eq!(line["dry_run"], true);
    assert_eq!(line["messages"][0]["message_id"], "m-d");

    assert_eq!(fx.count(QUEUE).await, 0);
    assert_eq!(fx.ids(DLQ).await, ["m-a", "m-b", "m-c", "m-d", "m-e"]);
}

#[tokio::test]
async fn groups_count_one_failure_across_queues_and_a_group_replay_moves_exactly_it() {
    let mut fx = Fixture::new().await;
    let stock_dlq = "stock.order-created.dlq";
    let mut on_stock = Letter::new("m-3", "o-3");
    on_stock.source = STOCK_ORDER_CREATED.to_owned();
    let mut other = Letter::new("m-4", "o-4");
    other.error_type = Some("invalid-order".into());
    other.error = "invalid order.created: total_cents".into();
    let mut legacy = Letter::new("m-5", "o-5");
    legacy.error_type = None;
    let mut old = Letter::new("m-1", "o-1");
    old.age = 2 * HOUR;
    let letters = [old, Letter::new("m-2", "o-2"), on_stock, other, legacy];
    for letter in &letters {
        fx.put(letter).await;
    }
    fx.expect_count(DLQ, 4).await;
    fx.expect_count(stock_dlq, 1).await;
    let group = letters[0].fingerprint();

    let json = fx.orderflow(&["--output", "json", "dlq", "groups"]).await;
    assert_success(&json);
    let groups = json_lines(&json);
    assert_eq!(groups.len(), 3, "{groups:?}");
    let big = &groups[0];
    assert_eq!(big["fingerprint"], group.as_str());
    assert_eq!(big["count"], 3);
    assert_eq!(big["queues"], serde_json::json!([DLQ, stock_dlq]));
    assert_eq!(big["error_type"], "provider-unavailable");
    assert_eq!(big["example_error"], "provider unavailable for order o-1");
    let first = humantime::parse_rfc3339(big["first_seen"].as_str().unwrap()).unwrap();
    let last = humantime::parse_rfc3339(big["last_seen"].as_str().unwrap()).unwrap();
    let spread = last.duration_since(first).unwrap();
    assert!(spread > HOUR && spread < 3 * HOUR, "{spread:?}");
    let fingerprints: Vec<&str> = groups
        .iter()
        .map(|g| g["fingerprint"].as_str().unwrap())
        .collect();
    assert!(fingerprints.contains(&letters[3].fingerprint().as_str()));
    assert!(
        fingerprints.contains(&letters[4].fingerprint().as_str()),
        "a dead letter without the new headers groups by kind and error"
    );
    let text = fx.orderflow(&["dlq", "groups"]).await;
    assert_success(&text);
    let text = stdout(&text);
    assert!(
        text.contains(&format!("{group}  3 dead letters  provider-unavailable")),
        "{text}"
    );
    assert!(
        text.contains("min ago)") || text.contains("s ago)"),
        "{text}"
    );

    let replay = fx.orderflow(&["dlq", "replay", "--group", &group]).await;
    assert_success(&replay);
    fx.expect_count(QUEUE, 2).await;
    fx.expect_count(STOCK_ORDER_CREATED, 1).await;
    assert_eq!(fx.ids(QUEUE).await, ["m-1", "m-2"]);
    assert_eq!(fx.ids(STOCK_ORDER_CREATED).await, ["m-3"]);
    assert_eq!(fx.ids(DLQ).await, ["m-4", "m-5"]);
    assert_eq!(fx.count(stock_dlq).await, 0);

    let none = fx
        .orderflow(&["dlq", "replay", "--group", "000000000000"])
        .await;
    assert_failure(&none);
    assert_eq!(code(&none), 1, "nothing matched");
}

#[tokio::test]
async fn delete_removes_exactly_one_dead_letter() {
    let mut fx = Fixture::new().await;
    for id in ["m-1", "m-2", "m-3"] {
        fx.put(&Letter::new(id, "o-1")).await;
    }
    fx.expect_count(DLQ, 3).await;
    let deleted = fx
        .orderflow(&["dlq", "delete", QUEUE, "--message-id", "m-2"])
        .await;
    assert_says(&deleted, "deleted message m-2");
    fx.expect_count(DLQ, 2).await;
    let again = fx
        .orderflow(&["dlq", "delete", QUEUE, "--message-id", "m-2"])
        .await;
    assert_failure(&again);
    assert_eq!(code(&again), 1);
    assert_eq!(fx.count(QUEUE).await, 0, "deleted, not replayed");
    assert_eq!(fx.ids(DLQ).await, ["m-1", "m-3"]);
}

/// An `order.created` that breaks the contract (its total is not the sum of its lines), and the
/// same order fixed.
fn broken_and_fixed() -> (Vec<u8>, Vec<u8>) {
    let order = contracts::OrderCreated::new(
        "c-42",
        vec![contracts::LineItem {
            sku: "SKU-1".into(),
            quantity: 2,
            unit_price_cents: 1250,
        }],
        "USD",
        Some("tok_visa".into()),
    )
    .unwrap();
    let fixed = serde_json::to_vec(&order).unwrap();
    let mut broken = order;
    broken.total_cents = 1;
    (serde_json::to_vec(&broken).unwrap(), fixed)
}

fn rejected_order(body: Vec<u8>) -> Letter {
    let mut letter = Letter::new("m-edit", "o-edit");
    letter.error_kind = "rejected".into();
    letter.error_type = Some("invalid-order".into());
    letter.error = "invalid order.created: total_cents 1 is not the sum of the lines (2500)".into();
    letter.body = body;
    letter
}

#[tokio::test]
async fn edit_replays_the_edited_body_and_removes_the_original_after_the_confirm() {
    let mut fx = Fixture::new().await;
    let (broken, fixed) = broken_and_fixed();
    fx.put(&rejected_order(broken)).await;
    fx.expect_count(DLQ, 1).await;
    let dir = std::env::temp_dir().join(format!("orderflow-edit-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let fixed_file = dir.join("fixed.json");
    std::fs::write(&fixed_file, &fixed).unwrap();

    // The "editor" overwrites the file it is given with the fixed order.
    let editor = format!("cp {}", fixed_file.display());
    let edit = fx
        .orderflow_with(
            &["dlq", "edit", QUEUE, "--message-id", "m-edit"],
            b"",
            &[("EDITOR", &editor)],
        )
        .await;
    assert_success(&edit);
    assert!(
        stdout(&edit)
            .contains("replayed message m-edit to 'payment.order-created' with the edited body"),
        "{}",
        stdout(&edit)
    );
    fx.expect_count(QUEUE, 1).await;
    fx.expect_count(DLQ, 0).await;
    let copy = &fx.take_all(QUEUE).await[0];
    assert_eq!(copy.body, fixed, "the edited body, byte for byte");
    assert_eq!(
        copy.properties.message_id().as_ref().map(|m| m.as_str()),
        Some("m-edit")
    );
    assert_eq!(copy.header_int(headers::REPLAY_COUNT), Some(1));
    for gone in [
        headers::ERROR,
        headers::ERROR_TYPE,
        headers::ERROR_FINGERPRINT,
    ] {
        assert_eq!(copy.header(gone), None, "{gone} is dropped");
    }

    // Once more from a file, the copy unroutable (its source queue is gone): it is never
    // confirmed, so the original stays.
    let mut gone = rejected_order(broken_and_fixed().0);
    gone.source = "payment.gone".into();
    let mut properties = gone.properties();
    let mut table = properties.headers().clone().unwrap();
    headers::set_text(&mut table, headers::SOURCE_QUEUE, "payment.gone");
    properties = properties.with_headers(table);
    fx.publish(
        broker::topology::DEAD_LETTER_EXCHANGE,
        QUEUE,
        &gone.body,
        properties,
    )
    .await;
    fx.expect_count(DLQ, 1).await;
    let fixed_path = fixed_file.display().to_string();
    let unconfirmed = fx
        .orderflow(&[
            "dlq",
            "edit",
            QUEUE,
            "--message-id",
            "m-edit",
            "--body-file",
            &fixed_path,
        ])
        .await;
    assert_failure(&unconfirmed);
    assert_eq!(code(&unconfirmed), 5);
    assert!(
        stderr(&unconfirmed).contains("it stays in"),
        "{}",
        stderr(&unconfirmed)
    );
    fx.expect_count(DLQ, 1).await;
    let kept = &fx.take_all(DLQ).await[0];
    assert_eq!(kept.body, gone.body, "the original, untouched");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn an_invalid_edit_publishes_nothing_and_keeps_the_original() {
    let mut fx = Fixture::new().await;
    let (broken, _) = broken_and_fixed();
    fx.put(&rejected_order(broken.clone())).await;
    fx.expect_count(DLQ, 1).await;
    let dir = std::env::temp_dir().join(format!("orderflow-edit-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let not_json = dir.join("not.json");
    std::fs::write(&not_json, b"{\"order_id\": ").unwrap();
    let still_broken = dir.join("broken.json");
    std::fs::write(&still_broken, &broken).unwrap();

    for (file, why) in [
        (&not_json, "not valid JSON"),
        (&still_broken, "total_cents"),
    ] {
        let path = file.display().to_string();
        let edit = fx
            .orderflow(&[
                "dlq",
                "edit",
                QUEUE,
                "--message-id",
                "m-edit",
                "--body-file",
                &path,
            ])
            .await;
        assert_failure(&edit);
        assert_eq!(code(&edit), 2, "refused input");
        assert!(stderr(&edit).contains(why), "{}", stderr(&edit));
        assert!(
            stderr(&edit).contains("nothing published"),
            "{}",
            stderr(&edit)
        );
    }
    assert_eq!(fx.count(QUEUE).await, 0);
    fx.expect_count(DLQ, 1).await;
    assert_eq!(fx.take_all(DLQ).await[0].body, broken);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_scan_reads_each_dead_letter_once_past_its_window() {
    let mut fx = Fixture::new().await;
    let n = 250;
    for i in 0..n {
        fx.put(&Letter::new(&format!("m-{i:03}"), &format!("o-{i}")))
            .await;
    }
    fx.expect_count(DLQ, n).await;
    // The one wanted is the last: more than two windows of others are read and handed back.
    let replay = fx
        .orderflow(&["dlq", "replay", QUEUE, "--message-id", "m-249"])
        .await;
    assert_says(&replay, "replayed 1 of 250");
    fx.expect_count(QUEUE, 1).await;
    let show = fx
        .orderflow(&["--output", "json", "dlq", "show", QUEUE, "--limit", "1000"])
        .await;
    assert_success(&show);
    let mut seen: Vec<String> = json_lines(&show)
        .iter()
        .map(|l| l["message_id"].as_str().unwrap().to_owned())
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen.len(),
        249,
        "each dead letter shown once, none looped over"
    );
    let left = fx.ids(DLQ).await;
    assert_eq!(left.len(), 249);
    assert!(!left.contains(&"m-249".to_owned()));
}

#[tokio::test]
async fn every_command_speaks_json_and_failures_have_their_exit_codes() {
    let mut fx = Fixture::new().await;
    fx.put(&Letter::new("m-1", "o-1")).await;
    fx.put(&Letter::new("m-2", "o-2")).await;
    fx.expect_count(DLQ, 2).await;
    let json = |args: &'static [&'static str]| {
        let mut all = vec!["--output", "json"];
        all.extend_from_slice(args);
        all
    };
    for args in [
        json(&["dlq", "list"]),
        json(&["dlq", "groups"]),
        json(&["dlq", "show", QUEUE]),
        json(&["dlq", "replay", QUEUE, "--dry-run"]),
        json(&["dlq", "purge", QUEUE, "--dry-run"]),
        json(&["topology"]),
    ] {
        let output = fx.orderflow(&args).await;
        assert_success(&output);
        assert!(!json_lines(&output).is_empty(), "{args:?}");
    }
    let delete = fx
        .orderflow(&json(&["dlq", "delete", QUEUE, "--message-id", "m-1"]))
        .await;
    assert_success(&delete);
    assert_eq!(json_lines(&delete)[0]["deleted"], 1);
    let replay = fx.orderflow(&json(&["dlq", "replay", QUEUE])).await;
    assert_success(&replay);
    let line = &json_lines(&replay)[0];
    assert_eq!(
        (line["replayed"].clone(), line["found"].clone()),
        (1.into(), 1.into())
    );
    assert_eq!(line["messages"][0]["message_id"], "m-2");
    let publish = fx
        .orderflow_with_stdin(&json(&["publish", "orders", "order.created"]), b"{}")
        .await;
    assert_success(&publish);
    assert!(json_lines(&publish)[0]["message_id"].is_string());

    let no_queue = fx.orderflow(&["dlq", "show", "nope"]).await;
    assert_eq!(code(&no_queue), 4);
    let no_yes = fx.orderflow(&["dlq", "purge", QUEUE]).await;
    assert_eq!(code(&no_yes), 2);
    let bad_flag = fx
        .orderflow(&["dlq", "show", QUEUE, "--older-than", "soon"])
        .await;
    assert_eq!(code(&bad_flag), 2);
    let unreachable = tokio::process::Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .args([
            "--amqp-url",
            "amqp://guest:guest@127.0.0.1:1/%2f",
            "dlq",
            "show",
            QUEUE,
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(code(&unreachable), 3, "{}", stderr(&unreachable));
}
