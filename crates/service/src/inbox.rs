//! The inbox: message ids a consumer has handled, recorded in the same transaction as the state
//! change they caused, so a redelivered or duplicated event changes nothing. Each worker's own
//! migrations create its `inbox (message_id, queue, handled_at)` table: services share no schema.

use sqlx::AnyConnection;

/// Records `message_id` as handled from `queue`; false when it already was (a duplicate).
///
/// # Errors
/// When the store fails.
pub async fn claim(
    conn: &mut AnyConnection,
    message_id: Option<&str>,
    queue: &str,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let Some(message_id) = message_id else {
        // Without an id there is nothing to deduplicate by; the state machine still guards.
        return Ok(true);
    };
    let inserted = sqlx::query(
        "INSERT INTO inbox (message_id, queue, handled_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(message_id)
    .bind(queue)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}
