//! Opening a worker's own database: SQLite (embedded, created on start) or PostgreSQL (shared by
//! replicas), migrated on start.

use anyhow::Context;
use broker::redact_url as redact;
use sqlx::AnyPool;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;
use std::time::Duration;

/// SQLite connections: the writer's and readers'.
const SQLITE_CONNECTIONS: u32 = 4;

/// Opens `url`, creating a SQLite file and its directory when needed, and runs `migrator`;
/// `synchronous` is SQLite's `synchronous` mode (`full` or `normal`).
///
/// SQLite gets a few connections: readers, and the one [`crate::db::Db`]'s writer task uses (it
/// is the only writer, so no lock upgrade fails under concurrency); PostgreSQL gets a pool of 10.
///
/// # Errors
/// When the database cannot be reached or a migration fails.
pub async fn open(url: &str, synchronous: &str, migrator: &Migrator) -> anyhow::Result<AnyPool> {
    install_default_drivers();
    let (url, max) = if let Some(path) = url.strip_prefix("sqlite://") {
        let file = path.split('?').next().unwrap_or(path);
        if let Some(dir) = std::path::Path::new(file)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let url = if path.contains('?') {
            url.to_owned()
        } else {
            format!("{url}?mode=rwc")
        };
        (url, SQLITE_CONNECTIONS)
    } else {
        (url.to_owned(), 10)
    };
    let sqlite = url.starts_with("sqlite:");
    let mode = if synchronous.eq_ignore_ascii_case("normal") {
        "NORMAL"
    } else {
        "FULL"
    };
    let pool = AnyPoolOptions::new()
        .max_connections(max)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                // Per connection: a recycled connection must come back with the same settings.
                if sqlite {
                    sqlx::query("PRAGMA journal_mode = WAL")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query(&format!("PRAGMA synchronous = {mode}"))
                        .execute(&mut *conn)
                        .await?;
                }
                Ok(())
            })
        })
        .acquire_timeout(Duration::from_secs(10))
        .connect(&url)
        .await
        .with_context(|| format!("connecting to the store at {}", redact(&url)))?;
    if url.starts_with("sqlite:") {
        sqlx::query("PRAGMA journal_mode = WAL")
            .execute(&pool)
            .await?;
    }
    migrator.run(&pool).await.context("migrating the store")?;
    Ok(pool)
}

/// True when the store answers a trivial query.
pub async fn is_reachable(pool: &AnyPool) -> bool {
    sqlx::query("SELECT 1").execute(pool).await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("sqlite://data/x.db"), "sqlite://data/x.db");
    }
}
