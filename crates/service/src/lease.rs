//! One replica at a time for a job that must not run twice at once (the outbox relay): on
//! PostgreSQL, a session advisory lock held on a connection of the lease's own. The server drops
//! the lock when that connection ends (the replica crashed, was killed or cut off), and a standby
//! replica takes it at its next try. On SQLite there is one replica by nature: always held.

use crate::db::Db;
use sqlx::{AnyConnection, AnyPool, Connection};
use std::time::Duration;

/// How long a check of the held connection may take before the lease counts as lost.
const CHECK_WITHIN: Duration = Duration::from_secs(5);

/// The lease of one job: every replica of the job on one database asks for the same name.
#[derive(Debug)]
pub struct Lease {
    pool: AnyPool,
    /// The job, in logs and the `orderflow_lease_held{job}` gauge.
    job: &'static str,
    /// The advisory lock's key, from the job's name.
    key: i64,
    /// Whether the database is SQLite: held for good.
    single: bool,
    /// The connection holding the lock, while held.
    holder: Option<AnyConnection>,
}

impl Lease {
    /// The lease of `job` on `db`'s database (advisory locks are scoped to one database).
    #[must_use]
    pub fn new(db: &Db, job: &'static str) -> Self {
        let pool = db.pool().clone();
        let single = pool.connect_options().database_url.scheme() == "sqlite";
        Self {
            pool,
            job,
            key: lock_key(job),
            single,
            holder: None,
        }
    }

    /// Whether this replica holds the lease now: re-checks the connection holding it, or tries
    /// to take it. A replica that held it and finds it lost says so in the log.
    ///
    /// # Errors
    /// When the database cannot be reached to try (the caller backs off and asks again).
    pub async fn held(&mut self) -> Result<bool, sqlx::Error> {
        if self.single {
            metrics::gauge!("orderflow_lease_held", "job" => self.job).set(1.0);
            return Ok(true);
        }
        if let Some(holder) = &mut self.holder {
            match tokio::time::timeout(CHECK_WITHIN, holder.ping()).await {
                Ok(Ok(())) => {
                    metrics::gauge!("orderflow_lease_held", "job" => self.job).set(1.0);
                    return Ok(true);
                }
                Ok(Err(err)) => {
                    tracing::warn!(error = %err, job = self.job, "lease lost: its connection failed");
                }
                Err(_) => tracing::warn!(job = self.job, "lease lost: its connection hangs"),
            }
            self.holder = None;
            metrics::gauge!("orderflow_lease_held", "job" => self.job).set(0.0);
        }
        let mut conn = self.pool.acquire().await?.detach();
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(self.key)
            .fetch_one(&mut conn)
            .await?;
        if taken {
            tracing::info!(job = self.job, "lease taken: this replica runs the job");
            metrics::gauge!("orderflow_lease_held", "job" => self.job).set(1.0);
            self.holder = Some(conn);
        } else {
            metrics::gauge!("orderflow_lease_held", "job" => self.job).set(0.0);
            let _ = conn.close().await;
        }
        Ok(taken)
    }
}

/// The advisory lock key of `job`: its 64-bit FNV-1a hash, the same in every replica and release.
#[must_use]
pub fn lock_key(job: &str) -> i64 {
    let hash = job.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    i64::from_ne_bytes(hash.to_ne_bytes())
}
