//! `Db::write` against real stores: concurrent transactions all land, and one that fails (or
//! panics) undoes its own statements only — on SQLite, where they share group commits (a group
//! with a failure is rolled back and run again, each transaction in a savepoint), and on
//! PostgreSQL, where each has its own transaction, or shares group commits when asked to.

use futures_util::FutureExt;
use futures_util::future::join_all;
use service::db::Db;
use sqlx::Row;
use sqlx::migrate::Migrator;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

static MIGRATOR: Migrator = sqlx::migrate!("tests/db_migrations");

/// Transactions written at once; every tenth fails after its insert.
const WRITES: i64 = 200;

async fn write_many(db: &Db) -> (Vec<i64>, usize) {
    let writes = (0..WRITES).map(|id| {
        let db = db.clone();
        async move {
            let outcome = db
                .write(id, |conn, id| {
                    async move {
                        sqlx::query("INSERT INTO items (id, note) VALUES ($1, 'kept')")
                            .bind(*id)
                            .execute(&mut *conn)
                            .await?;
                        if id % 10 == 0 {
                            return Err(sqlx::Error::RowNotFound);
                        }
                        Ok(*id)
                    }
                    .boxed()
                })
                .await;
            (id, outcome)
        }
    });
    let mut committed = Vec::new();
    let mut failed = 0;
    for (id, outcome) in join_all(writes).await {
        match outcome {
            Ok(returned) => {
                assert_eq!(returned, id, "each write gets its own result back");
                committed.push(id);
            }
            Err(sqlx::Error::RowNotFound) => failed += 1,
            Err(other) => panic!("write {id} failed unexpectedly: {other}"),
        }
    }
    (committed, failed)
}

async fn stored_ids(db: &Db) -> Vec<i64> {
    sqlx::query("SELECT id FROM items ORDER BY id")
        .fetch_all(db.pool())
        .await
        .unwrap()
        .iter()
        .map(|row| row.get::<i64, _>("id"))
        .collect()
}

async fn check_isolation(db: &Db) {
    let (committed, failed) = write_many(db).await;
    assert_eq!(failed, 20);
    assert_eq!(committed.len(), 180);
    let expected: Vec<i64> = (0..WRITES).filter(|id| id % 10 != 0).collect();
    assert_eq!(
        stored_ids(db).await,
        expected,
        "the stored rows are exactly those of the writes reported committed"
    );

    // A panicking transaction is reported as an error and leaves nothing; the next one lands.
    let panicked = db
        .write((), |conn, ()| {
            async move {
                sqlx::query("INSERT INTO items (id, note) VALUES (1000, 'lost')")
                    .execute(&mut *conn)
                    .await?;
                panic!("a bug in a transaction");
                #[allow(unreachable_code)]
                Ok(())
            }
            .boxed()
        })
        .await;
    assert!(panicked.is_err(), "a panic is an error, not a hang");
    db.write((), |conn, ()| {
        async move {
            sqlx::query("INSERT INTO items (id, note) VALUES (1001, 'after')")
                .execute(&mut *conn)
                .await?;
            Ok(())
        }
        .boxed()
    })
    .await
    .unwrap();
    let ids = stored_ids(db).await;
    assert!(!ids.contains(&1000) && ids.contains(&1001));
}

#[tokio::test]
async fn sqlite_group_commits_keep_each_transaction_whole() {
    let dir = std::env::temp_dir().join(format!("orderflow-db-test-{}", std::process::id()));
    let url = format!("sqlite://{}/items.db", dir.display());
    let pool = service::database::open(&url, "full", &MIGRATOR)
        .await
        .unwrap();
    let db = Db::new(pool);
    check_isolation(&db).await;

    // Committed means on disk: a separate pool opened afterwards sees every row.
    db.pool().close().await;
    let reopened = service::database::open(&url, "full", &MIGRATOR)
        .await
        .unwrap();
    let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM items")
        .fetch_one(&reopened)
        .await
        .unwrap()
        .get("n");
    assert_eq!(count, 181);
    reopened.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn postgres_transactions_keep_each_transaction_whole() {
    on_postgres(false, "single").await;
}

#[tokio::test]
async fn postgres_group_commits_keep_each_transaction_whole() {
    on_postgres(true, "grouped").await;
}

/// Two replicas' group commits on one database, each updating two rows in the opposite order:
/// they take turns, so neither deadlocks (PostgreSQL would abort one after `deadlock_timeout`
/// and its group would run again), each write runs once, and both updates land.
#[tokio::test]
async fn replicas_group_commits_take_turns_instead_of_deadlocking() {
    let (server, database, url) = fresh_postgres("turns").await;
    let open = || service::database::open(&url, "full", &MIGRATOR);
    let (first, second) = (open().await.unwrap(), open().await.unwrap());
    sqlx::query("INSERT INTO items (id, note) VALUES (1, ''), (2, '')")
        .execute(&first)
        .await
        .unwrap();
    let replicas = [Db::grouped(first, true), Db::grouped(second, true)];
    let runs = Arc::new(AtomicUsize::new(0));
    let writes = replicas
        .iter()
        .zip([[1_i64, 2], [2, 1]])
        .map(|(db, order)| {
            let runs = Arc::clone(&runs);
            db.write(order, move |conn, order| {
                runs.fetch_add(1, Ordering::SeqCst);
                async move {
                    for (step, id) in order.iter().enumerate() {
                        sqlx::query("UPDATE items SET note = note || 'x' WHERE id = $1")
                            .bind(*id)
                            .execute(&mut *conn)
                            .await?;
                        if step == 0 {
                            // Without turns, both would hold their first row before either asks
                            // for its second.
                            sqlx::query("SELECT pg_sleep(0.3)")
                                .execute(&mut *conn)
                                .await?;
                        }
                    }
                    Ok(())
                }
                .boxed()
            })
        });
    for outcome in join_all(writes).await {
        outcome.expect("both replicas' writes land");
    }
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "each write ran once: no group was aborted as a deadlock and run again"
    );
    let notes: Vec<String> = sqlx::query("SELECT note FROM items ORDER BY id")
        .fetch_all(replicas[0].pool())
        .await
        .unwrap()
        .iter()
        .map(|row| row.get("note"))
        .collect();
    assert_eq!(notes, ["xx", "xx"], "each row updated once by each replica");
    for db in &replicas {
        db.pool().close().await;
    }
    drop_database(&server, &database).await;
}

/// Runs the isolation check on a fresh PostgreSQL database, with group commits or without.
async fn on_postgres(grouped: bool, name: &str) {
    let (server, database, url) = fresh_postgres(name).await;
    let pool = service::database::open(&url, "full", &MIGRATOR)
        .await
        .unwrap();
    let db = Db::grouped(pool, grouped);
    check_isolation(&db).await;
    db.pool().close().await;
    drop_database(&server, &database).await;
}

/// A new, empty database on the test server: the server's pool, the name and the URL.
async fn fresh_postgres(name: &str) -> (sqlx::PgPool, String, String) {
    let admin = std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let database = format!("orderflow_db_test_{name}_{}", std::process::id());
    let server = sqlx::PgPool::connect(&admin)
        .await
        .unwrap_or_else(|err| panic!("PostgreSQL at {admin} (set TEST_POSTGRES_URL): {err}"));
    drop_database(&server, &database).await;
    sqlx::query(&format!("CREATE DATABASE {database}"))
        .execute(&server)
        .await
        .unwrap();
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    let url = format!("{base}/{database}");
    (server, database, url)
}

async fn drop_database(server: &sqlx::PgPool, database: &str) {
    sqlx::query(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        .execute(server)
        .await
        .unwrap();
}
