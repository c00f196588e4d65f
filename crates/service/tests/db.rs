//! `Db::write` against real stores: concurrent transactions all land, and one that fails (or
//! panics) undoes its own statements only — on SQLite, where they share group commits (a group
//! with a failure is rolled back and run again, each transaction in a savepoint), and on
//! PostgreSQL, where each has its own transaction.

use futures_util::FutureExt;
use futures_util::future::join_all;
use service::db::Db;
use sqlx::Row;
use sqlx::migrate::Migrator;

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
    let admin = std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let database = format!("orderflow_db_test_{}", std::process::id());
    let server = sqlx::PgPool::connect(&admin)
        .await
        .unwrap_or_else(|err| panic!("PostgreSQL at {admin} (set TEST_POSTGRES_URL): {err}"));
    sqlx::query(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        .execute(&server)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE {database}"))
        .execute(&server)
        .await
        .unwrap();
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    let pool = service::database::open(&format!("{base}/{database}"), "full", &MIGRATOR)
        .await
        .unwrap();
    let db = Db::new(pool);
    check_isolation(&db).await;
    db.pool().close().await;
    sqlx::query(&format!("DROP DATABASE {database} WITH (FORCE)"))
        .execute(&server)
        .await
        .unwrap();
}
