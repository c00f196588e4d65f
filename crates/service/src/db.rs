//! A worker's database: reads go straight to the pool; writes are transactions handed to
//! [`Db::write`]. On SQLite one writer task runs them and commits them in groups: every
//! transaction that queued while the previous commit was reaching the disk shares the next
//! commit, so a busy worker pays one `fsync` per group instead of one per message, and none is
//! reported done before the commit that holds it. A group runs optimistically, with no savepoints;
//! if one of its transactions fails, the group is rolled back and run again with each transaction
//! in its own savepoint, so the failure undoes only its own work. On PostgreSQL each transaction
//! runs on its own, in the caller's task, unless asked to group too: replicas share that database
//! and a group holds its row locks until its commit, so replicas' groups take turns (a
//! transaction-scoped advisory lock) instead of deadlocking on rows they touch in other orders.

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use sqlx::pool::PoolConnection;
use sqlx::{Acquire, AnyConnection, AnyPool};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use tokio::sync::{mpsc, oneshot};

/// Transactions one SQLite commit holds at most.
const MAX_GROUP: usize = 128;

/// The advisory lock a PostgreSQL group holds until its commit: one group at a time per
/// database, whichever replica runs it. Without it two replicas' groups that update the same
/// rows in other orders deadlock, and PostgreSQL takes `deadlock_timeout` (1 s) to notice.
const GROUP_TURN: &str = "orderflow.group-commit";

/// One queued transaction: statements that may run more than once (a failed optimistic group is
/// run again), and where the outcome of their last run goes once the group's commit is known.
trait Job: Send {
    /// Runs the statements on `conn` and keeps their outcome; whether they succeeded.
    fn run<'c>(&'c mut self, conn: &'c mut AnyConnection) -> BoxFuture<'c, bool>;
    /// Reports the kept outcome if the commit holding it succeeded, else `commit_failed`.
    fn report(self: Box<Self>, commit_failed: Option<sqlx::Error>);
}

/// A [`Job`] from the inputs `data`, the statements `f` over them, and the caller's channel.
struct Statements<D, F, T> {
    data: D,
    f: F,
    outcome: Option<Result<T, sqlx::Error>>,
    done: oneshot::Sender<Result<T, sqlx::Error>>,
}

impl<D, F, T> Job for Statements<D, F, T>
where
    D: Send,
    T: Send,
    F: for<'c> Fn(&'c mut AnyConnection, &'c D) -> BoxFuture<'c, Result<T, sqlx::Error>> + Send,
{
    fn run<'c>(&'c mut self, conn: &'c mut AnyConnection) -> BoxFuture<'c, bool> {
        async move {
            let outcome = caught((self.f)(conn, &self.data)).await;
            let succeeded = outcome.is_ok();
            self.outcome = Some(outcome);
            succeeded
        }
        .boxed()
    }

    fn report(self: Box<Self>, commit_failed: Option<sqlx::Error>) {
        let outcome = match commit_failed {
            Some(err) => Err(err),
            None => self.outcome.unwrap_or_else(|| {
                Err(sqlx::Error::Protocol(
                    "a grouped transaction was committed without running".into(),
                ))
            }),
        };
        let _ = self.done.send(outcome);
    }
}

/// The pool and, on SQLite (and on PostgreSQL with group commits), the queue of the writer task.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    writer: Option<mpsc::UnboundedSender<Box<dyn Job>>>,
}

impl Db {
    /// Wraps a migrated pool; on SQLite, starts the writer task (it ends when the last clone of
    /// this handle is dropped). Must be called inside a Tokio runtime.
    #[must_use]
    pub fn new(pool: AnyPool) -> Self {
        Self::grouped(pool, false)
    }

    /// As [`Db::new`], and on PostgreSQL with group commits too when `postgres` is set.
    #[must_use]
    pub fn grouped(pool: AnyPool, postgres: bool) -> Self {
        let sqlite = pool.connect_options().database_url.scheme() == "sqlite";
        let writer = (sqlite || postgres).then(|| {
            let (queue, jobs) = mpsc::unbounded_channel();
            tokio::spawn(write_groups(pool.clone(), jobs, !sqlite));
            queue
        });
        Self { pool, writer }
    }

