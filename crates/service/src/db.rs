//! A worker's database: reads go straight to the pool; writes are transactions handed to
//! [`Db::write`]. On SQLite one writer task runs them and commits them in groups: every
//! transaction that queued while the previous commit was reaching the disk shares the next
//! commit, so a busy worker pays one `fsync` per group instead of one per message. Each runs in
//! its own savepoint, so one that fails undoes only its own work, and none is reported done
//! before the commit that holds it. On PostgreSQL each runs in its own transaction, in the
//! caller's task: replicas share that database and its row locks should be held briefly.

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use sqlx::{Acquire, AnyConnection, AnyPool};
use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use tokio::sync::{mpsc, oneshot};

/// Transactions one SQLite commit holds at most.
const MAX_GROUP: usize = 128;

type Output = Result<Box<dyn Any + Send>, sqlx::Error>;
type ErasedWork =
    Box<dyn for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Output> + Send + 'static>;

/// One queued transaction and where its outcome goes.
struct Job {
    work: ErasedWork,
    done: oneshot::Sender<Output>,
}

/// The pool and, on SQLite, the queue of the writer task.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    writer: Option<mpsc::UnboundedSender<Job>>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
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

    /// Runs `work` (statements on the connection it is given, already inside a transaction) and
    /// returns its result once committed. An error from `work` rolls back its statements only.
    ///
    /// # Errors
    /// The error of `work`, or of beginning or committing the transaction.
    pub async fn write<T, F>(&self, work: F) -> Result<T, sqlx::Error>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, sqlx::Error>>
            + Send
            + 'static,
    {
        let Some(writer) = &self.writer else {
            let mut tx = self.pool.begin().await?;
            let value = caught(work(&mut tx)).await?;
            tx.commit().await?;
            return Ok(value);
        };
        let (done, outcome) = oneshot::channel();
        let work: ErasedWork = Box::new(move |conn| {
            async move { work(conn).await.map(|v| Box::new(v) as Box<dyn Any + Send>) }.boxed()
        });
        writer
            .send(Job { work, done })
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let value = outcome.await.map_err(|_| sqlx::Error::PoolClosed)??;
        Ok(*value
            .downcast::<T>()
            .expect("the writer returns what the work produced"))
    }
}

/// The writer task: takes every job queued, runs them in one transaction, commits, then reports.
/// Ends when every [`Db`] handle is gone.
async fn write_groups(pool: AnyPool, mut jobs: mpsc::UnboundedReceiver<Job>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while jobs.recv_many(&mut group, MAX_GROUP).await > 0 {
        let (works, waiting): (Vec<_>, Vec<_>) = group.drain(..).map(|j| (j.work, j.done)).unzip();
        let size = works.len();
        match run_group(&pool, works).await {
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

/// Runs each of `works` in a savepoint of one transaction and commits it; their outcomes in
/// order. An error of the transaction itself (begin, savepoint, commit) fails them all.
async fn run_group(pool: &AnyPool, works: Vec<ErasedWork>) -> Result<Vec<Output>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    let mut outcomes = Vec::with_capacity(works.len());
    for work in works {
        let mut savepoint = tx.begin().await?;
        let outcome = caught(work(&mut savepoint)).await;
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
