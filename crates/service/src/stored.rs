//! Reading back what a store wrote: a value that does not decode is an error, never a silent
//! default (a corrupt reservation read as "no lines" would move no stock).

use serde::de::DeserializeOwned;
use sqlx::Row;
use sqlx::any::AnyRow;

/// Column `column` of `row`, JSON text, decoded as `T`.
///
/// # Errors
/// When the column is missing, not text, or not a `T`.
pub fn json<T: DeserializeOwned>(row: &AnyRow, column: &str) -> Result<T, sqlx::Error> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|err| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: Box::new(err),
    })
}

/// The error for a stored state name this build does not know.
#[must_use]
pub fn unknown_state(column: &str, value: &str) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: format!("unknown state {value:?}").into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_corrupt_json_column_is_an_error_naming_it() {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect("sqlite::memory:").await.unwrap();
        let row = sqlx::query("SELECT '[\"a\"]' AS good, '[\"a\"' AS torn")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(json::<Vec<String>>(&row, "good").unwrap(), ["a"]);
        let err = json::<Vec<String>>(&row, "torn").unwrap_err();
        assert!(err.to_string().contains("torn"), "{err}");
        assert!(json::<Vec<String>>(&row, "missing").is_err());
    }
}
