//! The retention scenario every worker's inbox passes (feature `test-util`), on its own
//! migrations through [`store_tests!`](crate::store_tests).

use crate::db::Db;
use crate::inbox::{self, Claim};
use crate::retention::{self, Prunable};
use futures_util::FutureExt;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

/// A stamp far outside any window.
pub const LONG_AGO: &str = "2020-01-01T00:00:00Z";

/// The window the scenarios prune with: the default week.
pub const WINDOW: std::time::Duration = std::time::Duration::from_secs(168 * 3600);

/// Prunes `tables` of `db` as the background task would now.
///
/// # Panics
/// When a batch fails.
pub async fn prune_now(db: &Db, tables: &[Prunable]) -> Vec<(&'static str, u64)> {
    retention::prune(
        db,
        tables,
        OffsetDateTime::now_utc() - WINDOW,
        &CancellationToken::new(),
    )
    .await
    .unwrap()
}

/// Records `claim` as handled at `stamp`; whether it was new.
///
/// # Panics
/// When the write fails.
pub async fn claim_at(db: &Db, claim: Claim, stamp: &str) -> bool {
    db.write((claim, stamp.to_owned()), |conn, (claim, stamp)| {
        inbox::claim(conn, claim, stamp).boxed()
    })
    .await
    .unwrap()
}

/// Runs `sql` with `binds` as `$1`, `$2`, … in one write: how a test plants rows with old stamps.
///
/// # Panics
/// When the statement fails.
pub async fn execute(db: &Db, sql: &'static str, binds: Vec<Option<String>>) {
    db.write(binds, move |conn, binds| {
        async move {
            let mut query = sqlx::query(sql);
            for bind in binds {
                query = query.bind(bind.as_deref());
            }
            query.execute(conn).await?;
            Ok(())
        }
        .boxed()
    })
    .await
    .unwrap();
}

/// Rows in `table`.
///
/// # Panics
/// When the query fails.
pub async fn count(db: &Db, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(db.pool())
        .await
        .unwrap()
}

/// A claim older than the window is pruned (the inbox shrinks, and the message would now count
/// as new) while one handled just now is still a duplicate after the prune. `claim` builds the
/// worker's claim of a message id.
///
/// # Panics
/// When the inbox does not behave so.
pub async fn an_old_claim_goes_and_a_young_one_stays(
    db: Db,
    tables: &[Prunable],
    claim: impl Fn(&str) -> Claim,
) {
    assert!(claim_at(&db, claim("old"), LONG_AGO).await);
    assert!(claim_at(&db, claim("young"), &crate::clock::now()).await);
    assert_eq!(count(&db, "inbox").await, 2);
    let pruned = prune_now(&db, tables).await;
    assert!(pruned.contains(&("inbox", 1)), "{pruned:?}");
    assert_eq!(count(&db, "inbox").await, 1);
    assert!(
        !claim_at(&db, claim("young"), &crate::clock::now()).await,
        "a redelivery inside the window is still a duplicate"
    );
    assert!(claim_at(&db, claim("old"), &crate::clock::now()).await);
}
