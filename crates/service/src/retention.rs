//! Retention: deleting the records that only guard against repeats (inbox claims, sent outbox
//! rows, idempotency keys) once they are older than the window, in short batches so that no
//! writer waits behind a long delete.

use crate::clock;
use crate::db::Db;
use futures_util::FutureExt;
use std::time::Duration;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

/// Rows one prune transaction deletes at most: small enough that SQLite's writer, which also
/// commits every handler's transaction, is never held for long.
pub const BATCH: u64 = 500;

/// Time between two prune passes.
pub const EVERY: Duration = Duration::from_secs(300);

/// A table whose old rows may go, and how to tell which rows are old.
#[derive(Debug, Clone, Copy)]
pub struct Prunable {
    /// The table.
    pub table: &'static str,
    /// Its primary key columns, comma-separated: a batch deletes the rows it selected and no
    /// others (a partial key could delete a younger row sharing it).
    pub key: &'static str,
    /// The RFC 3339 column a row is aged by; a row where it is NULL is never pruned.
    pub stamp: &'static str,
    /// A condition a row must also meet to be pruned, e.g. `quarantined_at IS NULL`.
    pub only_if: Option<&'static str>,
}

/// The inbox of a worker that keys it by `(message_id, queue)`.
pub const INBOX: Prunable = Prunable {
    table: "inbox",
    key: "message_id, queue",
    stamp: "handled_at",
    only_if: None,
};

impl Prunable {
    /// One batch's statement; `$1` is the bound from [`clock::second_bound`].
    fn statement(&self) -> String {
        let Self {
            table, key, stamp, ..
        } = self;
        let also = self
            .only_if
            .map(|c| format!(" AND {c}"))
            .unwrap_or_default();
        format!(
            "DELETE FROM {table} WHERE ({key}) IN \
             (SELECT {key} FROM {table} WHERE {stamp} < $1{also} LIMIT {BATCH})"
        )
    }
}

/// Prunes `tables` every [`EVERY`] until `stop`, keeping rows younger than `window`; returns at
/// once when `window` is `None` (retention off).
pub async fn run(
    db: Db,
    tables: &'static [Prunable],
    window: Option<Duration>,
    stop: CancellationToken,
) {
    let Some(window) = window else { return };
    loop {
        let before = OffsetDateTime::now_utc() - window;
        match prune(&db, tables, before, &stop).await {
            Ok(pruned) if pruned.iter().any(|(_, rows)| *rows > 0) => {
                let total: u64 = pruned.iter().map(|(_, rows)| rows).sum();
                let tables = pruned
                    .iter()
                    .map(|(table, rows)| format!("{table}={rows}"))
                    .collect::<Vec<_>>()
                    .join(" ");
                tracing::info!(total, %tables, ?window, "retention: pruned rows older than the window");
            }
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(error = %err, "retention: a prune pass failed; the next pass retries");
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(EVERY) => {}
        }
    }
}

/// Deletes the rows of `tables` older than `before`, [`BATCH`] rows per transaction, until none
/// is left or `stop` is cancelled; the rows deleted per table.
///
/// # Errors
/// The first failed batch's; the batches before it stay deleted.
pub async fn prune(
    db: &Db,
    tables: &[Prunable],
    before: OffsetDateTime,
    stop: &CancellationToken,
) -> Result<Vec<(&'static str, u64)>, sqlx::Error> {
    let bound = clock::second_bound(before);
    let mut pruned = Vec::with_capacity(tables.len());
    for table in tables {
        let statement = table.statement();
        let mut rows = 0;
        while !stop.is_cancelled() {
            let deleted = db
                .write((statement.clone(), bound.clone()), |conn, (sql, bound)| {
                    async move {
                        let done = sqlx::query(sql).bind(bound).execute(conn).await?;
                        Ok(done.rows_affected())
                    }
                    .boxed()
                })
                .await?;
            metrics::counter!("orderflow_pruned_rows_total", "table" => table.table)
                .increment(deleted);
            rows += deleted;
            if deleted < BATCH {
                break;
            }
        }
        pruned.push((table.table, rows));
    }
    Ok(pruned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_deletes_only_the_rows_it_selected() {
        let outbox = Prunable {
            table: "outbox",
            key: "message_id",
            stamp: "sent_at",
            only_if: Some("quarantined_at IS NULL"),
        };
        assert_eq!(
            outbox.statement(),
            "DELETE FROM outbox WHERE (message_id) IN (SELECT message_id FROM outbox \
             WHERE sent_at < $1 AND quarantined_at IS NULL LIMIT 500)"
        );
    }
}