    /// The pool, for reads.
    #[must_use]
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Runs `statements` over `data` on a connection already inside a transaction and returns
    /// their result once committed. An error from `statements` rolls back their work only.
    /// `statements` may run more than once (only the last run is committed): they must do
    /// nothing but statements on the connection.
    ///
    /// # Errors
    /// The error of `statements`, or of beginning or committing the transaction.
    pub async fn write<D, T, F>(&self, data: D, statements: F) -> Result<T, sqlx::Error>
    where
        D: Send + Sync + 'static,
        T: Send + 'static,
        F: for<'c> Fn(&'c mut AnyConnection, &'c D) -> BoxFuture<'c, Result<T, sqlx::Error>>
            + Send
            + Sync
            + 'static,
    {
        let Some(writer) = &self.writer else {
            let mut tx = self.pool.begin().await?;
            let value = caught(statements(&mut tx, &data)).await?;
            tx.commit().await?;
            return Ok(value);
        };
        let (done, outcome) = oneshot::channel();
        writer
            .send(Box::new(Statements {
                data,
                f: statements,
                outcome: None,
                done,
            }))
            .map_err(|_| sqlx::Error::PoolClosed)?;
        outcome.await.map_err(|_| sqlx::Error::PoolClosed)?
    }
}

/// The writer task: takes every job queued, runs them in one transaction, commits, then reports.
/// It keeps one connection (and so SQLite's page cache warm) until the pool closes. Ends when
/// every [`Db`] handle is gone.
async fn write_groups(
    pool: AnyPool,
    mut jobs: mpsc::UnboundedReceiver<Box<dyn Job>>,
    take_turns: bool,
) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    let mut held: Option<PoolConnection<sqlx::Any>> = None;
    loop {
        let received = if held.is_some() {
            tokio::select! {
                received = jobs.recv_many(&mut group, MAX_GROUP) => received,
                () = pool.close_event() => {
                    // Closing waits for every connection: give this one back.
                    held = None;
                    continue;
                }
            }
        } else {
            jobs.recv_many(&mut group, MAX_GROUP).await
        };
        if received == 0 {
            break;
        }
        let size = group.len();
        let committed = async {
            let mut conn = match held.take() {
                Some(conn) => conn,
                None => pool.acquire().await?,
            };
            run_group(&mut conn, &mut group, take_turns).await?;
            // Only a connection that just committed is kept.
            held = Some(conn);
            Ok::<_, sqlx::Error>(())
        }
        .await;
        match committed {
            Ok(()) => {
                metrics::histogram!("orderflow_store_group_size").record(size as f64);
                for job in group.drain(..) {
                    job.report(None);
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, size, "store: a group commit failed; its transactions report the error");
                for job in group.drain(..) {
                    job.report(Some(group_failed(&err)));
                }
            }
        }
    }
}

/// Runs `jobs` in one transaction and commits it; each job keeps its own outcome. When one
/// fails, the group runs again with each in a savepoint. An error of the transaction itself
/// (begin, savepoint, commit) fails them all. With `take_turns`, each transaction first waits
/// for [`GROUP_TURN`].
async fn run_group(
    conn: &mut AnyConnection,
    jobs: &mut [Box<dyn Job>],
    take_turns: bool,
) -> Result<(), sqlx::Error> {
    let mut tx = begin(conn, take_turns).await?;
    let mut all_succeeded = true;
    for job in jobs.iter_mut() {
        if !job.run(&mut tx).await {
            all_succeeded = false;
            break;
        }
    }
    if all_succeeded {
        tx.commit().await?;
        return Ok(());
    }
    // A failed statement may have ended the transaction already; the next `begin` tells.
    let _ = tx.rollback().await;
    metrics::counter!("orderflow_store_group_reruns_total").increment(1);
    let mut tx = begin(conn, take_turns).await?;
    for job in jobs.iter_mut() {
        let mut savepoint = tx.begin().await?;
        if job.run(&mut savepoint).await {
            savepoint.commit().await?;
        } else {
            savepoint.rollback().await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Begins a group's transaction; with `take_turns`, once no other group holds [`GROUP_TURN`].
async fn begin(
    conn: &mut AnyConnection,
    take_turns: bool,
) -> Result<sqlx::Transaction<'_, sqlx::Any>, sqlx::Error> {
    let mut tx = conn.begin().await?;
    if take_turns {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(crate::lease::lock_key(GROUP_TURN))
            .execute(&mut *tx)
            .await?;
    }
    Ok(tx)
}

/// `work`'s outcome, with a panic turned into an error (its transaction is then rolled back).
async fn caught<T>(work: impl Future<Output = Result<T, sqlx::Error>>) -> Result<T, sqlx::Error> {
    AssertUnwindSafe(work)
        .catch_unwind()
        .await
        .unwrap_or_else(|_| Err(sqlx::Error::Protocol("a store transaction panicked".into())))
}

fn group_failed(err: &sqlx::Error) -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::other(format!(
        "the group commit holding this transaction failed: {err}"
    )))
}
