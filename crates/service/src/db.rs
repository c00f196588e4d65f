//! A worker's database: reads go straight to the pool; writes are transactions handed to
//! [`Db::write`]. On SQLite one writer task runs them and commits them in groups: every
//! transaction that queued while the previous commit was reaching the disk shares the next
//! commit, so a busy worker pays one `fsync` per group instead of one per message, and none is
//! reported done before the commit that holds it. A group runs optimistically, with no savepoints;
//! if one of its transactions fails, the group is rolled back and run again with each transaction
//! in its own savepoint, so the failure undoes only its own work. On PostgreSQL each transaction
//! runs on its own, in the caller's task: replicas share that database and its row locks should
//! be held briefly.

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use sqlx::pool::PoolConnection;
use sqlx::{Acquire, AnyConnection, AnyPool};
use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use tokio::sync::{mpsc, oneshot};

/// Transactions one SQLite commit holds at most.
const MAX_GROUP: usize = 128;

type Output = Result<Box<dyn Any + Send>, sqlx::Error>;

/// A transaction's statements over its inputs; it may run twice (a failed optimistic group is run
/// again), so it must only touch the connection.
trait Work: Send + Sync {
    fn run<'c>(&'c self, conn: &'c mut AnyConnection) -> BoxFuture<'c, Output>;
}

/// [`Work`] from the inputs `data` and the statements `f` over them.
struct Statements<D, F> {
    data: D,
    f: F,
}

impl<D, F, T> Work for Statements<D, F>
where
    D: Send + Sync,
    T: Send + 'static,
    F: for<'c> Fn(&'c mut AnyConnection, &'c D) -> BoxFuture<'c, Result<T, sqlx::Error>>
        + Send
        + Sync,
{
    fn run<'c>(&'c self, conn: &'c mut AnyConnection) -> BoxFuture<'c, Output> {
        (self.f)(conn, &self.data)
            .map(|outcome| outcome.map(|value| Box::new(value) as Box<dyn Any + Send>))
            .boxed()
    }
}

/// One queued transaction and where its outcome goes.
struct Job {
    work: Box<dyn Work>,
    done: oneshot::Sender<Output>,
}

/// The pool and, on SQLite, the queue of the writer task.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    writer: Option<mpsc::UnboundedSender<Job>>,
}

impl Db {
    /// Wraps a migrated pool; on SQLite, starts the writer task (it ends when the last clone of
    /// this handle is dropped). Must be called inside a Tokio runtime.
    #[must_use]
    pub fn new(pool: AnyPool) -> Self {
        let sqlite = pool.connect_options().database_url.scheme() == "sqlite";
        let writer = sqlite.then(|| {
            let (queue, jobs) = mpsc::unbounded_channel();
            tokio::spawn(write_groups(pool.clone(), jobs));
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
        let work = Box::new(Statements {
            data,
            f: statements,
        });
        writer
            .send(Job { work, done })
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let value = outcome.await.map_err(|_| sqlx::Error::PoolClosed)??;
        Ok(*value
            .downcast::<T>()
            .expect("the writer returns what the statements produced"))
    }
}

/// The writer task: takes every job queued, runs them in one transaction, commits, then reports.
/// It keeps one connection (and so SQLite's page cache warm) until the pool closes. Ends when
/// every [`Db`] handle is gone.
async fn write_groups(pool: AnyPool, mut jobs: mpsc::UnboundedReceiver<Job>) {
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
        let (works, waiting): (Vec<_>, Vec<_>) = group.drain(..).map(|j| (j.work, j.done)).unzip();
        let size = works.len();
        let outcome = async {
            let mut conn = match held.take() {
                Some(conn) => conn,
                None => pool.acquire().await?,
            };
            let outcomes = run_group(&mut conn, &works).await?;
            // Only a connection that just committed is kept.
            held = Some(conn);
            Ok::<_, sqlx::Error>(outcomes)
        }
        .await;
        match outcome {
            Ok(outcomes) => {
                metrics::histogram!("orderflow_store_group_size").record(size as f64);
                for (done, outcome) in waiting.into_iter().zip(outcomes) {
                    let _ = done.send(outcome);
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, size, "store: a group commit failed; its transactions report the error");
                for done in waiting {
                    let _ = done.send(Err(group_failed(&err)));
                }
            }
        }
    }
}

/// Runs `works` in one transaction and commits it; their outcomes in order. When one fails, the
/// group runs again with each in a savepoint. An error of the transaction itself (begin,
/// savepoint, commit) fails them all.
async fn run_group(
    conn: &mut AnyConnection,
    works: &[Box<dyn Work>],
) -> Result<Vec<Output>, sqlx::Error> {
    let mut tx = conn.begin().await?;
    let mut outcomes = Vec::with_capacity(works.len());
    for work in works {
        let outcome = caught(work.run(&mut tx)).await;
        if outcome.is_err() {
            break;
        }
        outcomes.push(outcome);
    }
    if outcomes.len() == works.len() {
        tx.commit().await?;
        return Ok(outcomes);
    }
    // A failed statement may have ended the transaction already; the next `begin` tells.
    let _ = tx.rollback().await;
    metrics::counter!("orderflow_store_group_reruns_total").increment(1);
    outcomes.clear();
    let mut tx = conn.begin().await?;
    for work in works {
        let mut savepoint = tx.begin().await?;
        let outcome = caught(work.run(&mut savepoint)).await;
        if outcome.is_ok() {
            savepoint.commit().await?;
        } else {
            savepoint.rollback().await?;
        }
        outcomes.push(outcome);
    }
    tx.commit().await?;
    Ok(outcomes)
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
