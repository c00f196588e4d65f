//! Scratch stores for tests (feature `test-util`): a worker's migrated database on a fresh SQLite
//! file or in a fresh PostgreSQL database, deleted when dropped, and [`store_tests!`](crate::store_tests)
//! to run one store test on both.

use crate::db::Db;
use sqlx::migrate::Migrator;
use sqlx::{Connection, PgConnection};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// The PostgreSQL server tests use when `TEST_POSTGRES_URL` is not set.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A migrated scratch database; dropping it deletes its file or database.
#[derive(Debug)]
pub struct TestStore {
    db: Db,
    url: String,
    /// Deleted on drop, after the handle above.
    #[expect(dead_code, reason = "held only to be dropped")]
    place: Place,
}

/// Where a scratch database lives, so that it can be deleted.
#[derive(Debug)]
enum Place {
    /// The temporary directory of a SQLite file.
    Dir(PathBuf),
    /// A database on a PostgreSQL server, and a URL of that server to drop it from.
    Database { admin: String, name: String },
}

impl TestStore {
    /// A fresh SQLite file in a temporary directory, migrated by `migrator`.
    ///
    /// # Panics
    /// When the file cannot be created or migrated.
    pub async fn sqlite(migrator: &Migrator) -> Self {
        let dir = std::env::temp_dir().join(format!("orderflow-store-{}", unique()));
        let url = format!("sqlite://{}/store.db", dir.display());
        Self::migrated(url, Place::Dir(dir), migrator).await
    }

    /// A fresh database on the PostgreSQL server of [`admin_url`], migrated by `migrator`.
    ///
    /// # Panics
    /// When the server does not answer: a PostgreSQL test fails rather than passes unrun.
    pub async fn postgres(migrator: &Migrator) -> Self {
        let admin = admin_url();
        let name = format!("orderflow_test_{}", unique());
        let url = create_database(&admin, &name).await;
        Self::migrated(url, Place::Database { admin, name }, migrator).await
    }

    /// Opens and migrates `url`; `place` is deleted even when that fails.
    async fn migrated(url: String, place: Place, migrator: &Migrator) -> Self {
        let pool = crate::database::open(&url, "normal", migrator)
            .await
            .unwrap_or_else(|err| panic!("opening {url}: {err:#}"));
        // As the workers open it: group commits on PostgreSQL too (their default).
        Self {
            db: Db::grouped(pool, true),
            url,
            place,
        }
    }

    /// The database, as a worker's store takes it.
    #[must_use]
    pub fn db(&self) -> Db {
        self.db.clone()
    }

    /// Its URL, for a worker that opens the store itself (`DATABASE_URL`).
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        match self {
            Place::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Place::Database { admin, name } => drop_database_blocking(admin, name),
        }
    }
}

/// The PostgreSQL server tests use: `TEST_POSTGRES_URL`, else [`DEFAULT_POSTGRES_URL`].
#[must_use]
pub fn admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

/// Creates `database` on the server of `admin` (a URL of any database on it); returns its URL.
///
/// # Panics
/// When the server does not answer or refuses.
pub async fn create_database(admin: &str, database: &str) -> String {
    let mut conn = PgConnection::connect(admin)
        .await
        .unwrap_or_else(|err| panic!("PostgreSQL at {admin} (set TEST_POSTGRES_URL): {err}"));
    sqlx::query(&format!("CREATE DATABASE \"{database}\""))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|err| panic!("creating database {database} at {admin}: {err}"));
    let _ = conn.close().await;
    let base = admin.rsplit_once('/').map_or(admin, |(base, _)| base);
    format!("{base}/{database}")
}

/// Drops `database` on the server of `admin`, closing its connections; from a helper thread,
/// so that it works in `Drop`, which cannot await.
pub fn drop_database_blocking(admin: &str, database: &str) {
    let (admin, database) = (admin.to_owned(), database.to_owned());
    let _ = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("building a Tokio runtime");
        runtime.block_on(async {
            if let Ok(mut conn) = PgConnection::connect(&admin).await {
                let _ = sqlx::query(&format!(
                    "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
                ))
                .execute(&mut conn)
                .await;
                let _ = conn.close().await;
            }
        });
    })
    .join();
}

/// A name no other scratch database has, in this process or another.
fn unique() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Defines, for each store test `async fn NAME(db: Db)` in scope, a module `NAME` whose tests
/// `sqlite` and `postgres` run it on a fresh store of each kind migrated by `$migrator`: the
/// statements are the same on both, their locking and `RETURNING` behaviour is not.
#[macro_export]
macro_rules! store_tests {
    ($migrator:path; $($scenario:ident),+ $(,)?) => {$(
        mod $scenario {
            #[tokio::test]
            async fn sqlite() {
                let store = $crate::test_store::TestStore::sqlite(&$migrator).await;
                super::$scenario(store.db()).await;
            }

            #[tokio::test]
            async fn postgres() {
                let store = $crate::test_store::TestStore::postgres(&$migrator).await;
                super::$scenario(store.db()).await;
            }
        }
    )+};
}
