//! Telling a store outage from a message failure: the broker runtime holds a delivery through an
//! outage instead of burning its retries (see `ConsumerSpec::with_outage_check`).

use sqlx::error::DatabaseError;
use std::error::Error;

/// True when `err`, or any error in its source chain, is a [`sqlx::Error`] saying the database
/// could not be reached or the connection broke, rather than that the statement was wrong.
///
/// Such an error says nothing about the message: the same handler succeeds once the store is
/// back. A constraint violation, a missing row or a decode error is about the data and stays an
/// ordinary (retryable or rejected) failure. A protocol error counts as an outage because it means
/// the connection is out of step (sqlx drops it); the next attempt runs on a fresh one.
#[must_use]
pub fn is_outage(err: &(dyn Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(err) = next {
        if err.downcast_ref::<sqlx::Error>().is_some_and(sqlx_outage) {
            return true;
        }
        next = err.source();
    }
    false
}

fn sqlx_outage(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => connection_sqlstate(db.as_ref()),
        _ => false,
    }
}

/// SQLSTATE class 08 (connection exception), 57P01 (admin shutdown), 57P02 (crash shutdown) and
/// 57P03 (cannot connect now: starting up or shutting down). SQLite's numeric codes never match.
fn connection_sqlstate(err: &dyn DatabaseError) -> bool {
    err.code()
        .is_some_and(|code| code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::error::ErrorKind;
    use std::borrow::Cow;

    /// A database error with a chosen SQLSTATE, as a server would return it.
    #[derive(Debug)]
    struct Sqlstate(&'static str);

    impl std::fmt::Display for Sqlstate {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "sqlstate {}", self.0)
        }
    }

    impl Error for Sqlstate {}

    impl DatabaseError for Sqlstate {
        fn message(&self) -> &str {
            self.0
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
        }
        fn as_error(&self) -> &(dyn Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> ErrorKind {
            match self.0 {
                "23505" | "2067" => ErrorKind::UniqueViolation,
                "23503" => ErrorKind::ForeignKeyViolation,
                _ => ErrorKind::Other,
            }
        }
    }

    fn database(code: &'static str) -> sqlx::Error {
        sqlx::Error::Database(Box::new(Sqlstate(code)))
    }

    /// A store error as a handler's own error type wraps it.
    #[derive(Debug)]
    struct Wrapped(sqlx::Error);

    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("recording the payment")
        }
    }

    impl Error for Wrapped {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn connection_failures_are_outages() {
        let io = |kind| sqlx::Error::Io(std::io::Error::from(kind));
        let outages = [
            io(std::io::ErrorKind::ConnectionRefused),
            io(std::io::ErrorKind::UnexpectedEof),
            io(std::io::ErrorKind::ConnectionReset),
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::WorkerCrashed,
            sqlx::Error::Tls("handshake failed".into()),
            sqlx::Error::Protocol("unexpected end of stream".into()),
            database("08006"),
            database("08001"),
            database("57P01"),
            database("57P02"),
            database("57P03"),
        ];
        for err in outages {
            assert!(is_outage(&err), "{err:?} should be an outage");
        }
    }

    #[test]
    fn data_errors_are_not_outages() {
        let failures = [
            database("23505"),
            database("23503"),
            database("40001"),
            database("57014"),
            database("2067"),
            database("8"),
            sqlx::Error::RowNotFound,
            sqlx::Error::ColumnNotFound("total_cents".into()),
            sqlx::Error::Decode("not a number".into()),
            sqlx::Error::Configuration("bad url".into()),
        ];
        for err in failures {
            assert!(!is_outage(&err), "{err:?} should not be an outage");
        }
    }

    #[test]
    fn the_source_chain_is_searched() {
        let outage = Wrapped(sqlx::Error::PoolTimedOut);
        assert!(is_outage(&outage));
        let boxed: broker::BoxError = Box::new(Wrapped(database("57P01")));
        assert!(is_outage(boxed.as_ref()));

        assert!(!is_outage(&Wrapped(database("23505"))));
        assert!(!is_outage(&std::io::Error::other("not a store error")));
    }

    #[tokio::test]
    async fn real_store_errors_are_classified() {
        let refused = sqlx::postgres::PgPoolOptions::new()
            .acquire_timeout(std::time::Duration::from_millis(300))
            .connect("postgres://postgres@127.0.0.1:1/none")
            .await
            .expect_err("nothing listens on port 1");
        assert!(is_outage(&refused), "{refused:?}");

        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY)")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO t VALUES (1)")
            .execute(&pool)
            .await
            .unwrap();
        let duplicate = sqlx::query("INSERT INTO t VALUES (1)")
            .execute(&pool)
            .await
            .expect_err("a duplicate key");
        assert!(!is_outage(&duplicate), "{duplicate:?}");
    }
}
